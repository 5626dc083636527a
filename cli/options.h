// Command-line options (Boost.Program_options) and their validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fastsync::cli {

struct CliOptions {
  // The seed's flags, with the seed's defaults. --version may name several
  // releases (repeated, or a comma list): one run mirrors them all.
  std::vector<std::string> versions;
  std::string config;  // --config: an image set file (oc-mirror v2's ImageSetConfiguration)
  std::string out_dir = ".";
  int max_nested_paths = 0;  // destination repositories flattened to this many components (0: as they are)  // where
                             // the cluster resources of an image set run are written
  std::string dest_registry;
  std::string pull_secret;  // empty: looked for as podman and skopeo do (registry/distribution/auth_file.h)
  int workers = 16;
  int blob_workers = 4;
  std::string dest_repo = "openshift/release";
  std::string source_registry = "quay.io/openshift-release-dev/ocp-release";
  bool insecure = false;

  // Air gap: an archive directory instead of the destination (--to-dir) or the source (--from-dir).
  std::string to_dir;
  std::string from_dir;
  std::uint64_t archive_size = 4000ull << 20;  // see release/archive/archive.h for why
  std::vector<std::string> since;
  int archive_writers = 4;

  // Scale-out: this process copies one shard's blobs (--shard K/N implies --blobs-only).
  std::string shard;  // "K/N", empty: all
  bool blobs_only = false;

  // Signatures.
  std::vector<std::string> signature_stores;  // empty: the official two (registry/client/signature_stores.h)
  std::string signature_keyring;              // empty: the keys the release payload carries
  std::string signature_dir = ".";
  bool require_signatures = false;
  bool no_signatures = false;  // do not look for GPG release signatures at all
  bool no_sigstore = false;    // do not copy cosign signatures (.sig tags, referrers)

  // Releases chosen from the update graph.
  std::vector<std::string> channels;
  std::string min_version;
  std::string max_version;
  bool shortest_path = false;
  std::string graph_url = "https://api.openshift.com/api/upgrades_info/v1/graph";
  // An image set's graph: true — the update service's graph data, and the image it is built on.
  std::string graph_data_url = "https://api.openshift.com/api/upgrades_info/graph-data";
  std::string graph_base_image = "registry.access.redhat.com/ubi9/ubi:latest";

  // Release selection.
  std::string arch = "x86_64";
  bool arch_given = false;       // --arch on the command line (with --from-dir the archive says otherwise)
  std::string release_platform;  // payload child of a multi release (default linux/amd64)

  // Stage concurrency (default from --workers / --blob-workers).
  int check_workers = 0;
  int manifest_workers = 0;
  int blob_concurrency = 0;
  int push_workers = 0;

  // Network.
  std::string ca_file;
  std::vector<std::string> certs_dirs;       // per-registry certificate directories (default: containers' and docker's)
  std::uint64_t upload_chunk_size = 0;       // 0: monolithic until a registry answers 413
  std::uint64_t segment_size = 2u << 20;     // Range segments for large blobs (0: never)
  bool segments_always = false;              // split at once rather than when it pays
  std::uint64_t segment_memory = 12u << 20;  // segment bytes held ahead of the upload, in all
  bool segment_memory_given = false;         // set by the user: a hard limit, never grown
  std::vector<std::string> resolve;          // host:port:address
  bool http2 = false;
  int retries = 3;
  int retry_delay_ms = 500;
  int stall_timeout = 60;  // seconds without a byte moving
  int stop_timeout = 30;   // seconds a cancelled run may take to stop before it exits anyway
  int max_per_host = 64;

  // Output.
  bool dry_run = false;
  std::string report_path;
  std::string idms_out;
  bool icsp = false;
  bool quiet = false;
  bool verbose = false;
};

struct ParsedCommandLine {
  std::optional<CliOptions> options;  // set when there is work to do
  int exit_code = 0;                  // otherwise: exit with this
  std::string text;                   // help text (stdout) or one error line (stderr)
};

ParsedCommandLine parse_command_line(int argc, const char* const argv[]);

// "64MiB", "4GiB", "512KiB", "1048576", "1.5GiB" -> bytes (KiB/MiB/GiB/TiB and K/M/G/T are
// powers of 1024, kB/MB/GB/TB of 1000); nullopt if not a size.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace fastsync::cli
