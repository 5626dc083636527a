// The mirror as a oneTBB flow graph of five stages. Wiring only: the work is in stages/.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "registry/core/endpoint.h"
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

// What the run's ends check once the plan is known, before any image moves
// (an archive's room on disk, the earlier archives a destination must hold);
// an error stops the run there. Part of stage 1.
using Preflight = std::function<Task<Status>(stages::Plan&)>;

struct MirrorRun {
  std::optional<stages::Plan> plan;
  std::optional<Error> resolve_error;                         // stage 1 (resolve or preflight) failed: nothing moved
  std::vector<std::optional<stages::ImageOutcome>> outcomes;  // by image id; empty = never finished
};

// What a run does. A dry run stops after stage 1 (Plan), or after stage 2
// (Check: the destination is asked, read-only, which images it holds; each
// image's outcome is then Skipped when it does, Planned when it does not).
enum class RunMode { Mirror, Plan, Check };

// The whole run.
MirrorRun run_mirror(stages::Ends ends, stages::RunControl& run, const stages::MirrorSpec& spec, StageLimits limits,
                     Preflight preflight = {}, RunMode mode = RunMode::Mirror);

}  // namespace fastsync::graph
