#include "cli/release_plan.h"

#include <fmt/format.h>

#include "registry/net/url.h"

namespace fastsync::cli {

Result<release::ChannelGraph> fetch_channel_graph(WebFetcher& web, const std::string& graph_url,
                                                  const std::string& channel, const std::string& arch) {
  std::string url =
      fmt::format("{}{}channel={}&arch={}", graph_url, graph_url.find('?') == std::string::npos ? "?" : "&",
                  url_encode(channel), url_encode(release::graph_arch(arch)));
  std::string origin = fmt::format("for channel {} ({})", channel, url_for_log(url));
  auto fetched = sync_wait(web.get(url, 64u << 20, {"Accept: application/json"}));
  if (fetched.absent) {
    return Error::make(ErrorKind::NotFound, fmt::format("update graph {}: not found (HTTP 404)", origin));
  }
  if (fetched.error) {
    return Error::make(fetched.error->kind, fmt::format("update graph {}: {}", origin, fetched.error->message));
  }
  auto graph = release::UpdateGraph::parse(fetched.body, origin);
  if (!graph) return graph.error();
  return release::ChannelGraph{channel, std::move(*graph)};
}

Result<ReleaseChoice> choose_releases(WebFetcher& web, const CliOptions& o) {
  ReleaseChoice choice;
  if (o.channels.empty()) {
    for (const auto& v : o.versions) choice.releases.push_back(stages::ReleaseWanted{v, {}});
    return choice;
  }
  std::vector<release::ChannelGraph> graphs;
  for (const auto& channel : o.channels) {
    auto graph = fetch_channel_graph(web, o.graph_url, channel, o.arch);
    if (!graph) return graph.error();
    graphs.push_back(std::move(*graph));
  }
  release::VersionChoice wanted{o.min_version, o.max_version, o.shortest_path};
  auto chosen = release::choose_releases(graphs, wanted);
  if (!chosen) return chosen.error();
  choice.from_graph = std::move(*chosen);
  for (const auto& c : choice.from_graph) choice.releases.push_back(stages::ReleaseWanted{c.version, c.digest});
  return choice;
}

std::string format_choice(const std::vector<std::string>& channel_names, bool shortest_path,
                          const ReleaseChoice& choice) {
  if (choice.from_graph.empty()) return {};
  std::string channels;
  for (const auto& c : channel_names) channels += (channels.empty() ? "" : ", ") + c;
  std::string out = fmt::format(
      "# {} release(s) from channel {} ({}{}):\n", choice.from_graph.size(), channels,
      shortest_path ? "shortest upgrade path" : "every release",
      shortest_path ? fmt::format(" {} -> {}", choice.from_graph.front().version, choice.from_graph.back().version)
                    : "");
  for (std::size_t i = 0; i < choice.from_graph.size(); ++i) {
    const auto& r = choice.from_graph[i];
    out += fmt::format("#   {}{}  {}\n", shortest_path && i > 0 ? "-> " : "", r.version, r.payload);
    for (const auto& risk : r.risks) {
      out += fmt::format("#      conditional upgrade, risk {}: {}{}\n", risk.name, risk.message,
                         risk.url.empty() ? "" : " (" + risk.url + ")");
    }
  }
  return out;
}

Result<RunPlan> plan_from_release_flags(const CliOptions& o, const SourceEnd& source, const DestinationEnd& dest,
                                        WebFetcher& web, stages::SignatureSettings signatures) {
  RunPlan plan;
  if (auto decided = source.releases()) {
    plan.choice.releases = std::move(*decided);
  } else {
    auto chosen = choose_releases(web, o);
    if (!chosen) return chosen.error();
    plan.choice = std::move(*chosen);
  }
  plan.choice_text = format_choice(o.channels, o.shortest_path, plan.choice);
  plan.spec = spec_from_flags(o, source, dest, std::move(signatures), source.arch_of_releases(o.arch));
  plan.spec.releases = plan.choice.releases;
  plan.spec.additional = source.carried_images(dest);  // an image set's archive
  return plan;
}

stages::MirrorSpec spec_from_flags(const CliOptions& o, const SourceEnd& source, const DestinationEnd& dest,
                                   stages::SignatureSettings signatures, std::string arch) {
  stages::MirrorSpec spec;
  spec.arch = std::move(arch);
  spec.platform = o.release_platform;
  spec.source = source.release_repository();
  spec.dest = dest.repository(o.dest_repo);
  spec.check_destination = !o.dry_run;
  spec.signatures = std::move(signatures);
  spec.sigstore = !o.no_sigstore;
  spec.blobs_only = o.blobs_only;
  if (!o.shard.empty()) spec.shard = stages::parse_shard(o.shard);  // validated with the options
  return spec;
}

}  // namespace fastsync::cli
