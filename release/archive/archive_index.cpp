#include "release/archive/archive_index.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "registry/core/digest.h"

namespace fastsync::release {
namespace {

using Value = rapidjson::Value;

struct Reader {
  const std::string& origin;
  std::string where;

  Error bad(const std::string& what) const {
    return Error::make(ErrorKind::Invalid, fmt::format("archive index {}: {}{}", origin, where, what));
  }
  Result<std::string> string(const Value& v, const char* key) const {
    if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString())
      return bad(fmt::format(".{} is missing or not a string", key));
    return std::string(v[key].GetString(), v[key].GetStringLength());
  }
  Result<std::uint64_t> number(const Value& v, const char* key) const {
    if (!v.IsObject() || !v.HasMember(key) || !v[key].IsUint64())
      return bad(fmt::format(".{} is missing or not a number", key));
    return v[key].GetUint64();
  }
  Result<std::string> digest(const Value& v, const char* key) const {
    auto d = string(v, key);
    if (!d) return d;
    if (!is_sha256_digest(*d)) return bad(fmt::format(".{} \"{}\" is not a sha256 digest", key, *d));
    return d;
  }
};

const Value* array(const rapidjson::Document& doc, const char* key) {
  static const Value empty(rapidjson::kArrayType);
  if (!doc.HasMember(key)) return &empty;
  return doc[key].IsArray() ? &doc[key] : nullptr;
}

}  // namespace

std::string volume_name(int number) { return fmt::format("fastsync-{:06d}.tar", number); }

Result<ArchiveIndex> ArchiveIndex::parse(std::string_view json, const std::string& origin) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("archive index {} is not valid JSON (at byte {}: {})", origin, doc.GetErrorOffset(),
                                   rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject() || !doc.HasMember("format") || !doc["format"].IsString() ||
      std::string_view(doc["format"].GetString()) != kArchiveFormat) {
    return Error::make(ErrorKind::Invalid, fmt::format("{} is not a fastsync archive index (format \"{}\" expected)",
                                                       origin, kArchiveFormat));
  }
  ArchiveIndex index;
  index.complete = doc.HasMember("complete") && doc["complete"].IsBool() && doc["complete"].GetBool();
  for (const char* key : {"releases", "images", "manifests", "blobs", "volumes", "relies_on", "since"}) {
    if (!array(doc, key))
      return Error::make(ErrorKind::Invalid, fmt::format("archive index {}: {} is not an array", origin, key));
  }
  int i = 0;
  for (const auto& v : array(doc, "releases")->GetArray()) {
    Reader r{origin, fmt::format("releases[{}]", i++)};
    ArchiveRelease rel;
    for (auto [field, out] :
         {std::pair{"version", &rel.version}, {"arch", &rel.arch}, {"tag", &rel.tag}, {"source", &rel.source}}) {
      auto s = r.string(v, field);
      if (!s) return s.error();
      *out = *s;
    }
    auto d = r.digest(v, "digest");
    if (!d) return d.error();
    rel.digest = *d;
    if (v.HasMember("signatures")) {
      if (!v["signatures"].IsArray()) return r.bad(".signatures is not an array");
      for (const auto& sig : v["signatures"].GetArray()) {
        auto bytes =
            sig.IsString() ? base64_decode(std::string_view(sig.GetString(), sig.GetStringLength())) : std::nullopt;
        if (!bytes) return r.bad(".signatures holds something that is not base64");
        rel.signatures.push_back(std::move(*bytes));
      }
    }
    index.releases.push_back(std::move(rel));
  }
  i = 0;
  for (const auto& v : array(doc, "images")->GetArray()) {
    Reader r{origin, fmt::format("images[{}]", i++)};
    ArchiveImage image;
    for (auto [field, out] : {std::pair{"section", &image.section},
                              {"name", &image.name},
                              {"source", &image.source},
                              {"repository", &image.repository}}) {
      auto s = r.string(v, field);
      if (!s) return s.error();
      *out = *s;
    }
    auto d = r.digest(v, "digest");
    if (!d) return d.error();
    image.digest = *d;
    if (v.HasMember("tag")) {
      auto tag = r.string(v, "tag");
      if (!tag) return tag.error();
      image.tag = *tag;
    }
    index.images.push_back(std::move(image));
  }
  i = 0;
  for (const auto& v : array(doc, "manifests")->GetArray()) {
    Reader r{origin, fmt::format("manifests[{}]", i++)};
    ArchiveManifest m;
    auto d = r.digest(v, "digest");
    if (!d) return d.error();
    m.digest = *d;
    auto mt = r.string(v, "media_type");
    if (!mt) return mt.error();
    m.media_type = *mt;
    auto size = r.number(v, "size");
    if (!size) return size.error();
    m.size = *size;
    if (v.HasMember("tags")) {
      if (!v["tags"].IsArray()) return r.bad(".tags is not an array");
      for (const auto& t : v["tags"].GetArray()) {
        if (!t.IsString()) return r.bad(".tags holds a non-string");
        m.tags.emplace_back(t.GetString(), t.GetStringLength());
      }
    }
    if (v.HasMember("subject")) {
      auto subject = r.digest(v, "subject");
      if (!subject) return subject.error();
      m.subject = *subject;
    }
    index.manifests.emplace(m.digest, std::move(m));
  }
  i = 0;
  for (const auto& v : array(doc, "volumes")->GetArray()) {
    Reader r{origin, fmt::format("volumes[{}]", i)};
    ArchiveVolume vol;
    auto name = r.string(v, "name");
    if (!name) return name.error();
    if (*name != volume_name(i + 1))
      return r.bad(fmt::format(".name is \"{}\", expected \"{}\"", *name, volume_name(i + 1)));
    vol.name = *name;
    auto size = r.number(v, "size");
    if (!size) return size.error();
    vol.size = *size;
    vol.closed = v.HasMember("closed") && v["closed"].IsBool() && v["closed"].GetBool();
    if (v.HasMember("sha256") && v["sha256"].IsString()) vol.sha256 = v["sha256"].GetString();
    index.volumes.push_back(std::move(vol));
    ++i;
  }
  i = 0;
  for (const auto& v : array(doc, "blobs")->GetArray()) {
    Reader r{origin, fmt::format("blobs[{}]", i++)};
    ArchiveBlob b;
    auto d = r.digest(v, "digest");
    if (!d) return d.error();
    b.digest = *d;
    auto size = r.number(v, "size");
    auto volume = r.number(v, "volume");
    auto offset = r.number(v, "offset");
    if (!size) return size.error();
    if (!volume) return volume.error();
    if (!offset) return offset.error();
    if (*volume < 1 || *volume > index.volumes.size())
      return r.bad(fmt::format(".volume {} is not a volume of this archive", *volume));
    b.size = *size;
    b.volume = static_cast<int>(*volume);
    b.offset = *offset;
    if (b.offset + b.size > index.volumes[static_cast<std::size_t>(b.volume - 1)].size) {
      return r.bad(fmt::format(" ends past the end of {}", index.volumes[static_cast<std::size_t>(b.volume - 1)].name));
    }
    index.blobs.emplace(b.digest, b);
  }
  i = 0;
  for (const auto& v : array(doc, "relies_on")->GetArray()) {
    Reader r{origin, fmt::format("relies_on[{}]", i++)};
    ReliedBlob b;
    auto d = r.digest(v, "digest");
    if (!d) return d.error();
    b.digest = *d;
    auto size = r.number(v, "size");
    if (!size) return size.error();
    b.size = *size;
    if (auto a = r.string(v, "archive")) b.archive = *a;
    index.relies_on.emplace(b.digest, std::move(b));
  }
  for (const auto& v : array(doc, "since")->GetArray()) {
    if (v.IsString()) index.since.emplace_back(v.GetString(), v.GetStringLength());
  }
  for (const auto& [digest, m] : index.manifests) {
    if (!index.blobs.count(digest)) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("archive index {}: manifest {} has no bytes in any volume", origin, digest));
    }
  }
  return index;
}

std::string ArchiveIndex::to_json() const {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 1);
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  auto num = [&](const char* key, std::uint64_t value) {
    w.Key(key);
    w.Uint64(value);
  };
  w.StartObject();
  str("format", std::string(kArchiveFormat));
  w.Key("complete");
  w.Bool(complete);
  w.Key("releases");
  w.StartArray();
  for (const auto& r : releases) {
    w.StartObject();
    str("version", r.version);
    str("arch", r.arch);
    str("tag", r.tag);
    str("digest", r.digest);
    str("source", r.source);
    if (!r.signatures.empty()) {
      w.Key("signatures");
      w.StartArray();
      for (const auto& sig : r.signatures) {
        std::string text = base64_encode(sig);
        w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("images");
  w.StartArray();
  for (const auto& image : images) {
    w.StartObject();
    str("section", image.section);
    str("name", image.name);
    str("source", image.source);
    str("repository", image.repository);
    str("digest", image.digest);
    if (!image.tag.empty()) str("tag", image.tag);
    w.EndObject();
  }
  w.EndArray();
  w.Key("manifests");
  w.StartArray();
  for (const auto& [digest, m] : manifests) {
    w.StartObject();
    str("digest", m.digest);
    str("media_type", m.media_type);
    num("size", m.size);
    w.Key("tags");
    w.StartArray();
    for (const auto& t : m.tags) w.String(t.c_str(), static_cast<rapidjson::SizeType>(t.size()));
    w.EndArray();
    if (!m.subject.empty()) str("subject", m.subject);
    w.EndObject();
  }
  w.EndArray();
  w.Key("blobs");
  w.StartArray();
  for (const auto& [digest, b] : blobs) {
    w.StartObject();
    str("digest", b.digest);
    num("size", b.size);
    num("volume", static_cast<std::uint64_t>(b.volume));
    num("offset", b.offset);
    w.EndObject();
  }
  w.EndArray();
  w.Key("volumes");
  w.StartArray();
  for (const auto& v : volumes) {
    w.StartObject();
    str("name", v.name);
    num("size", v.size);
    if (!v.sha256.empty()) str("sha256", v.sha256);
    w.Key("closed");
    w.Bool(v.closed);
    w.EndObject();
  }
  w.EndArray();
  w.Key("relies_on");
  w.StartArray();
  for (const auto& [digest, b] : relies_on) {
    w.StartObject();
    str("digest", b.digest);
    num("size", b.size);
    str("archive", b.archive);
    w.EndObject();
  }
  w.EndArray();
  w.Key("since");
  w.StartArray();
  for (const auto& s : since) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

const ArchiveManifest* ArchiveIndex::find_manifest(const std::string& reference, const std::string& repository) const {
  if (is_sha256_digest(reference)) {
    auto it = manifests.find(reference);
    return it == manifests.end() ? nullptr : &it->second;
  }
  const std::string& tag = reference;
  auto find_in = [&](const std::string& repo) -> const ArchiveManifest* {
    for (const auto& [digest, m] : manifests) {
      for (const auto& t : m.tags) {
        auto colon = t.rfind(':');
        if (colon == std::string::npos || t.compare(colon + 1, std::string::npos, tag) != 0) continue;
        if (repo.empty() || t.compare(0, colon, repo) == 0) return &m;
      }
    }
    return nullptr;
  };
  if (const auto* m = find_in(repository)) return m;
  // A cosign signature's tag names the digest it signs: the same in any
  // repository (components are recorded under the release's repository).
  if (!repository.empty() && tag.rfind("sha256-", 0) == 0) return find_in({});
  return nullptr;
}

}  // namespace fastsync::release
