#include "cli/image_set_plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "registry/net/url.h"
#include "release/payload/update_graph.h"

namespace fastsync::cli {

Result<ImageSetInput> read_image_set(const CliOptions& o) {
  auto set = imageset::load_image_set(o.config);
  if (!set) return set.error();
  ImageSetInput input;
  const std::string& file = set->file;
  // A choice made in two places would leave one of them ignored: the file
  // chooses what to mirror, the flags where to and how.
  if (!set->architectures.empty() && o.arch_given) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("--arch: {} sets mirror.platform.architectures; give one of them", file));
  }
  for (const auto& a : set->architectures) {
    std::string arch = *imageset::release_arch(a);  // checked by the parser
    if (std::find(input.arches.begin(), input.arches.end(), arch) == input.arches.end()) input.arches.push_back(arch);
  }
  if (input.arches.empty()) input.arches.push_back(o.arch);
  for (std::size_t i = 0; i < set->operators.size(); ++i) {
    const auto& entry = set->operators[i];
    std::string_view name = entry.catalog;
    if (name.rfind("oci://", 0) == 0 || name.rfind("oci:", 0) == 0) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("{}:{}: mirror.operators[{}].catalog: {}: a catalog on disk (oci:) is not read by "
                                     "fastsync; push it to a registry and name it there",
                                     file, entry.line, i, entry.catalog));
    }
    auto ref = Reference::parse(imageset::without_transport(entry.catalog));
    if (!ref) {
      return Error::make(ErrorKind::Invalid, fmt::format("{}:{}: mirror.operators[{}].catalog: {}", file, entry.line, i,
                                                         ref.error().message));
    }
    if (ref->tag.empty() && ref->digest.empty()) ref->tag = "latest";
    input.catalogs.emplace_back(std::move(*ref), entry);
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

// --from-dir: the archive decides (its releases and images, as the connected
// side chose them from the same file); every image the file names must be in it.
static Result<RunPlan> plan_from_archived_image_set(const CliOptions& o, const ImageSetInput& input,
                                                    const SourceEnd& source, const DestinationEnd& dest,
                                                    stages::SignatureSettings signatures) {
  RunPlan plan;
  plan.choice.releases = *source.releases();
  plan.spec = spec_from_flags(o, source, dest, std::move(signatures), source.arch_of_releases(input.arches.front()));
  plan.spec.releases = plan.choice.releases;
  plan.spec.additional = source.carried_images(dest);
  plan.spec.blocked = input.blocked;
  for (std::size_t i = 0; i < input.additional.size(); ++i) {
    const Reference& ref = input.additional[i].first;
    const imageset::NamedImage& named = input.additional[i].second;
    if (input.blocked.match(ref)) continue;
    auto carried = [&](const stages::AdditionalImage& a) { return a.name == named.name; };
    if (std::none_of(plan.spec.additional.begin(), plan.spec.additional.end(), carried)) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("{}:{}: mirror.additionalImages: {} is not in archive {} (was it written from "
                                     "another image set file, or did that image fail there?); nothing was pushed",
                                     input.set.file, named.line, named.name, o.from_dir));
    }
  }
  return plan;
}

Result<RunPlan> plan_from_image_set(const CliOptions& o, const ImageSetInput& input, const SourceEnd& source,
                                    const DestinationEnd& dest, WebFetcher& web, stages::SignatureSettings signatures) {
  if (source.releases()) return plan_from_archived_image_set(o, input, source, dest, std::move(signatures));
  RunPlan plan;
  std::vector<std::string> channel_names;
  bool shortest_path = false;
  struct Chosen {
    release::ChosenRelease release;
    std::size_t arch = 0;  // in input.arches
  };
  std::vector<Chosen> all;
  for (const auto& channel : input.set.channels) {
    for (std::size_t a = 0; a < input.arches.size(); ++a) {
      auto chosen = releases_of(web, o, channel, input.arches[a], input.set.file);
      if (!chosen) return chosen.error();
      for (auto& c : *chosen) {
        auto same = [&](const Chosen& r) { return r.release.version == c.version && r.arch == a; };
        if (std::none_of(all.begin(), all.end(), same)) all.push_back(Chosen{std::move(c), a});
      }
    }
    channel_names.push_back(channel.name);
    shortest_path = shortest_path || channel.shortest_path;
  }
  // Oldest first, across channels, as one run of several releases expects;
  // each version's architectures in the file's order.
  std::stable_sort(all.begin(), all.end(), [](const Chosen& a, const Chosen& b) {
    int by_version = release::compare_versions(a.release.version, b.release.version).value_or(0);
    return by_version != 0 ? by_version < 0 : a.arch < b.arch;
  });
  for (auto& c : all) {
    plan.choice.releases.push_back(stages::ReleaseWanted{c.release.version, c.release.digest, input.arches[c.arch]});
    plan.choice.from_graph.push_back(std::move(c.release));
  }
  plan.choice_text = format_choice(channel_names, shortest_path, plan.choice);

  plan.spec = spec_from_flags(o, source, dest, std::move(signatures), input.arches.front());
  plan.spec.releases = plan.choice.releases;
  // Other images land where oc-mirror v2 puts them: <dest>/<their repository path>.
  for (const auto& [ref, named] : input.additional) {
    plan.spec.additional.push_back(stages::AdditionalImage{ref, dest.repository(ref.repository), named.name});
  }
  plan.spec.blocked = input.blocked;
  for (const auto& [ref, entry] : input.catalogs) {
    stages::CatalogWanted wanted;
    wanted.catalog = ref;
    wanted.filter = entry.filter;
    wanted.dest = dest.repository(entry.target_catalog.empty() ? ref.repository : entry.target_catalog);
    // A catalog named by digest keeps a tag of its digest's first 12 hex digits (registries collect untagged images).
    wanted.tag = !entry.target_tag.empty() ? entry.target_tag
                 : !ref.tag.empty()        ? ref.tag
                                           : ref.digest.substr(ref.digest.find(':') + 1, 12);
    wanted.dest_for = [&dest](const std::string& path) { return dest.repository(path); };
    plan.spec.catalogs.push_back(std::move(wanted));
  }
  if (input.set.graph) {
    // The update service's graph data, fetched once here; the image is built in stage 1.
    auto fetched = sync_wait(web.get(o.graph_data_url, 256u << 20));
    if (fetched.absent || fetched.error) {
      return Error::make(
          fetched.error ? fetched.error->kind : ErrorKind::NotFound,
          fmt::format("{}: mirror.platform.graph: the update graph data {}: {}", input.set.file,
                      url_for_log(o.graph_data_url), fetched.error ? fetched.error->message : "not found (HTTP 404)"));
    }
    stages::GraphImageWanted graph;
    graph.base = Reference::parse(o.graph_base_image).value();  // validated with the options
    graph.graph_data = std::make_shared<const std::string>(std::move(fetched.body));
    graph.origin = url_for_log(o.graph_data_url);
    graph.dest = dest.repository(kGraphImageRepository);
    plan.spec.graph_image = std::move(graph);
  }
  return plan;
}

}  // namespace fastsync::cli
