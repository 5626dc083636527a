#include "release/signatures/signatures.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <yaml-cpp/yaml.h>

#include "registry/core/digest.h"

namespace fastsync::release {
namespace {

// The ConfigMap as the payload ships it: YAML written by people (the keys as
// block scalars, "key: |" and the armored key below), or JSON. yaml-cpp reads
// both. A key must be text: a block or a quoted string, never a plain one-line
// scalar (the shape of a key pasted in wrong).
Result<std::vector<PublicKey>> keys_from(std::string_view manifest, const std::string& file) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(manifest));
  } catch (const YAML::Exception& e) {
    return Error::make(ErrorKind::Invalid, fmt::format("{}: line {}: {}", file, e.mark.line + 1, e.msg));
  }
  std::vector<PublicKey> keys;
  if (!doc.IsMap() || !doc["data"] || !doc["data"].IsMap()) return keys;
  for (const auto& entry : doc["data"]) {
    std::string name = entry.first.as<std::string>("");
    if (name.rfind(kVerifierKeyPrefix, 0) != 0) continue;
    const YAML::Node& value = entry.second;
    if (!value.IsScalar() || value.Tag() == "?") {
      return Error::make(ErrorKind::Invalid, fmt::format("{}: line {}: {} is not a block of text (\"{}: |\" and the "
                                                         "key below it)",
                                                         file, value.Mark().line + 1, name, name));
    }
    std::string data = value.Scalar();
    if (data.find_first_not_of(" \t\r\n") == std::string::npos) {
      return Error::make(ErrorKind::Invalid, fmt::format("{}: {} is empty", file, name));
    }
    keys.push_back(PublicKey{std::move(name), std::move(data)});
  }
  return keys;
}

std::string hex_of(const std::string& digest) {
  auto colon = digest.find(':');
  return colon == std::string::npos ? digest : digest.substr(colon + 1);
}

}  // namespace

bool is_verification_config_map(std::string_view manifest) {
  return manifest.find(kVerificationConfigMapAnnotation) != std::string_view::npos &&
         manifest.find("ConfigMap") != std::string_view::npos;
}

Result<std::vector<PublicKey>> parse_verification_keys(std::string_view manifest, const std::string& file) {
  return keys_from(manifest, file);
}

Result<std::string> check_signed_document(std::string_view document, const std::string& digest) {
  auto refuse = [](const std::string& why) { return Error::make(ErrorKind::Unverified, why); };
  rapidjson::Document d;
  d.Parse(document.data(), document.size());
  if (d.HasParseError() || !d.IsObject()) return refuse("the signed document is not JSON");
  auto critical = d.FindMember("critical");
  if (critical == d.MemberEnd() || !critical->value.IsObject())
    return refuse("the signed document has no \"critical\"");
  const auto& c = critical->value;
  auto type = c.FindMember("type");
  if (type == c.MemberEnd() || !type->value.IsString() ||
      std::string_view(type->value.GetString()) != "atomic container signature") {
    return refuse("critical.type is not \"atomic container signature\"");
  }
  auto image = c.FindMember("image");
  const rapidjson::Value* signed_digest = nullptr;
  if (image != c.MemberEnd() && image->value.IsObject()) {
    auto m = image->value.FindMember("docker-manifest-digest");
    if (m != image->value.MemberEnd() && m->value.IsString()) signed_digest = &m->value;
  }
  if (!signed_digest) return refuse("critical.image.docker-manifest-digest is missing");
  if (std::string_view(signed_digest->GetString()) != digest) {
    return refuse(fmt::format("it signs {}, not {}", signed_digest->GetString(), digest));
  }
  auto identity = c.FindMember("identity");
  if (identity == c.MemberEnd() || !identity->value.IsObject()) return refuse("critical.identity is missing");
  auto reference = identity->value.FindMember("docker-reference");
  if (reference == identity->value.MemberEnd() || !reference->value.IsString() ||
      reference->value.GetStringLength() == 0) {
    return refuse("critical.identity.docker-reference is missing");
  }
  return std::string(reference->value.GetString(), reference->value.GetStringLength());
}

std::string signature_config_map_name(const std::string& digest) { return "sha256-" + hex_of(digest); }

std::string signature_config_map_file(const std::string& digest) {
  return "signature-sha256-" + hex_of(digest).substr(0, 16) + ".json";
}

std::string signature_config_map_json(const std::string& digest, const std::vector<std::string>& signatures) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  std::string name = signature_config_map_name(digest);
  w.StartObject();
  w.Key("apiVersion");
  w.String("v1");
  w.Key("kind");
  w.String("ConfigMap");
  w.Key("metadata");
  w.StartObject();
  w.Key("name");
  w.String(name.c_str());
  w.Key("namespace");
  w.String("openshift-config-managed");
  w.Key("labels");
  w.StartObject();
  w.Key("release.openshift.io/verification-signatures");
  w.String("");
  w.EndObject();
  w.EndObject();
  w.Key("binaryData");
  w.StartObject();
  for (std::size_t i = 0; i < signatures.size(); ++i) {
    w.Key(fmt::format("{}-{}", name, i + 1).c_str());
    w.String(base64_encode(signatures[i]).c_str());
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace fastsync::release
