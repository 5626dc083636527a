#include "release/payload/image_references.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <set>

namespace fastsync::release {
namespace {

Error invalid(std::string message) { return Error::make(ErrorKind::Invalid, std::move(message)); }

std::string str(const rapidjson::Value& v, const char* key) {
  if (v.IsObject() && v.HasMember(key) && v[key].IsString()) return {v[key].GetString(), v[key].GetStringLength()};
  return {};
}

}  // namespace

Result<ImageReferences> parse_image_references(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return invalid(fmt::format("image-references: not valid JSON ({} at byte {})",
                               rapidjson::GetParseError_En(doc.GetParseError()), doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return invalid("image-references: not a JSON object");
  std::string kind = str(doc, "kind");
  if (kind != "ImageStream")
    return invalid(fmt::format("image-references: kind is \"{}\", expected \"ImageStream\"", kind));
  ImageReferences refs;
  if (doc.HasMember("metadata")) refs.name = str(doc["metadata"], "name");
  if (!doc.HasMember("spec") || !doc["spec"].IsObject() || !doc["spec"].HasMember("tags") ||
      !doc["spec"]["tags"].IsArray()) {
    return invalid("image-references: spec.tags is missing or not a list");
  }
  const auto& tags = doc["spec"]["tags"];
  if (tags.Empty()) return invalid("image-references: spec.tags is empty: the release names no images");
  std::set<std::string> seen;
  for (rapidjson::SizeType i = 0; i < tags.Size(); ++i) {
    const auto& tag = tags[i];
    std::string name = str(tag, "name");
    if (name.empty()) return invalid(fmt::format("image-references: spec.tags[{}] has no name", i));
    if (!is_valid_tag(name)) {
      return invalid(fmt::format("image-references: tag \"{}\" is not a valid tag name", name));
    }
    if (!seen.insert(name).second)
      return invalid(fmt::format("image-references: tag \"{}\" appears more than once", name));
    if (!tag.HasMember("from") || !tag["from"].IsObject()) {
      return invalid(fmt::format("image-references: tag \"{}\" has no from", name));
    }
    std::string from_kind = str(tag["from"], "kind");
    if (from_kind != "DockerImage") {
      return invalid(
          fmt::format("image-references: tag \"{}\": from.kind is \"{}\", expected \"DockerImage\"", name, from_kind));
    }
    std::string from_name = str(tag["from"], "name");
    auto ref = Reference::parse(from_name);
    if (!ref) return invalid(fmt::format("image-references: tag \"{}\": {}", name, ref.error().message));
    if (ref->digest.empty()) {
      return invalid(fmt::format("image-references: tag \"{}\": from.name \"{}\" is not pinned by digest (@sha256:…)",
                                 name, from_name));
    }
    refs.components.push_back(ComponentRef{name, std::move(*ref)});
  }
  return refs;
}

Result<ReleaseMetadata> parse_release_metadata(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return invalid(fmt::format("release-metadata: not valid JSON ({} at byte {})",
                               rapidjson::GetParseError_En(doc.GetParseError()), doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return invalid("release-metadata: not a JSON object");
  ReleaseMetadata meta;
  meta.version = str(doc, "version");
  if (meta.version.empty()) return invalid("release-metadata: version is missing");
  if (doc.HasMember("previous") && doc["previous"].IsArray()) {
    for (const auto& p : doc["previous"].GetArray()) {
      if (p.IsString()) meta.previous.emplace_back(p.GetString());
    }
  }
  return meta;
}

}  // namespace fastsync::release
