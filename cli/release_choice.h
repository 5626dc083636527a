// Which releases a run mirrors: --version (one or several), or versions chosen
// from the update graph's channels (--channel, --min-version, --max-version,
// --shortest-path).
#pragma once

#include <string>
#include <vector>

#include "cli/options.h"
#include "registry/web_fetch.h"
#include "release/update_graph.h"
#include "stages/resolve_release.h"

namespace fastsync::cli {

struct ReleaseChoice {
  std::vector<stages::ReleaseWanted> releases;   // oldest first
  std::vector<release::ChosenRelease> from_graph;  // empty unless --channel
};

// Blocking (call from main, never from the engine thread). One error line
// naming the channel and URL when the graph cannot be had or used.
Result<ReleaseChoice> choose_releases(WebFetcher& web, const CliOptions& o);

// The versions chosen and, on a path, the risks of its conditional upgrades.
std::string format_choice(const CliOptions& o, const ReleaseChoice& choice);

}  // namespace fastsync::cli
