#include "registry/core/manifest.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "registry/core/digest.h"

namespace fastsync {

bool is_list_media_type(std::string_view mt) { return mt == media_type::kDockerList || mt == media_type::kOciIndex; }
bool is_image_media_type(std::string_view mt) {
  return mt == media_type::kDockerManifest || mt == media_type::kOciManifest;
}

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

namespace {

std::string string_member(const rapidjson::Value& v, const char* key) {
  if (v.IsObject() && v.HasMember(key) && v[key].IsString()) return {v[key].GetString(), v[key].GetStringLength()};
  return {};
}

Result<Descriptor> parse_descriptor(const rapidjson::Value& v, std::string_view where) {
  if (!v.IsObject()) return Error::make(ErrorKind::Invalid, fmt::format("manifest: {} is not an object", where));
  Descriptor d;
  d.media_type = string_member(v, "mediaType");
  d.digest = string_member(v, "digest");
  if (!is_sha256_digest(d.digest)) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("manifest: {} has digest \"{}\", expected sha256:<64 hex>", where, d.digest));
  }
  if (!v.HasMember("size") || !v["size"].IsUint64()) {
    return Error::make(ErrorKind::Invalid, fmt::format("manifest: {} ({}) has no valid size", where, d.digest));
  }
  d.size = v["size"].GetUint64();
  if (v.HasMember("platform") && v["platform"].IsObject()) {
    const auto& p = v["platform"];
    d.platform = {string_member(p, "os"), string_member(p, "architecture"), string_member(p, "variant")};
  }
  return d;
}

}  // namespace

Result<ParsedManifest> parse_manifest(std::string_view bytes, std::string_view content_type) {
  rapidjson::Document doc;
  doc.Parse(bytes.data(), bytes.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error::make(
        ErrorKind::Invalid,
        fmt::format("manifest is not a JSON object ({} at byte {})",
                    doc.HasParseError() ? rapidjson::GetParseError_En(doc.GetParseError()) : "wrong type",
                    doc.GetErrorOffset()));
  }
  ParsedManifest m;
  m.media_type = string_member(doc, "mediaType");
  if (m.media_type.empty()) {
    // OCI allows omitting mediaType; Content-Type then says what it is
    // (parameters such as "; charset=utf-8" are ignored).
    m.media_type = std::string(content_type.substr(0, content_type.find(';')));
    while (!m.media_type.empty() && m.media_type.back() == ' ') m.media_type.pop_back();
  }
  if (m.media_type.empty() || !(is_list_media_type(m.media_type) || is_image_media_type(m.media_type))) {
    if (doc.HasMember("schemaVersion") && doc["schemaVersion"].IsInt() && doc["schemaVersion"].GetInt() == 1) {
      return Error::make(ErrorKind::Invalid, "manifest is Docker schema 1, which fastsync does not copy");
    }
    // An OCI index without mediaType is recognisable by its "manifests" array.
    if (m.media_type.empty() && doc.HasMember("manifests")) {
      m.media_type = std::string(media_type::kOciIndex);
    } else if (m.media_type.empty() && doc.HasMember("layers")) {
      m.media_type = std::string(media_type::kOciManifest);
    } else {
      return Error::make(ErrorKind::Invalid, fmt::format("unsupported manifest media type \"{}\"", m.media_type));
    }
  }
  m.is_list = is_list_media_type(m.media_type);
  if (doc.HasMember("subject") && doc["subject"].IsObject() && doc["subject"].HasMember("digest") &&
      doc["subject"]["digest"].IsString()) {
    m.subject = doc["subject"]["digest"].GetString();
  }
  if (m.is_list) {
    if (!doc.HasMember("manifests") || !doc["manifests"].IsArray()) {
      return Error::make(ErrorKind::Invalid, "manifest list has no \"manifests\" array");
    }
    size_t i = 0;
    for (const auto& entry : doc["manifests"].GetArray()) {
      auto d = parse_descriptor(entry, fmt::format("manifests[{}]", i++));
      if (!d) return d.error();
      m.children.push_back(std::move(*d));
    }
    return m;
  }
  if (!doc.HasMember("config")) return Error::make(ErrorKind::Invalid, "image manifest has no \"config\"");
  auto config = parse_descriptor(doc["config"], "config");
  if (!config) return config.error();
  m.config = std::move(*config);
  if (!doc.HasMember("layers") || !doc["layers"].IsArray()) {
    return Error::make(ErrorKind::Invalid, "image manifest has no \"layers\" array");
  }
  size_t i = 0;
  for (const auto& entry : doc["layers"].GetArray()) {
    auto d = parse_descriptor(entry, fmt::format("layers[{}]", i++));
    if (!d) return d.error();
    m.layers.push_back(std::move(*d));
  }
  return m;
}

const Descriptor* find_platform(const ParsedManifest& list, std::string_view platform) {
  for (const auto& child : list.children) {
    std::string os_arch = child.platform.os + "/" + child.platform.architecture;
    if (child.platform.str() == platform || os_arch == platform) return &child;
  }
  return nullptr;
}

}  // namespace fastsync
