#include "release/imageset/image_set.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <initializer_list>
#include <sstream>

#include "release/payload/update_graph.h"

namespace fastsync::imageset {
namespace {

// Where a node sits in the file, for messages: its path and its (1-based) line.
struct At {
  const std::string& file;
  std::string path;
  int line;
  // A missing field (an undefined node) is placed at its parent's line.
  At child(const std::string& key, const YAML::Node& node) const {
    return At{file, path.empty() ? key : path + "." + key, node.IsDefined() ? node.Mark().line + 1 : line};
  }
  At item(std::size_t i, const YAML::Node& node) const {
    return At{file, fmt::format("{}[{}]", path, i), node.Mark().line + 1};
  }
  Error error(const std::string& problem) const {
    return Error::make(ErrorKind::Invalid, fmt::format("{}:{}: {}: {}", file, line, path, problem));
  }
};

const char* kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "empty";
  }
}

// Every key of `map` must be one of `known`: a typo is an error, not a field
// silently ignored (the mirror would then not be what the file says).
Status only_keys(const YAML::Node& map, const At& at, std::initializer_list<std::string_view> known) {
  if (!map.IsMap()) return at.error(fmt::format("must be a map, not {}", kind_of(map)));
  for (const auto& entry : map) {
    std::string key = entry.first.as<std::string>();
    bool ok = false;
    for (auto k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return at.child(key, entry.first).error(fmt::format("unknown field (known here: {})", list));
    }
  }
  return Status{};
}

Result<std::string> string_of(const YAML::Node& node, const At& at) {
  if (!node.IsScalar()) return at.error(fmt::format("must be a string, not {}", kind_of(node)));
  return node.Scalar();
}

Result<bool> bool_of(const YAML::Node& node, const At& at) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) return at.error("must be true or false");
  return value;
}

Result<std::string> version_of(const YAML::Node& node, const At& at) {
  auto text = string_of(node, at);
  if (!text) return text;
  if (!release::is_release_version(*text)) return at.error(fmt::format("\"{}\" is not a release version", *text));
  return text;
}

// A list field; a missing or null one is empty.
Result<std::vector<std::pair<YAML::Node, At>>> items_of(const YAML::Node& node, const At& at) {
  std::vector<std::pair<YAML::Node, At>> items;
  if (!node || node.IsNull()) return items;
  if (!node.IsSequence()) return at.error(fmt::format("must be a list, not {}", kind_of(node)));
  for (std::size_t i = 0; i < node.size(); ++i) items.emplace_back(node[i], at.item(i, node[i]));
  return items;
}

Result<ReleaseChannel> channel_of(const YAML::Node& node, const At& at) {
  if (auto ok = only_keys(node, at, {"name", "type", "minVersion", "maxVersion", "shortestPath", "full"}); !ok) {
    return ok.error();
  }
  ReleaseChannel c;
  c.line = at.line;
  if (!node["name"]) return at.error("a channel needs a name");
  auto name = string_of(node["name"], at.child("name", node["name"]));
  if (!name) return name.error();
  c.name = *name;
  if (auto type = node["type"]) {
    auto t = string_of(type, at.child("type", type));
    if (!t) return t.error();
    if (*t != "ocp") {
      return at.child("type", type).error(fmt::format("\"{}\" is not mirrored (only ocp releases are)", *t));
    }
  }
  for (auto [key, field] : {std::pair{"minVersion", &c.min_version}, {"maxVersion", &c.max_version}}) {
    if (auto v = node[key]) {
      auto version = version_of(v, at.child(key, v));
      if (!version) return version.error();
      *field = *version;
    }
  }
  for (auto [key, field] : {std::pair{"shortestPath", &c.shortest_path}, {"full", &c.full}}) {
    if (auto v = node[key]) {
      auto value = bool_of(v, at.child(key, v));
      if (!value) return value.error();
      *field = *value;
    }
  }
  if (!c.min_version.empty() && !c.max_version.empty() &&
      release::compare_versions(c.min_version, c.max_version).value_or(0) > 0) {
    return at.error(fmt::format("minVersion {} is after maxVersion {}", c.min_version, c.max_version));
  }
  return c;
}

// additionalImages / blockedImages: a list of {name: …}.
Result<std::vector<NamedImage>> images_of(const YAML::Node& node, const At& at) {
  auto items = items_of(node, at);
  if (!items) return items.error();
  std::vector<NamedImage> images;
  for (const auto& [item, item_at] : *items) {
    if (auto ok = only_keys(item, item_at, {"name"}); !ok) return ok.error();
    if (!item["name"]) return item_at.error("needs a name");
    auto name = string_of(item["name"], item_at.child("name", item["name"]));
    if (!name) return name.error();
    if (name->empty()) return item_at.child("name", item["name"]).error("is empty");
    images.push_back(NamedImage{*name, item_at.line});
  }
  return images;
}

// A bundle version (semantic: 1.2.3, 1.3.0-rc.1) in an operators entry.
Result<std::string> bundle_version_of(const YAML::Node& node, const At& at) {
  auto text = string_of(node, at);
  if (!text) return text;
  if (!compare_semver(*text, *text)) return at.error(fmt::format("\"{}\" is not a version (e.g. 1.2.3)", *text));
  return text;
}

// minVersion/maxVersion of a package or a channel, in order.
Status read_range(const YAML::Node& node, const At& at, std::string& min, std::string& max) {
  for (auto [key, field] : {std::pair{"minVersion", &min}, {"maxVersion", &max}}) {
    if (auto v = node[key]) {
      auto version = bundle_version_of(v, at.child(key, v));
      if (!version) return version.error();
      *field = *version;
    }
  }
  if (!min.empty() && !max.empty() && compare_semver(min, max).value_or(0) > 0) {
    return at.error(fmt::format("minVersion {} is after maxVersion {}", min, max));
  }
  return Status{};
}

Result<OperatorCatalog> operator_catalog_of(const YAML::Node& node, const At& at) {
  if (auto ok = only_keys(node, at, {"catalog", "full", "packages", "targetCatalog", "targetTag"}); !ok) {
    return ok.error();
  }
  OperatorCatalog c;
  c.line = at.line;
  if (!node["catalog"]) return at.error("an operators entry needs a catalog");
  auto catalog = string_of(node["catalog"], at.child("catalog", node["catalog"]));
  if (!catalog) return catalog.error();
  c.catalog = *catalog;
  if (auto full = node["full"]) {
    auto value = bool_of(full, at.child("full", full));
    if (!value) return value.error();
    c.filter.full = *value;
  }
  for (auto [key, field] : {std::pair{"targetCatalog", &c.target_catalog}, {"targetTag", &c.target_tag}}) {
    if (auto v = node[key]) {
      auto value = string_of(v, at.child(key, v));
      if (!value) return value.error();
      *field = *value;
    }
  }
  auto packages = items_of(node["packages"], at.child("packages", node["packages"]));
  if (!packages) return packages.error();
  for (const auto& [item, item_at] : *packages) {
    if (auto ok = only_keys(item, item_at, {"name", "channels", "minVersion", "maxVersion", "defaultChannel"}); !ok) {
      return ok.error();
    }
    PackageFilter p;
    if (!item["name"]) return item_at.error("a package needs a name");
    auto name = string_of(item["name"], item_at.child("name", item["name"]));
    if (!name) return name.error();
    p.name = *name;
    if (auto v = item["defaultChannel"]) {
      auto value = string_of(v, item_at.child("defaultChannel", v));
      if (!value) return value.error();
      p.default_channel = *value;
    }
    if (auto ok = read_range(item, item_at, p.min_version, p.max_version); !ok) return ok.error();
    auto channels = items_of(item["channels"], item_at.child("channels", item["channels"]));
    if (!channels) return channels.error();
    for (const auto& [ch, ch_at] : *channels) {
      if (auto ok = only_keys(ch, ch_at, {"name", "minVersion", "maxVersion"}); !ok) return ok.error();
      ChannelFilter f;
      if (!ch["name"]) return ch_at.error("a channel needs a name");
      auto channel_name = string_of(ch["name"], ch_at.child("name", ch["name"]));
      if (!channel_name) return channel_name.error();
      f.name = *channel_name;
      if (auto ok = read_range(ch, ch_at, f.min_version, f.max_version); !ok) return ok.error();
      p.channels.push_back(std::move(f));
    }
    if (!p.channels.empty() && (!p.min_version.empty() || !p.max_version.empty())) {
      return item_at.error("minVersion/maxVersion go on the package or on its channels, not both");
    }
    c.filter.packages.push_back(std::move(p));
  }
  return c;
}

Status read_platform(const YAML::Node& node, const At& at, ImageSet& set) {
  if (auto ok = only_keys(node, at, {"channels", "architectures", "graph", "release", "kubeVirtContainer"}); !ok) {
    return ok;
  }
  auto channels = items_of(node["channels"], at.child("channels", node["channels"]));
  if (!channels) return channels.error();
  for (const auto& [item, item_at] : *channels) {
    auto c = channel_of(item, item_at);
    if (!c) return c.error();
    set.channels.push_back(std::move(*c));
  }
  auto arches = items_of(node["architectures"], at.child("architectures", node["architectures"]));
  if (!arches) return arches.error();
  for (const auto& [item, item_at] : *arches) {
    auto arch = string_of(item, item_at);
    if (!arch) return arch.error();
    if (!release_arch(*arch)) {
      return item_at.error(fmt::format("\"{}\" is not an architecture (amd64, arm64, ppc64le, s390x, multi)", *arch));
    }
    set.architectures.push_back(*arch);
  }
  if (auto graph = node["graph"]) {
    auto value = bool_of(graph, at.child("graph", graph));
    if (!value) return value.error();
    set.graph = *value;
  }
  // Accepted by oc-mirror, not by this version of fastsync: saying so beats
  // a mirror that silently lacks them.
  for (const char* key : {"release", "kubeVirtContainer"}) {
    if (auto v = node[key]; v && !v.IsNull()) {
      return at.child(key, v).error("is not supported by fastsync (name the release by channel and version)");
    }
  }
  return Status{};
}

Status read_mirror(const YAML::Node& node, const At& at, ImageSet& set) {
  if (auto ok = only_keys(node, at, {"platform", "operators", "additionalImages", "blockedImages", "helm", "samples"});
      !ok) {
    return ok;
  }
  if (auto platform = node["platform"]; platform && !platform.IsNull()) {
    if (auto ok = read_platform(platform, at.child("platform", platform), set); !ok) return ok;
  }
  auto additional = images_of(node["additionalImages"], at.child("additionalImages", node["additionalImages"]));
  if (!additional) return additional.error();
  set.additional_images = std::move(*additional);
  auto blocked = images_of(node["blockedImages"], at.child("blockedImages", node["blockedImages"]));
  if (!blocked) return blocked.error();
  set.blocked_images = std::move(*blocked);
  auto operators = items_of(node["operators"], at.child("operators", node["operators"]));
  if (!operators) return operators.error();
  for (const auto& [item, item_at] : *operators) {
    auto catalog = operator_catalog_of(item, item_at);
    if (!catalog) return catalog.error();
    set.operators.push_back(std::move(*catalog));
  }
  for (const char* key : {"helm", "samples"}) {
    if (auto v = node[key]; v && !v.IsNull() && v.size() > 0) {
      return at.child(key, v).error("is not mirrored by fastsync");
    }
  }
  return Status{};
}

}  // namespace

std::optional<std::string> release_arch(std::string_view arch) {
  if (arch == "amd64") return "x86_64";
  if (arch == "arm64") return "aarch64";
  if (arch == "ppc64le" || arch == "s390x" || arch == "multi") return std::string(arch);
  return std::nullopt;
}

Result<ImageSet> parse_image_set(std::string_view yaml, const std::string& file) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Error::make(ErrorKind::Invalid, fmt::format("{}:{}: not YAML: {}", file, e.mark.line + 1, e.msg));
  }
  At top{file, "", 1};
  if (!doc || doc.IsNull()) return Error::make(ErrorKind::Invalid, fmt::format("{}: is empty", file));
  if (!doc.IsMap()) return top.error(fmt::format("must be an ImageSetConfiguration (a map), not {}", kind_of(doc)));
  ImageSet set;
  set.file = file;
  try {
    if (auto ok = only_keys(doc, top, {"kind", "apiVersion", "metadata", "archiveSize", "storageConfig", "mirror"});
        !ok) {
      return ok.error();
    }
    auto kind = doc["kind"];
    if (!kind || !kind.IsScalar() || kind.Scalar() != "ImageSetConfiguration") {
      At at = kind ? top.child("kind", kind) : At{file, "kind", 1};
      return at.error(
          kind && kind.IsScalar()
              ? fmt::format("\"{}\" is not ImageSetConfiguration (fastsync mirrors; it does not delete)", kind.Scalar())
              : "must be ImageSetConfiguration");
    }
    auto api = doc["apiVersion"];
    if (!api || !api.IsScalar() ||
        (api.Scalar() != "mirror.openshift.io/v2alpha1" && api.Scalar() != "mirror.openshift.io/v1alpha2")) {
      At at = api ? top.child("apiVersion", api) : At{file, "apiVersion", 1};
      return at.error(fmt::format("{} is not a version fastsync reads (mirror.openshift.io/v2alpha1 or v1alpha2)",
                                  api && api.IsScalar() ? "\"" + api.Scalar() + "\"" : "missing: it"));
    }
    set.api_version = api.Scalar();
    if (auto size = doc["archiveSize"]) {
      At at = top.child("archiveSize", size);
      long long gib = 0;
      if (!size.IsScalar() || !YAML::convert<long long>::decode(size, gib) || gib <= 0) {
        return at.error("must be a whole number of GiB above 0");
      }
      set.archive_size_gib = static_cast<std::uint64_t>(gib);
    }
    if (doc["storageConfig"]) {
      set.notes.push_back(
          fmt::format("{}: storageConfig is ignored (fastsync keeps no metadata image: the "
                      "destination itself says what is already there)",
                      file));
    }
    auto mirror = doc["mirror"];
    if (!mirror || mirror.IsNull()) return At{file, "mirror", 1}.error("missing: nothing to mirror");
    if (auto ok = read_mirror(mirror, top.child("mirror", mirror), set); !ok) return ok.error();
  } catch (const YAML::Exception& e) {
    // Conversions and lookups yaml-cpp refuses (a key that is not a scalar, say).
    return Error::make(ErrorKind::Invalid, fmt::format("{}:{}: {}", file, e.mark.line + 1, e.msg));
  }
  if (set.channels.empty() && set.additional_images.empty() && set.operators.empty()) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("{}: mirror: names nothing to mirror (no platform.channels, additionalImages or "
                                   "operators)",
                                   file));
  }
  return set;
}

Result<ImageSet> load_image_set(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::make(ErrorKind::Invalid, fmt::format("cannot read --config {}", path));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_image_set(text.str(), path);
}

}  // namespace fastsync::imageset
