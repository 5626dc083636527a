#include "release/signatures.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "registry/digest.h"

namespace fastsync::release {
namespace {

std::size_t indentation(std::string_view line) {
  std::size_t n = 0;
  while (n < line.size() && line[n] == ' ') ++n;
  return n;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

// The payload's ConfigMap is YAML written by people: the keys are block
// scalars ("key: |" and indented lines). No YAML library is among our
// dependencies, and this is the one shape the file has ever had.
Result<std::vector<PublicKey>> keys_from_yaml(std::string_view manifest, const std::string& file) {
  std::vector<PublicKey> keys;
  auto lines = split_lines(manifest);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    std::size_t indent = indentation(line);
    std::string_view body = trim(line);
    if (body.rfind(kVerifierKeyPrefix, 0) != 0) continue;
    auto colon = body.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(trim(body.substr(0, colon)));
    std::string_view value = trim(body.substr(colon + 1));
    if (value.empty() || (value.front() != '|' && value.front() != '>')) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("{}: {} is not a block of text (\"{}: |\" and the key below it)", file, name, name));
    }
    std::string block;
    std::size_t block_indent = 0;
    std::size_t j = i + 1;
    for (; j < lines.size(); ++j) {
      std::string_view l = lines[j];
      if (trim(l).empty()) {
        block += '\n';
        continue;
      }
      std::size_t in = indentation(l);
      if (in <= indent) break;
      if (block_indent == 0) block_indent = in;
      std::string_view content = l.size() > block_indent ? l.substr(std::min(in, block_indent)) : std::string_view();
      while (!content.empty() && content.back() == '\r') content.remove_suffix(1);
      block.append(content);
      block += '\n';
    }
    i = j - 1;
    if (block.find_first_not_of('\n') == std::string::npos) {
      return Error::make(ErrorKind::Invalid, fmt::format("{}: {} is empty", file, name));
    }
    keys.push_back(PublicKey{std::move(name), std::move(block)});
  }
  return keys;
}

Result<std::vector<PublicKey>> keys_from_json(std::string_view manifest, const std::string& file) {
  rapidjson::Document d;
  d.Parse(manifest.data(), manifest.size());
  if (d.HasParseError() || !d.IsObject()) return Error::make(ErrorKind::Invalid, fmt::format("{}: not JSON", file));
  std::vector<PublicKey> keys;
  auto data = d.FindMember("data");
  if (data == d.MemberEnd() || !data->value.IsObject()) return keys;
  for (const auto& m : data->value.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (name.rfind(kVerifierKeyPrefix, 0) != 0) continue;
    if (!m.value.IsString()) return Error::make(ErrorKind::Invalid, fmt::format("{}: {} is not a string", file, name));
    keys.push_back(PublicKey{name, std::string(m.value.GetString(), m.value.GetStringLength())});
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
  auto first = manifest.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && manifest[first] == '{') return keys_from_json(manifest, file);
  return keys_from_yaml(manifest, file);
}

Result<std::string> check_signed_document(std::string_view document, const std::string& digest) {
  auto refuse = [](const std::string& why) { return Error::make(ErrorKind::Unverified, why); };
  rapidjson::Document d;
  d.Parse(document.data(), document.size());
  if (d.HasParseError() || !d.IsObject()) return refuse("the signed document is not JSON");
  auto critical = d.FindMember("critical");
  if (critical == d.MemberEnd() || !critical->value.IsObject()) return refuse("the signed document has no \"critical\"");
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
