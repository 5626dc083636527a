// Everything fastsync prints or writes at the end: the dry-run plan, the
// summary, the ImageDigestMirrorSet / ImageContentSourcePolicy, the
// install-config snippet, and the JSON report.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "registry/net/http_engine.h"
#include "stages/resolve_release.h"

namespace fastsync::cli {

// What became of an image, as the summary and the report tell it. A run that
// stopped (a signal, a fatal error) counts every image it did not finish as
// NotAttempted — never started, cancelled in flight, or refused for the very
// reason the run stopped — so that reason is said once, not once per image.
enum class RowStatus { Planned, Copied, Skipped, Failed, BlobsIn, NotAttempted };
const char* to_string(RowStatus status);
RowStatus row_status(const std::optional<stages::ImageOutcome>& outcome, bool run_stopped);

struct ImageRow {
  std::string name;  // component name, "release" for the release image
  std::string source;
  std::string digest;
  std::string dest;
  RowStatus status = RowStatus::Planned;
  std::uint64_t bytes = 0;
  std::string error;
  bool in_place() const { return status == RowStatus::Copied || status == RowStatus::Skipped; }
};

// Images of the run by what became of them; `total` is every image of the plan
// once (a component several releases share counts once; each release image once).
struct ImageCounts {
  std::uint64_t total = 0, copied = 0, skipped = 0, failed = 0, blobs_in = 0, not_attempted = 0;
  void add(RowStatus status);
};

// The release's GPG signatures, as the summary and report tell them.
struct SignatureSummary {
  bool checked = false;
  std::string keys;                   // which keys verified, from where
  std::vector<std::string> verified;  // "origin (key)" per verified signature
  std::vector<std::string> rejected;  // "origin: why"
  std::vector<std::string> problems;  // stores that could not be read
  std::string warning;                // set when none verified
  std::string config_map;             // the file written, if any
};

// Cosign signatures (sha256-<hex>.sig tags, referrers) found beside the images.
struct SigstoreSummary {
  bool checked = false;
  std::uint64_t found = 0, copied = 0, present = 0, failed = 0;
};

// One release of the run, with its own verdict (several releases in one run).
struct ReleaseSummary {
  std::string version;
  std::string arch;
  std::string source;  // pullspec by digest
  std::string digest;
  std::string dest;  // registry/repo:tag
  RowStatus status = RowStatus::Planned;
  std::string error;
  ImageCounts components;  // of its own components
  SignatureSummary signatures;
  std::vector<std::string> risks;  // of a conditional upgrade into it (--shortest-path)
};

// A --blobs-only run, and with a shard, its share of the plan.
struct BlobsOnlySummary {
  bool on = false;
  std::optional<stages::ShardShare> share;
};

struct RunSummary {
  std::string version;
  std::string arch;
  std::string release_source;
  std::string release_digest;
  std::string dest_repository;  // registry/repo
  std::string pull_secret;      // the file credentials came from
  ImageRow release;
  std::vector<ImageRow> components;
  ImageCounts images;  // every image of the plan: components and release images
  BlobsOnlySummary blobs_only;
  std::uint64_t blobs_unique = 0, blobs_copied = 0, blobs_mounted = 0, blobs_present = 0, blobs_failed = 0,
                blobs_not_attempted = 0;
  std::uint64_t bytes_moved = 0;
  double seconds = 0;
  std::string stopped_because;  // cancelled / fatal reason, empty if the run finished
  bool dry_run = false;
  std::map<std::string, std::uint64_t> requests;
  std::map<std::string, OriginThrottle> throttled;  // hosts that pushed back (429, 503, refused connections)
  SignatureSummary signatures;                      // the first release's (the only one, usually)
  SigstoreSummary sigstore;
  std::vector<ReleaseSummary> releases;  // every release of the run, oldest first
  std::string image_set;                 // the --config file, when the run mirrors an image set
  std::string dest_host;                 // where an image set's images went
  std::vector<stages::BlockedImage> blocked;
  int exit_code = 0;
};

// "fastsync: error: <message>" on stderr: the one line bad input gets.
void print_error(const std::string& message);
// Writes `text` to `path`; false (and one error line) if it cannot.
bool write_text_file(const std::string& path, const std::string& text);

// "2 verified by <keys>", or "warning: <why none verified>".
std::string signature_verdict(const SignatureSummary& s);
// A SignatureSummary from what the resolve stage found.
SignatureSummary summarize_signatures(const stages::SignatureCheck& check, const release::Release& release);

// A dry run's outcomes by image id: empty when the destination was not asked;
// else Skipped (already there), Planned (missing) or Failed (cannot be mirrored).
using CheckedImages = std::vector<std::optional<stages::ImageOutcome>>;
// One line per image: name, source, destination (and what the destination
// lacks, when it was asked); the releases first, then the additional images,
// then what is blocked.
std::string format_plan(const stages::Plan& plan, const CheckedImages& checked = {});
std::string format_summary(const RunSummary& s);
// "K/N: <n> of the plan's <m> blobs, <bytes> of <bytes>" (and images left out, if any).
std::string format_share(const stages::ShardShare& share);
// Source repositories the cluster will ask for, each mapped to the mirror.
// `release_sources`: where the releases came from when the plan's own source is not it (an archive).
std::vector<std::string> mirrored_sources(const stages::Plan& plan,
                                          const std::vector<std::string>& release_sources = {});
// One source repository (or registry/namespace) and where the cluster finds it instead.
struct MirrorEntry {
  std::string source;
  std::string mirror;
  bool operator<(const MirrorEntry& o) const { return std::tie(source, mirror) < std::tie(o.source, o.mirror); }
};
// ImageDigestMirrorSet (pulls by digest), ImageTagMirrorSet (pulls by tag),
// or the ImageContentSourcePolicy of clusters before 4.13.
enum class MirrorSetKind { Digest, Tag, ContentSourcePolicy };
std::string format_mirror_set(const std::vector<MirrorEntry>& entries, const std::string& name, MirrorSetKind kind);
std::string format_mirror_set(const std::vector<std::string>& sources, const std::string& mirror,
                              const std::string& name, bool icsp);
std::string format_install_config(const std::vector<std::string>& sources, const std::string& mirror);
std::string report_json(const RunSummary& s);
// mapping.txt as oc-mirror v2 writes it: "docker://<source>@<digest>=docker://<destination>" per image;
// with `missing_only`, missing.txt: only the images `checked` says the destination lacks.
std::string format_mapping(const stages::Plan& plan, const CheckedImages& checked = {}, bool missing_only = false);
// Every image that failed, "<name> <source> -> <destination>: <why>", one per line; empty when none did.
std::string format_errors(const RunSummary& s);

}  // namespace fastsync::cli
