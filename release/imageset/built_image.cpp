#include "release/imageset/built_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <optional>

#include "registry/core/digest.h"

namespace fastsync::imageset {
namespace {

struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ReadFree>;
using WriteArchive = std::unique_ptr<archive, WriteFree>;

la_ssize_t append_to_string(archive*, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

Error archive_error(archive* a, const std::string& what) {
  const char* why = archive_error_string(a);
  return Error::make(ErrorKind::Invalid, fmt::format("{}: {}", what, why ? why : "libarchive failed"));
}

// The path inside the tarball, without "./" or "/" in front; empty for the
// root itself; nullopt when it would climb out of the prefix.
std::optional<std::string> relative_path(std::string path) {
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (path == ".") path.clear();
  for (std::size_t at = 0; at <= path.size();) {
    std::size_t slash = std::min(path.find('/', at), path.size());
    if (path.compare(at, slash - at, "..") == 0) return std::nullopt;
    at = slash + 1;
  }
  return path;
}

// One entry fastsync writes itself: owned by root, time 0.
Status write_entry(archive* out, const LayerEntry& e) {
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, e.path.c_str());
  archive_entry_set_filetype(entry, e.directory ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(entry, e.directory ? 0755 : 0644);
  archive_entry_set_size(entry, e.directory ? 0 : static_cast<la_int64_t>(e.content.size()));
  archive_entry_set_mtime(entry, 0, 0);
  archive_entry_set_uid(entry, 0);
  archive_entry_set_gid(entry, 0);
  archive_entry_set_uname(entry, "root");
  archive_entry_set_gname(entry, "root");
  int rc = archive_write_header(out, entry);
  archive_entry_free(entry);
  if (rc != ARCHIVE_OK) return archive_error(out, "layer: " + e.path);
  if (!e.directory && !e.content.empty() && archive_write_data(out, e.content.data(), e.content.size()) < 0) {
    return archive_error(out, "layer: " + e.path);
  }
  return Status{};
}

Status write_directory(archive* out, const std::string& path) { return write_entry(out, {path + "/", "", true}); }

// gzip without a timestamp or a name in its header: equal tars, equal digests.
Result<std::string> gzip(const std::string& tar) {
  std::string out;
  WriteArchive a(archive_write_new());
  if (archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_write_set_options(a.get(), "gzip:!timestamp") != ARCHIVE_OK ||
      archive_write_set_format_raw(a.get()) != ARCHIVE_OK || archive_write_set_bytes_in_last_block(a.get(), 1) ||
      archive_write_open(a.get(), &out, nullptr, append_to_string, nullptr) != ARCHIVE_OK) {
    return archive_error(a.get(), "gzip");
  }
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, "layer.tar");
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, 0644);
  archive_entry_set_size(entry, static_cast<la_int64_t>(tar.size()));
  int rc = archive_write_header(a.get(), entry);
  archive_entry_free(entry);
  if (rc != ARCHIVE_OK || (!tar.empty() && archive_write_data(a.get(), tar.data(), tar.size()) < 0) ||
      archive_write_close(a.get()) != ARCHIVE_OK) {
    return archive_error(a.get(), "gzip");
  }
  return out;
}

// A written tar as a layer: compressed, with its digests.
Result<BuiltLayer> finish_layer(const std::string& tar) {
  auto compressed = gzip(tar);
  if (!compressed) return compressed.error();
  BuiltLayer layer;
  layer.diff_id = sha256_digest(tar);
  layer.digest = sha256_digest(*compressed);
  layer.compressed = std::make_shared<const std::string>(std::move(*compressed));
  return layer;
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  v.Accept(w);
  return std::string(buffer.GetString(), buffer.GetSize());
}

void set_string(rapidjson::Value& object, const char* key, const std::string& value,
                rapidjson::Document::AllocatorType& alloc) {
  rapidjson::Value v(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc);
  if (object.HasMember(key)) {
    object[key] = v;
  } else {
    object.AddMember(rapidjson::Value(key, alloc), v, alloc);
  }
}

rapidjson::Value& member(rapidjson::Value& object, const char* key, rapidjson::Type type,
                         rapidjson::Document::AllocatorType& alloc) {
  if (!object.HasMember(key) || object[key].GetType() != type) {
    object.RemoveMember(key);
    object.AddMember(rapidjson::Value(key, alloc), rapidjson::Value(type), alloc);
  }
  return object[key];
}

}  // namespace

Result<BuiltLayer> layer_under(std::string_view tarball, const std::string& prefix, const std::string& origin) {
  ReadArchive in(archive_read_new());
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  if (archive_read_open_memory(in.get(), tarball.data(), tarball.size()) != ARCHIVE_OK) {
    return archive_error(in.get(), origin);
  }
  std::string tar;
  WriteArchive out(archive_write_new());
  if (archive_write_set_format_pax_restricted(out.get()) != ARCHIVE_OK ||
      archive_write_open(out.get(), &tar, nullptr, append_to_string, nullptr) != ARCHIVE_OK) {
    return archive_error(out.get(), "layer");
  }
  // The directories above the files, as a build's COPY would create them.
  for (std::size_t slash = prefix.find('/'); slash != std::string::npos; slash = prefix.find('/', slash + 1)) {
    auto made = write_directory(out.get(), prefix.substr(0, slash));
    if (!made) return made.error();
  }
  auto made = write_directory(out.get(), prefix);
  if (!made) return made.error();

  archive_entry* entry = nullptr;
  int rc = ARCHIVE_OK;
  std::size_t files = 0;
  while ((rc = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
    auto path = relative_path(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "");
    if (!path) {
      return Error::make(ErrorKind::Invalid, fmt::format("{}: entry \"{}\" climbs out of its directory", origin,
                                                         archive_entry_pathname(entry)));
    }
    if (path->empty()) continue;  // the tarball's own root
    archive_entry_set_pathname(entry, (prefix + "/" + *path).c_str());
    if (const char* link = archive_entry_hardlink(entry)) {
      auto target = relative_path(link);
      if (!target) return Error::make(ErrorKind::Invalid, fmt::format("{}: hard link to \"{}\"", origin, link));
      archive_entry_set_hardlink(entry, (prefix + "/" + *target).c_str());
    }
    archive_entry_set_uid(entry, 0);
    archive_entry_set_gid(entry, 0);
    archive_entry_set_uname(entry, "root");
    archive_entry_set_gname(entry, "root");
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) return archive_error(out.get(), "layer");
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int data_rc = ARCHIVE_OK;
    while ((data_rc = archive_read_data_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data(out.get(), block, size) < 0) return archive_error(out.get(), "layer");
    }
    if (data_rc != ARCHIVE_EOF) return archive_error(in.get(), origin);
    ++files;
  }
  if (rc != ARCHIVE_EOF) return archive_error(in.get(), origin);
  if (files == 0) return Error::make(ErrorKind::Invalid, fmt::format("{}: the archive holds no file", origin));
  if (archive_write_close(out.get()) != ARCHIVE_OK) return archive_error(out.get(), "layer");

  return finish_layer(tar);
}

Result<BuiltLayer> layer_of(const std::vector<LayerEntry>& entries) {
  std::string tar;
  WriteArchive out(archive_write_new());
  if (archive_write_set_format_pax_restricted(out.get()) != ARCHIVE_OK ||
      archive_write_open(out.get(), &tar, nullptr, append_to_string, nullptr) != ARCHIVE_OK) {
    return archive_error(out.get(), "layer");
  }
  for (const auto& e : entries) {
    auto written = write_entry(out.get(), e);
    if (!written) return written.error();
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) return archive_error(out.get(), "layer");
  return finish_layer(tar);
}

Result<BuiltImage> add_layer(const ManifestData& base, std::string_view base_config, const BuiltLayer& layer,
                             const ConfigChange& change) {
  auto parsed = parse_manifest(base.bytes, base.media_type);
  if (!parsed) return parsed.error();
  if (parsed->is_list) {
    return Error::make(ErrorKind::Invalid, fmt::format("{}: a manifest list, not an image", base.digest));
  }
  const bool oci = parsed->media_type == media_type::kOciManifest;

  rapidjson::Document config;
  config.Parse(base_config.data(), base_config.size());
  if (config.HasParseError() || !config.IsObject()) {
    return Error::make(ErrorKind::Invalid, fmt::format("{}: its configuration is not a JSON object", base.digest));
  }
  auto& alloc = config.GetAllocator();
  auto& rootfs = member(config, "rootfs", rapidjson::kObjectType, alloc);
  set_string(rootfs, "type", "layers", alloc);
  member(rootfs, "diff_ids", rapidjson::kArrayType, alloc)
      .PushBack(rapidjson::Value(layer.diff_id.c_str(), alloc), alloc);
  if (config.HasMember("history") && config["history"].IsArray()) {
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("created_by", rapidjson::Value(change.created_by.c_str(), alloc), alloc);
    config["history"].PushBack(entry, alloc);
  }
  auto& settings = member(config, "config", rapidjson::kObjectType, alloc);
  if (!change.cmd.empty()) {
    auto& cmd = member(settings, "Cmd", rapidjson::kArrayType, alloc);
    cmd.Clear();
    for (const auto& arg : change.cmd) cmd.PushBack(rapidjson::Value(arg.c_str(), alloc), alloc);
  }
  if (!change.labels.empty()) {
    auto& labels = member(settings, "Labels", rapidjson::kObjectType, alloc);
    for (const auto& [key, value] : change.labels) set_string(labels, key.c_str(), value, alloc);
  }
  auto config_bytes = std::make_shared<const std::string>(to_json(config));
  std::string config_digest = sha256_digest(*config_bytes);

  rapidjson::Document manifest;
  manifest.Parse(base.bytes.data(), base.bytes.size());
  auto& m_alloc = manifest.GetAllocator();
  auto& config_ref = manifest["config"];
  set_string(config_ref, "digest", config_digest, m_alloc);
  config_ref["size"].SetUint64(config_bytes->size());
  rapidjson::Value added(rapidjson::kObjectType);
  std::string layer_type =
      oci ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.docker.image.rootfs.diff.tar.gzip";
  added.AddMember("mediaType", rapidjson::Value(layer_type.c_str(), m_alloc), m_alloc);
  added.AddMember("size", rapidjson::Value(static_cast<std::uint64_t>(layer.compressed->size())), m_alloc);
  added.AddMember("digest", rapidjson::Value(layer.digest.c_str(), m_alloc), m_alloc);
  manifest["layers"].PushBack(added, m_alloc);

  BuiltImage image;
  image.manifest.bytes = to_json(manifest);
  image.manifest.media_type = parsed->media_type;
  image.manifest.digest = sha256_digest(image.manifest.bytes);
  image.blobs.push_back(Descriptor{parsed->config.media_type, config_digest, config_bytes->size(), {}});
  image.blobs.insert(image.blobs.end(), parsed->layers.begin(), parsed->layers.end());
  image.blobs.push_back(Descriptor{layer_type, layer.digest, layer.compressed->size(), {}});
  image.new_blobs.emplace(config_digest, config_bytes);
  image.new_blobs.emplace(layer.digest, layer.compressed);
  return image;
}

}  // namespace fastsync::imageset
