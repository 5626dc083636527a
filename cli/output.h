// Everything fastsync prints or writes at the end: the dry-run plan, the
// summary, the ImageDigestMirrorSet / ImageContentSourcePolicy, the
// install-config snippet, and the JSON report.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stages/resolve_release.h"

namespace fastsync::cli {

struct ImageRow {
  std::string name;  // component name, "release" for the release image
  std::string source;
  std::string digest;
  std::string dest;
  std::string status;  // planned, copied, skipped, failed
  std::uint64_t bytes = 0;
  std::string error;
};

// The release's GPG signatures, as the summary and report tell them.
struct SignatureSummary {
  bool checked = false;
  std::string keys;                      // which keys verified, from where
  std::vector<std::string> verified;     // "origin (key)" per verified signature
  std::vector<std::string> rejected;     // "origin: why"
  std::vector<std::string> problems;     // stores that could not be read
  std::string warning;                   // set when none verified
  std::string config_map;                // the file written, if any
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
  std::string dest;    // registry/repo:tag
  std::string status;  // planned, copied, skipped, failed
  std::string error;
  std::uint64_t components = 0, copied = 0, skipped = 0, failed = 0;
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
  std::uint64_t images_copied = 0, images_skipped = 0, images_failed = 0, images_blobs_in = 0;
  BlobsOnlySummary blobs_only;
  std::uint64_t blobs_unique = 0, blobs_copied = 0, blobs_mounted = 0, blobs_present = 0, blobs_failed = 0;
  std::uint64_t bytes_moved = 0;
  double seconds = 0;
  std::string stopped_because;  // cancelled / fatal reason, empty if the run finished
  bool dry_run = false;
  std::map<std::string, std::uint64_t> requests;
  SignatureSummary signatures;   // the first release's (the only one, usually)
  SigstoreSummary sigstore;
  std::vector<ReleaseSummary> releases;  // every release of the run, oldest first
  int exit_code = 0;
};

// "2 verified by <keys>", or "warning: <why none verified>".
std::string signature_verdict(const SignatureSummary& s);
// A SignatureSummary from what the resolve stage found.
SignatureSummary summarize_signatures(const stages::SignatureCheck& check, const release::Release& release);

// One line per image: name, source, destination.
std::string format_plan(const stages::Plan& plan);
std::string format_summary(const RunSummary& s);
// "K/N: <n> of the plan's <m> blobs, <bytes> of <bytes>" (and images left out, if any).
std::string format_share(const stages::ShardShare& share);
// Source repositories the cluster will ask for, each mapped to the mirror.
// `release_sources`: where the releases came from when the plan's own source is not it (an archive).
std::vector<std::string> mirrored_sources(const stages::Plan& plan, const std::vector<std::string>& release_sources = {});
std::string format_mirror_set(const std::vector<std::string>& sources, const std::string& mirror,
                              const std::string& name, bool icsp);
std::string format_install_config(const std::vector<std::string>& sources, const std::string& mirror);
std::string report_json(const RunSummary& s);

}  // namespace fastsync::cli
