// Every setting a run takes from its command line, built once, in one place:
// the engine's, the registry client's, the archive's and the stages'
// concurrency. (Before, the options were copied by hand into each, and the blob
// pool's size could differ between the graph and the segment budget.)
#pragma once

#include "cli/options.h"
#include "graph/mirror_graph.h"
#include "registry/distribution/registry.h"
#include "registry/net/http_engine.h"
#include "release/archive/archive.h"

namespace fastsync::cli {

struct RunSettings {
  EngineOptions engine;
  RegistryOptions registry;  // registry.blob_pool == limits.blob: one pool, one number
  release::ArchiveOptions archive;
  graph::StageLimits limits;
};

// One error (exit 2) when the trust settings cannot be used.
Result<RunSettings> settings_from(const CliOptions& o);

}  // namespace fastsync::cli
