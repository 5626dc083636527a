#include "release/payload/release.h"

#include <fmt/format.h>

#include "release/payload/layer_files.h"

namespace fastsync::release {
std::string platform_for_arch(const std::string& arch) {
  if (arch == "x86_64") return "linux/amd64";
  if (arch == "aarch64") return "linux/arm64";
  if (arch == "ppc64le") return "linux/ppc64le";
  if (arch == "s390x") return "linux/s390x";
  return {};
}

bool is_known_arch(const std::string& arch) { return arch == "multi" || !platform_for_arch(arch).empty(); }

std::string release_tag(const std::string& version, const std::string& arch) { return version + "-" + arch; }

std::string component_tag(const std::string& version, const std::string& arch, const std::string& name) {
  return version + "-" + arch + "-" + name;
}

Task<Result<Release>> resolve_release(ImageSource& source, ReleaseRequest request) {
  Release rel;
  rel.version = request.version;
  rel.arch = request.arch;
  rel.tag = release_tag(request.version, request.arch);
  rel.repository = request.source;
  const std::string where = request.source.str();

  const std::string& reference = request.digest.empty() ? rel.tag : request.digest;
  auto top = co_await source.get_manifest(request.source, reference);
  if (!top) {
    if (top.error().kind == ErrorKind::NotFound) {
      co_return Error::make(ErrorKind::NotFound, fmt::format("release {}{} not found at {} ({})", rel.tag,
                                                             request.digest.empty() ? "" : " (" + request.digest + ")",
                                                             where, top.error().message));
    }
    co_return top.error();
  }
  rel.manifest = std::move(*top);
  auto parsed = parse_manifest(rel.manifest.bytes, rel.manifest.media_type);
  if (!parsed) {
    co_return Error::make(ErrorKind::Invalid, fmt::format("release {}:{}: {}", where, rel.tag, parsed.error().message));
  }

  ParsedManifest payload = *parsed;
  rel.payload_digest = rel.manifest.digest;
  if (parsed->is_list) {
    std::string platform = !request.platform.empty() ? request.platform
                           : request.arch == "multi" ? "linux/amd64"
                                                     : platform_for_arch(request.arch);
    const Descriptor* child = find_platform(*parsed, platform);
    if (!child) {
      std::string have;
      for (const auto& c : parsed->children) have += (have.empty() ? "" : ", ") + c.platform.str();
      co_return Error::make(ErrorKind::Invalid,
                            fmt::format("release {}:{} is a manifest list with no {} image (it has: {})", where,
                                        rel.tag, platform, have));
    }
    auto child_manifest = co_await source.get_manifest(request.source, child->digest);
    if (!child_manifest) co_return child_manifest.error();
    auto child_parsed = parse_manifest(child_manifest->bytes, child_manifest->media_type);
    if (!child_parsed || child_parsed->is_list) {
      co_return Error::make(ErrorKind::Invalid, fmt::format("release {}@{}: the {} entry is not an image manifest",
                                                            where, child->digest, platform));
    }
    payload = *child_parsed;
    rel.payload_digest = child_manifest->digest;
  }

  // Read each layer from the destination when it already has it: a rerun after
  // an interrupted run must not download the release's layers again.
  std::vector<ImageSource*> layer_ends(payload.layers.size(), &source);
  std::vector<Repository> layer_repos(payload.layers.size(), request.source);
  if (request.local_copy) {
    ImageSource& local = *request.local_copy->endpoint;
    const Repository& there_repo = request.local_copy->repository;
    auto present = co_await local.manifest_digest(there_repo, rel.payload_digest);
    std::vector<bool> there(payload.layers.size(), present && *present == rel.payload_digest);
    if (!there.empty() && !there.front()) {
      std::vector<Task<Status>> probes;
      for (const auto& layer : payload.layers) probes.push_back(local.blob_exists(there_repo, layer.digest));
      auto found = co_await when_all(std::move(probes));
      for (std::size_t i = 0; i < found.size(); ++i) there[i] = found[i].ok();
    }
    for (std::size_t i = 0; i < there.size(); ++i) {
      if (there[i]) {
        layer_ends[i] = &local;
        layer_repos[i] = there_repo;
      }
    }
  }
  std::vector<Layer> layers;
  std::mutex kept_mutex;
  for (std::size_t i = 0; i < payload.layers.size(); ++i) {
    layers.push_back(Layer{payload.layers[i].digest,
                           [end = layer_ends[i], &rel, &kept_mutex, repo = layer_repos[i], layer = payload.layers[i]] {
                             return std::make_unique<KeepingReader>(end->open_blob(repo, layer), layer.digest,
                                                                    rel.fetched_layers, kept_mutex);
                           }});
  }
  FileSearch key_search{"release-manifests", 1u << 20, [](const std::string&, std::string_view content) {
                          return is_verification_config_map(content);
                        }};
  auto files = co_await run_blocking([&] {
    return read_layer_files(layers, {kImageReferencesPath, kReleaseMetadataPath}, 64u << 20, &key_search);
  });
  if (!files) co_return files.error();
  for (const char* path : {kImageReferencesPath, kReleaseMetadataPath}) {
    if (!files->count(path)) {
      co_return Error::make(ErrorKind::Invalid,
                            fmt::format("release image {}@{} has no {} (is it an OpenShift release image?)", where,
                                        rel.payload_digest, path));
    }
  }
  auto refs = parse_image_references(files->at(kImageReferencesPath));
  if (!refs) co_return refs.error();
  auto meta = parse_release_metadata(files->at(kReleaseMetadataPath));
  if (!meta) co_return meta.error();
  if (meta->version != request.version) {
    co_return Error::make(ErrorKind::Invalid, fmt::format("release-metadata: version is \"{}\", but --version is {}",
                                                          meta->version, request.version));
  }
  rel.metadata = std::move(*meta);
  for (const auto& [path, content] : *files) {
    if (path == kImageReferencesPath || path == kReleaseMetadataPath) continue;
    auto keys = parse_verification_keys(content, path);
    if (!keys) co_return keys.error();
    if (keys->empty()) continue;
    rel.verification_file = path;
    for (auto& k : *keys) rel.verification_keys.push_back(std::move(k));
  }

  for (auto& c : refs->components) {
    Component comp;
    comp.name = c.name;
    comp.original = c.image.str();
    comp.digest = c.image.digest;
    comp.repository = Repository{c.image.registry, c.image.repository};
    if (comp.repository.registry != request.source.registry) comp.repository.registry = request.source.registry;
    std::string tag = component_tag(rel.version, rel.arch, c.name);
    if (!is_valid_tag(tag)) {
      co_return Error::make(
          ErrorKind::Invalid,
          fmt::format("image-references: tag \"{}\" makes the destination tag \"{}\" invalid (over 128 "
                      "characters?)",
                      c.name, tag));
    }
    rel.components.push_back(std::move(comp));
  }
  co_return rel;
}

}  // namespace fastsync::release
