// The run's plan from its release flags: which releases — --version (one or
// several), versions chosen from the update graph's channels (--channel,
// --min-version, --max-version, --shortest-path), or an archive's (--from-dir)
// — from which source to which destination, and how. One builder per source
// of truth: the image set file brings its own.
#pragma once

#include <string>
#include <vector>

#include "cli/ends.h"
#include "cli/options.h"
#include "registry/distribution/web_fetch.h"
#include "release/payload/update_graph.h"
#include "stages/resolve_release.h"

namespace fastsync::cli {

struct ReleaseChoice {
  std::vector<stages::ReleaseWanted> releases;     // oldest first
  std::vector<release::ChosenRelease> from_graph;  // empty unless --channel
};

// Blocking (call from main, never from the engine thread). One error line
// naming the channel and URL when the graph cannot be had or used.
Result<release::ChannelGraph> fetch_channel_graph(WebFetcher& web, const std::string& graph_url,
                                                  const std::string& channel, const std::string& arch);
Result<ReleaseChoice> choose_releases(WebFetcher& web, const CliOptions& o);

// The versions chosen and, on a path, the risks of its conditional upgrades.
std::string format_choice(const std::vector<std::string>& channels, bool shortest_path, const ReleaseChoice& choice);

struct RunPlan {
  stages::MirrorSpec spec;  // what stage 1 resolves
  ReleaseChoice choice;     // how the releases were chosen (and a path's risks)
  std::string choice_text;  // format_choice's lines, printed before the run
};

// Blocking. The releases from the source when it decides them (an archive),
// else from the flags (and the update graph); one error line when they cannot be had.
// How to mirror, from the flags, whatever chose what (the releases are the caller's).
stages::MirrorSpec spec_from_flags(const CliOptions& o, const SourceEnd& source, const DestinationEnd& dest,
                                   stages::SignatureSettings signatures, std::string arch);

Result<RunPlan> plan_from_release_flags(const CliOptions& o, const SourceEnd& source, const DestinationEnd& dest,
                                        WebFetcher& web, stages::SignatureSettings signatures);

}  // namespace fastsync::cli
