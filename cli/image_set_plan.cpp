#include "cli/image_set_plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "release/payload/update_graph.h"

namespace fastsync::cli {

Result<ImageSetInput> read_image_set(const CliOptions& o) {
  auto set = imageset::load_image_set(o.config);
  if (!set) return set.error();
  ImageSetInput input;
  const std::string& file = set->file;
  // A choice made in two places would leave one of them ignored: the file
  // chooses what to mirror, the flags where to and how.
  if (set->architectures.size() > 1) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("{}: mirror.platform.architectures: {} architectures; fastsync mirrors one per run "
                                   "(run it once per architecture, or use multi)",
                                   file, set->architectures.size()));
  }
  if (!set->architectures.empty() && o.arch_given) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("--arch: {} sets mirror.platform.architectures; give one of them", file));
  }
  input.arch = set->architectures.empty() ? o.arch : *imageset::release_arch(set->architectures.front());
  if (!set->operators.empty()) {
    const auto& first = set->operators.front();
    return Error::make(ErrorKind::Invalid,
                       fmt::format("{}:{}: mirror.operators[0]: catalog {}: operator catalogs are not mirrored by "
                                   "this version of fastsync; remove the operators section to mirror the rest",
                                   file, first.line, first.catalog));
  }
  if (set->graph) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("{}: mirror.platform.graph: the update graph image is not mirrored by this version "
                                   "of fastsync; remove graph: true to mirror the rest",
                                   file));
  }
  for (std::size_t i = 0; i < set->additional_images.size(); ++i) {
    const auto& named = set->additional_images[i];
    auto ref = Reference::parse(imageset::without_transport(named.name));
    if (!ref) {
      return Error::make(ErrorKind::Invalid, fmt::format("{}:{}: mirror.additionalImages[{}].name: {}", file,
                                                         named.line, i, ref.error().message));
    }
    if (ref->tag.empty() && ref->digest.empty()) ref->tag = "latest";  // as a pull would
    input.additional.emplace_back(std::move(*ref), named);
  }
  auto blocked = imageset::BlockedImages::from(set->blocked_images, file);
  if (!blocked) return blocked.error();
  input.blocked = std::move(*blocked);
  input.set = std::move(*set);
  return input;
}

namespace {

// One channel's releases as oc-mirror v2 chooses them: its head without a
// range, the range (or the shortest path through it) with one, every release
// with full: true.
Result<std::vector<release::ChosenRelease>> releases_of(WebFetcher& web, const CliOptions& o,
                                                        const imageset::ReleaseChannel& channel,
                                                        const std::string& arch, const std::string& file) {
  auto graph = fetch_channel_graph(web, o.graph_url, channel.name, arch);
  if (!graph) return graph.error();
  release::VersionChoice wanted{channel.min_version, channel.max_version, channel.shortest_path};
  if (channel.full && wanted.min.empty()) {
    for (const auto& node : graph->graph.nodes) {
      if (wanted.min.empty() || release::compare_versions(node.version, wanted.min).value_or(0) < 0) {
        wanted.min = node.version;
      }
    }
  }
  auto chosen = release::choose_releases({*graph}, wanted);
  if (!chosen) {
    return Error::make(chosen.error().kind, fmt::format("{}:{}: mirror.platform.channels {}: {}", file, channel.line,
                                                        channel.name, chosen.error().message));
  }
  return chosen;
}

}  // namespace

Result<RunPlan> plan_from_image_set(const CliOptions& o, const ImageSetInput& input, const SourceEnd& source,
                                    const DestinationEnd& dest, WebFetcher& web, stages::SignatureSettings signatures) {
  RunPlan plan;
  std::vector<std::string> channel_names;
  bool shortest_path = false;
  for (const auto& channel : input.set.channels) {
    auto chosen = releases_of(web, o, channel, input.arch, input.set.file);
    if (!chosen) return chosen.error();
    for (auto& c : *chosen) {
      auto same = [&](const release::ChosenRelease& r) { return r.version == c.version; };
      if (std::none_of(plan.choice.from_graph.begin(), plan.choice.from_graph.end(), same)) {
        plan.choice.from_graph.push_back(std::move(c));
      }
    }
    channel_names.push_back(channel.name);
    shortest_path = shortest_path || channel.shortest_path;
  }
  // Oldest first, across channels, as one run of several releases expects.
  std::sort(plan.choice.from_graph.begin(), plan.choice.from_graph.end(), [](const auto& a, const auto& b) {
    return release::compare_versions(a.version, b.version).value_or(0) < 0;
  });
  for (const auto& c : plan.choice.from_graph)
    plan.choice.releases.push_back(stages::ReleaseWanted{c.version, c.digest});
  plan.choice_text = format_choice(channel_names, shortest_path, plan.choice);

  plan.spec = spec_from_flags(o, source, dest, std::move(signatures), input.arch);
  plan.spec.releases = plan.choice.releases;
  // Other images land where oc-mirror v2 puts them: <dest>/<their repository path>.
  for (const auto& [ref, named] : input.additional) {
    plan.spec.additional.push_back(stages::AdditionalImage{ref, dest.repository(ref.repository), named.name});
  }
  plan.spec.blocked = input.blocked;
  return plan;
}

}  // namespace fastsync::cli
