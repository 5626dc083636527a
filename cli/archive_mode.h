// The air-gap ends of a run: an archive directory as the destination
// (--to-dir) or as the source (--from-dir). Everything else about the run —
// the graph, skips, tags, release gate, progress, report — is the same.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cli/options.h"
#include "registry/endpoints.h"
#include "release/archive.h"
#include "stages/resolve_release.h"

namespace fastsync::cli {

// --from-dir: the archive, and which of its releases to mirror.
struct ArchiveSource {
  std::unique_ptr<release::ArchiveReader> reader;
  std::vector<release::ArchiveRelease> releases;  // oldest first
  Repository repository;  // where the releases are tagged inside the archive
};
// Opens DIR (every volume there, sizes right) and picks the releases matching
// --version/--arch, or all of them.
Result<ArchiveSource> open_archive_source(const CliOptions& o);

// Before anything is pushed from an incremental archive: every blob it relies
// on from earlier archives must already be at the destination.
Task<Status> check_relied_blobs(RegistryApi& api, const release::ArchiveIndex& index, const Repository& dest);

// --to-dir: room for what the plan still needs written, checked up front.
Task<Status> check_free_space(RegistryApi& api, stages::RunControl& run, const stages::Plan& plan,
                              const release::ArchiveWriter& writer);

// oc-compatible names of the images a finished run put in the archive: ref name -> digest.
std::map<std::string, std::string> archive_refs(const stages::Plan& plan,
                                                const std::vector<std::optional<stages::ImageOutcome>>& outcomes);

std::string human_size(std::uint64_t bytes);

}  // namespace fastsync::cli
