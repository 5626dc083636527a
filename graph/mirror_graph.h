// The mirror as a oneTBB flow graph of five stages. Wiring only: the work is in stages/.
#pragma once

#include <optional>
#include <vector>

#include "registry/api.h"
#include "stages/resolve_release.h"
#include "stages/types.h"

namespace fastsync::graph {

// Concurrency of each stage (requests in flight, not threads).
struct StageLimits {
  std::size_t check = 16;
  std::size_t manifest = 16;
  std::size_t blob = 64;  // one pool shared by every image's blobs
  std::size_t push = 16;
  std::size_t graph_threads = 2;  // TBB threads running node bodies (network waits never hold one)
};

struct MirrorRun {
  std::optional<stages::Plan> plan;
  std::optional<Error> resolve_error;
  std::vector<std::optional<stages::ImageOutcome>> outcomes;  // by image id; empty = never finished
};

// `known_plan`: a plan already resolved (the --to-dir size check), used as is.
MirrorRun run_mirror(RegistryApi& api, stages::RunControl& run, const stages::MirrorSpec& spec, StageLimits limits,
                     std::optional<stages::Plan> known_plan = std::nullopt);

}  // namespace fastsync::graph
