// The run's two ends around its endpoints: where images come from (the
// registries, or an archive with --from-dir) and where they go (a registry, or
// an archive with --to-dir). Each end checks what it must once the plan is
// known, before any image moves (preflight, part of stage 1), and tells what
// the run left there once it is over (finish). Everything between — the graph,
// skips, tags, the release gate, progress, the report — is the same whatever
// the ends.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/options.h"
#include "cli/output.h"
#include "registry/client/client.h"
#include "registry/core/endpoint.h"
#include "release/archive/archive.h"
#include "stages/resolve_release.h"

namespace fastsync::cli {

// What a finished run hands its destination to finish with.
struct FinishedRun {
  const stages::Plan& plan;
  const std::vector<std::optional<stages::ImageOutcome>>& outcomes;
  RunSummary& summary;  // the destination's finish adds what it wrote (a ConfigMap's file)
  int exit_code = 0;
};

class DestinationEnd;

class SourceEnd {
 public:
  virtual ~SourceEnd() = default;
  virtual ImageSource& endpoint() = 0;
  // Where the releases are read: --source-registry, or inside the archive.
  virtual Repository release_repository() const = 0;
  // Where the cluster will pull release `i` from (an archive remembers it).
  virtual std::string release_source(std::size_t i, const release::Release& rel) const = 0;
  // Every repository the cluster will ask for that the plan does not name itself.
  virtual std::vector<std::string> release_sources() const { return {}; }
  // The releases this source decides (an archive's); nullopt: the command line does.
  virtual std::optional<std::vector<stages::ReleaseWanted>> releases() const { return std::nullopt; }
  virtual std::string arch_of_releases(const std::string& asked) const { return asked; }
  // The other images an image set named that this source carries (an archive's), landing at `dest`.
  virtual std::vector<stages::AdditionalImage> carried_images(const DestinationEnd& /*dest*/) const { return {}; }
  // Where the releases' GPG signatures come from when the source carries them
  // (an archive); nullptr: the signature stores.
  virtual SignatureSource* signatures() { return nullptr; }
  virtual Task<Status> preflight(const stages::Plan& plan, ImageDestination& dest, const Repository& dest_repo);
};

class DestinationEnd {
 public:
  virtual ~DestinationEnd() = default;
  virtual ImageDestination& endpoint() = 0;
  // The destination read back, where it can be (a registry; an archive being written cannot).
  virtual ImageSource* readable() = 0;
  virtual std::string host() const = 0;
  // Where an image whose repository path is `path` lands: <host>/<path>, under
  // the --dest-registry prefix and flattened to --max-nested-paths.
  virtual Repository repository(const std::string& path) const { return Repository{host(), path}; }
  virtual Task<Status> preflight(stages::Plan& plan, stages::RunControl& run);
  // Says (and writes) what the run left there; returns the exit code, made
  // worse if something could not be written.
  virtual int finish(FinishedRun run) = 0;
};

// --from-dir DIR, or the registries (the client).
Result<std::unique_ptr<SourceEnd>> open_source_end(const CliOptions& o, RegistryClient& client);
// --to-dir DIR, or --dest-registry (the client).
Result<std::unique_ptr<DestinationEnd>> open_destination_end(const CliOptions& o, RegistryClient& client,
                                                             const release::ArchiveOptions& archive, SourceEnd& source);

}  // namespace fastsync::cli
