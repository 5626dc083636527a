#include "release/imageset/catalog_image.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <optional>
#include <set>

#include "registry/core/digest.h"
#include "release/imageset/built_image.h"
#include "release/payload/layer_files.h"

namespace fastsync::imageset {
namespace {

std::string trim_slashes(std::string dir) {
  while (!dir.empty() && dir.front() == '/') dir.erase(0, 1);
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  return dir;
}

// The configs label and opm serve's --cache-dir, from an image's configuration.
Result<std::pair<std::string, std::string>> catalog_dirs(const std::string& config, const std::string& name) {
  rapidjson::Document doc;
  doc.Parse(config.c_str(), config.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("config") || !doc["config"].IsObject()) {
    return Error::make(ErrorKind::Invalid, fmt::format("catalog {}: its configuration is not JSON", name));
  }
  const auto& settings = doc["config"];
  std::string configs;
  if (settings.HasMember("Labels") && settings["Labels"].IsObject() && settings["Labels"].HasMember(kConfigsLabel) &&
      settings["Labels"][kConfigsLabel].IsString()) {
    configs = trim_slashes(settings["Labels"][kConfigsLabel].GetString());
  }
  if (configs.empty()) {
    return Error::make(ErrorKind::Invalid, fmt::format("catalog {} has no {} label: not a file-based catalog (opm's "
                                                       "SQLite catalogs are not mirrored)",
                                                       name, kConfigsLabel));
  }
  std::string cache;
  for (const char* key : {"Entrypoint", "Cmd"}) {
    if (!settings.HasMember(key) || !settings[key].IsArray()) continue;
    const auto& args = settings[key].GetArray();
    for (rapidjson::SizeType i = 0; i < args.Size(); ++i) {
      if (!args[i].IsString()) continue;
      std::string arg = args[i].GetString();
      if (arg.rfind("--cache-dir=", 0) == 0) cache = arg.substr(12);
      if (arg == "--cache-dir" && i + 1 < args.Size() && args[i + 1].IsString()) cache = args[i + 1].GetString();
    }
  }
  return std::pair{configs, trim_slashes(cache)};
}

bool is_catalog_file(const std::string& path) {
  for (const char* ext : {".json", ".yaml", ".yml"}) {
    std::string_view e(ext);
    if (path.size() > e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

}  // namespace

Task<Result<CatalogImage>> read_catalog_image(ImageSource& source, Repository repository, std::string reference,
                                              std::string name, std::set<std::string> packages) {
  CatalogImage image;
  image.name = name;
  image.repository = repository;
  auto top = co_await source.get_manifest(repository, reference);
  if (!top) co_return Error::make(top.error().kind, fmt::format("catalog {}: {}", name, top.error().message));
  image.top = *top;
  auto parsed = parse_manifest(top->bytes, top->media_type);
  if (!parsed) co_return parsed.error();
  std::vector<ParsedManifest> parsed_images;
  if (parsed->is_list) {
    for (const auto& child : parsed->children) {
      std::string child_digest = child.digest;
      auto m = co_await source.get_manifest(repository, child_digest);
      if (!m) co_return m.error();
      auto p = parse_manifest(m->bytes, m->media_type);
      if (!p || p->is_list) {
        co_return Error::make(ErrorKind::Invalid,
                              fmt::format("catalog {}: its {} entry is not an image", name, child.platform.str()));
      }
      image.images.push_back(std::move(*m));
      parsed_images.push_back(std::move(*p));
    }
  } else {
    image.images.push_back(*top);
    parsed_images.push_back(*parsed);
  }
  if (image.images.empty()) co_return Error::make(ErrorKind::Invalid, fmt::format("catalog {}: an empty index", name));
  for (std::size_t i = 0; i < image.images.size(); ++i) {
    Descriptor config_ref = parsed_images[i].config;
    auto config = co_await read_whole_blob(source, repository, config_ref);
    if (!config) co_return config.error();
    auto dirs = catalog_dirs(*config, name);
    if (!dirs) co_return dirs.error();
    if (i == 0) {
      image.configs_dir = dirs->first;
      image.cache_dir = dirs->second;
    } else if (dirs->first != image.configs_dir) {
      co_return Error::make(ErrorKind::Invalid,
                            fmt::format("catalog {}: its platform images name different configs directories ({} and "
                                        "{})",
                                        name, image.configs_dir, dirs->first));
    }
    image.configs.push_back(std::move(*config));
  }

  // The catalog's files, from the layers as they stream (later layers and
  // whiteouts win), never extracted to disk.
  std::vector<release::Layer> layers;
  std::mutex kept_mutex;
  std::string reading_layer;             // the layer being read (one at a time, top down)
  std::set<std::string> configs_layers;  // the layers the catalog's files came from
  for (const auto& layer : parsed_images.front().layers) {
    layers.push_back(release::Layer{layer.digest, [&source, &image, &kept_mutex, &reading_layer, repository, layer] {
                                      reading_layer = layer.digest;
                                      return std::make_unique<release::KeepingReader>(
                                          source.open_blob(repository, layer), layer.digest, image.kept_layers,
                                          kept_mutex);
                                    }});
  }
  // Each file is parsed as it comes off the stream and dropped: only the
  // documents of the packages asked for (all without a list) are kept.
  std::optional<Error> bad_file;
  const std::set<std::string>* wanted = packages.empty() ? nullptr : &packages;
  release::FileSearch search{image.configs_dir, 512u << 20, [&](const std::string& path, std::string_view content) {
                               if (bad_file || !is_catalog_file(path)) return false;
                               configs_layers.insert(reading_layer);
                               auto added = image.catalog.add_file(content, path, wanted);
                               if (!added) bad_file = added.error();
                               return false;
                             }};
  auto read = [&layers, &search] { return release::read_layer_files(layers, {}, 64u << 20, &search); };
  auto files = co_await run_blocking(std::move(read));
  if (!files) co_return Error::make(files.error().kind, fmt::format("catalog {}: {}", name, files.error().message));
  if (bad_file) co_return Error::make(ErrorKind::Invalid, fmt::format("catalog {}: {}", name, bad_file->message));
  // The catalog was read from the first platform image: every other one must
  // hold the very layers its files came from, or the platforms' catalogs differ.
  for (std::size_t i = 1; i < parsed_images.size(); ++i) {
    for (const auto& digest : configs_layers) {
      const auto& theirs = parsed_images[i].layers;
      if (std::none_of(theirs.begin(), theirs.end(), [&](const Descriptor& d) { return d.digest == digest; })) {
        co_return Error::make(
            ErrorKind::Invalid,
            fmt::format("catalog {}: its {} image does not hold the configs layer {} of its {} image: the platforms' "
                        "catalogs differ, and fastsync keeps one selection for all of them",
                        name, parsed->children[i].platform.str(), digest, parsed->children[0].platform.str()));
      }
    }
  }
  if (image.catalog.packages.empty() && packages.empty()) {  // with a list, the selection names what is missing
    co_return Error::make(
        ErrorKind::Invalid,
        fmt::format("catalog {}: no package under /{} (is it a file-based catalog?)", name, image.configs_dir));
  }
  co_return image;
}

std::string selection_key(const CatalogFilter& filter) {
  std::string text = filter.full ? "full\n" : "heads\n";
  for (const auto& p : filter.packages) {
    text += fmt::format("package {} {} {} {}\n", p.name, p.default_channel, p.min_version, p.max_version);
    for (const auto& c : p.channels) text += fmt::format("  channel {} {} {}\n", c.name, c.min_version, c.max_version);
  }
  return sha256_digest(text);
}

Task<std::optional<CatalogThere>> catalog_at_destination(ImageSource& dest, Repository repository, std::string tag,
                                                         std::string source_digest, std::string selection) {
  auto top = co_await dest.get_manifest(repository, tag);
  if (!top) co_return std::nullopt;
  auto parsed = parse_manifest(top->bytes, top->media_type);
  if (!parsed) co_return std::nullopt;
  ParsedManifest image = *parsed;
  if (parsed->is_list) {
    if (parsed->children.empty()) co_return std::nullopt;
    std::string child = parsed->children.front().digest;
    auto m = co_await dest.get_manifest(repository, child);
    if (!m) co_return std::nullopt;
    auto p = parse_manifest(m->bytes, m->media_type);
    if (!p || p->is_list || p->layers.empty()) co_return std::nullopt;
    image = *p;
  }
  Descriptor config_ref = image.config;
  auto config = co_await read_whole_blob(dest, repository, config_ref);
  if (!config) co_return std::nullopt;
  rapidjson::Document doc;
  doc.Parse(config->c_str(), config->size());
  if (doc.HasParseError() || !doc.HasMember("config") || !doc["config"].IsObject()) co_return std::nullopt;
  const auto& settings = doc["config"];
  auto label = [&](const char* key) -> std::string {
    if (!settings.HasMember("Labels") || !settings["Labels"].IsObject()) return {};
    const auto& labels = settings["Labels"];
    return labels.HasMember(key) && labels[key].IsString() ? labels[key].GetString() : std::string();
  };
  if (label(kSourceLabel) != source_digest || label(kSelectionLabel) != selection) co_return std::nullopt;
  std::string configs_dir = trim_slashes(label(kConfigsLabel));
  // The kept catalog is whole in the top layer (its configs directory is opaque there).
  CatalogThere there;
  there.digest = top->digest;
  std::optional<Error> bad;
  release::FileSearch search{configs_dir, 512u << 20, [&](const std::string& path, std::string_view content) {
                               if (bad || !is_catalog_file(path)) return false;
                               auto added = there.kept.add_file(content, path);
                               if (!added) bad = added.error();
                               return false;
                             }};
  Descriptor layer = image.layers.back();
  std::vector<release::Layer> top_layer{
      release::Layer{layer.digest, [&dest, repository, layer] { return dest.open_blob(repository, layer); }}};
  auto read = [&top_layer, &search] { return release::read_layer_files(top_layer, {}, 64u << 20, &search); };
  auto files = co_await run_blocking(std::move(read));
  if (!files || bad || there.kept.packages.empty()) co_return std::nullopt;
  co_return there;
}

Result<RebuiltCatalog> rebuild_catalog(const CatalogImage& image, const Catalog& kept, const std::string& selection) {
  std::vector<LayerEntry> entries{{image.configs_dir + "/", "", true},
                                  {image.configs_dir + "/.wh..wh..opq", "", false}};
  for (const auto& [path, content] : render_catalog(kept)) {
    entries.push_back({image.configs_dir + "/" + path.substr(0, path.find('/') + 1), "", true});
    entries.push_back({image.configs_dir + "/" + path, content, false});
  }
  if (!image.cache_dir.empty()) {
    auto slash = image.cache_dir.rfind('/');
    std::string parent = slash == std::string::npos ? "" : image.cache_dir.substr(0, slash);
    std::string base = slash == std::string::npos ? image.cache_dir : image.cache_dir.substr(slash + 1);
    if (!parent.empty()) entries.push_back({parent + "/", "", true});
    entries.push_back({(parent.empty() ? "" : parent + "/") + ".wh." + base, "", false});
  }
  auto layer = layer_of(entries);
  if (!layer) return layer.error();
  ConfigChange change;
  change.created_by = "fastsync: the catalog's kept packages";
  change.labels = {{kSourceLabel, image.top.digest}, {kSelectionLabel, selection}};

  RebuiltCatalog out;
  std::set<std::string> have;
  std::map<std::string, ManifestData> replaced;  // old image digest -> new manifest
  for (std::size_t i = 0; i < image.images.size(); ++i) {
    auto built = add_layer(image.images[i], image.configs[i], *layer, change);
    if (!built) return built.error();
    for (const auto& b : built->blobs) {
      if (have.insert(b.digest).second) out.blobs.push_back(b);
    }
    out.new_blobs.insert(built->new_blobs.begin(), built->new_blobs.end());
    replaced[image.images[i].digest] = built->manifest;
    out.manifests.push_back(built->manifest);
  }
  if (image.images.size() == 1 && image.images.front().digest == image.top.digest) {
    out.digest = out.manifests.back().digest;
    return out;
  }
  // The index as it was (platforms, annotations), each entry pointing at its new image.
  rapidjson::Document index;
  index.Parse(image.top.bytes.c_str(), image.top.bytes.size());
  if (index.HasParseError() || !index.HasMember("manifests") || !index["manifests"].IsArray()) {
    return Error::make(ErrorKind::Invalid, fmt::format("catalog {}: its index is not JSON", image.name));
  }
  auto& alloc = index.GetAllocator();
  for (auto& entry : index["manifests"].GetArray()) {
    if (!entry.HasMember("digest") || !entry["digest"].IsString()) continue;
    auto it = replaced.find(entry["digest"].GetString());
    if (it == replaced.end()) continue;
    entry["digest"].SetString(it->second.digest.c_str(), alloc);
    if (entry.HasMember("size")) entry["size"].SetUint64(it->second.bytes.size());
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  index.Accept(w);
  ManifestData top{std::string(buffer.GetString(), buffer.GetSize()), image.top.media_type, {}};
  top.digest = sha256_digest(top.bytes);
  out.digest = top.digest;
  out.manifests.push_back(std::move(top));
  return out;
}

}  // namespace fastsync::imageset
