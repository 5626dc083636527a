#include "release/imageset/catalog.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

namespace fastsync::imageset {
namespace {

using Value = rapidjson::Value;

std::string to_json(const Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  v.Accept(w);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string string_member(const Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) return {};
  return std::string(v[key].GetString(), v[key].GetStringLength());
}

// How deep a catalog document may nest, and how many nodes one may expand to
// (YAML aliases can repeat a node exponentially): far beyond any real bundle.
constexpr int kMaxDepth = 64;
constexpr long kMaxNodes = 1000000;

// A YAML node as JSON: maps and sequences as they are; a plain scalar that
// reads as a boolean, null or number keeps that type (as YAML means it).
// False when the document is deeper or larger than the limits above.
bool yaml_to_json(const YAML::Node& node, Value& out, rapidjson::Document::AllocatorType& alloc, int depth,
                  long& nodes_left) {
  if (depth > kMaxDepth || --nodes_left < 0) return false;
  switch (node.Type()) {
    case YAML::NodeType::Map:
      out.SetObject();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return false;
        Value key(kv.first.Scalar().c_str(), alloc);
        Value value;
        if (!yaml_to_json(kv.second, value, alloc, depth + 1, nodes_left)) return false;
        out.AddMember(key, value, alloc);
      }
      return true;
    case YAML::NodeType::Sequence:
      out.SetArray();
      for (const auto& item : node) {
        Value value;
        if (!yaml_to_json(item, value, alloc, depth + 1, nodes_left)) return false;
        out.PushBack(value, alloc);
      }
      return true;
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() != "!") {  // a plain scalar: YAML's core types
        if (s == "true" || s == "false") {
          out.SetBool(s == "true");
          return true;
        }
        if (s == "null" || s == "~") {
          out.SetNull();
          return true;
        }
        rapidjson::Document number;
        if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-') &&
            !number.Parse(s.c_str()).HasParseError() && number.IsNumber()) {
          out.CopyFrom(number, alloc);
          return true;
        }
      }
      out.SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc);
      return true;
    }
    default:
      out.SetNull();
      return true;
  }
}

// The nesting depth of a JSON value, walked without recursion.
int depth_of(const Value& root) {
  int deepest = 0;
  std::vector<std::pair<const Value*, int>> todo{{&root, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, depth);
    if (depth > kMaxDepth) break;
    if (v->IsObject()) {
      for (const auto& m : v->GetObject()) todo.emplace_back(&m.value, depth + 1);
    } else if (v->IsArray()) {
      for (const auto& item : v->GetArray()) todo.emplace_back(&item, depth + 1);
    }
  }
  return deepest;
}

}  // namespace

namespace {

Status add_document(Catalog& catalog, const Value& doc, const std::string& where,
                    const std::set<std::string>* only_packages) {
  auto bad = [&](const std::string& what) { return Error::make(ErrorKind::Invalid, where + ": " + what); };
  if (!doc.IsObject()) return bad("not an object");
  if (depth_of(doc) > kMaxDepth) return bad(fmt::format("nested deeper than {} levels", kMaxDepth));
  std::string schema = string_member(doc, "schema");
  if (schema.empty()) return bad("no schema");
  if (only_packages) {
    std::string package = string_member(doc, schema == "olm.package" ? "name" : "package");
    if (!only_packages->count(package)) return Status{};
  }
  std::string json = to_json(doc);
  if (schema == "olm.package") {
    CatalogPackage p{string_member(doc, "name"), string_member(doc, "defaultChannel"), json};
    if (p.name.empty()) return bad("olm.package without a name");
    catalog.packages[p.name] = std::move(p);
  } else if (schema == "olm.channel") {
    CatalogChannel c{string_member(doc, "package"), string_member(doc, "name"), {}, json};
    if (c.package.empty() || c.name.empty()) return bad("olm.channel without a package or a name");
    if (doc.HasMember("entries") && doc["entries"].IsArray()) {
      for (const auto& e : doc["entries"].GetArray()) {
        ChannelEntry entry{string_member(e, "name"), string_member(e, "replaces"), {}, string_member(e, "skipRange")};
        if (entry.name.empty()) return bad(fmt::format("channel {}: an entry without a name", c.name));
        if (e.HasMember("skips") && e["skips"].IsArray()) {
          for (const auto& s : e["skips"].GetArray()) {
            if (s.IsString()) entry.skips.emplace_back(s.GetString(), s.GetStringLength());
          }
        }
        c.entries.push_back(std::move(entry));
      }
    }
    catalog.channels.push_back(std::move(c));
  } else if (schema == "olm.bundle") {
    CatalogBundle b{
        string_member(doc, "package"), string_member(doc, "name"), string_member(doc, "image"), {}, {}, json};
    if (b.package.empty() || b.name.empty()) return bad("olm.bundle without a package or a name");
    if (doc.HasMember("properties") && doc["properties"].IsArray()) {
      for (const auto& p : doc["properties"].GetArray()) {
        if (string_member(p, "type") == "olm.package" && p.HasMember("value")) {
          b.version = string_member(p["value"], "version");
        }
      }
    }
    if (doc.HasMember("relatedImages") && doc["relatedImages"].IsArray()) {
      for (const auto& r : doc["relatedImages"].GetArray()) {
        RelatedImage image{string_member(r, "name"), string_member(r, "image")};
        if (!image.image.empty()) b.related_images.push_back(std::move(image));
      }
    }
    catalog.bundles[b.name] = std::move(b);
  } else {
    catalog.others.push_back(OtherDocument{string_member(doc, "package"), json});
  }
  return Status{};
}

}  // namespace

namespace {

// Builds nothing: only walks the documents.
class DocumentWalker : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// yaml-cpp 0.7's LoadAll never returns on some malformed text (a lone "," at
// the top level: each call yields one more empty document without moving on).
// Walk the documents first and give up past one per line: text that has more
// never ends.
bool yaml_documents_end(std::string_view text) {
  std::size_t most = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 2;
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentWalker walker;
  for (std::size_t documents = 0; parser.HandleNextDocument(walker);) {
    if (++documents > most) return false;
  }
  return true;
}

}  // namespace

Status Catalog::add_file(std::string_view text, const std::string& file, const std::set<std::string>* only_packages) {
  std::size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  if (start == text.size()) return Status{};
  int number = 0;
  if (text[start] == '{') {
    // opm writes one object after another: parse each, then carry on after it.
    std::string buffer(text.substr(start));
    rapidjson::StringStream stream(buffer.c_str());
    while (true) {
      while (std::isspace(static_cast<unsigned char>(stream.Peek()))) stream.Take();
      if (stream.Peek() == '\0') break;
      rapidjson::Document doc;
      doc.ParseStream<rapidjson::kParseStopWhenDoneFlag | rapidjson::kParseIterativeFlag>(stream);
      ++number;
      if (doc.HasParseError()) {
        return Error::make(ErrorKind::Invalid, fmt::format("{}: document {}: not JSON ({})", file, number,
                                                           rapidjson::GetParseError_En(doc.GetParseError())));
      }
      auto added = add_document(*this, doc, fmt::format("{}: document {}", file, number), only_packages);
      if (!added) return added;
    }
    return Status{};
  }
  std::vector<YAML::Node> docs;
  try {
    if (!yaml_documents_end(text)) {
      return Error::make(ErrorKind::Invalid, fmt::format("{}: not YAML: its documents never end (a stray ',' or ']' "
                                                         "outside a flow collection?)",
                                                         file));
    }
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error::make(ErrorKind::Invalid, fmt::format("{}:{}: not YAML: {}", file, e.mark.line + 1, e.msg));
  }
  for (const auto& node : docs) {
    ++number;
    if (!node || node.IsNull()) continue;
    rapidjson::Document doc;
    long nodes_left = kMaxNodes;
    if (!yaml_to_json(node, doc, doc.GetAllocator(), 1, nodes_left)) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("{}: document {}: deeper than {} levels or larger than {} nodes (aliases "
                                     "expanded)",
                                     file, number, kMaxDepth, kMaxNodes));
    }
    auto added = add_document(*this, doc, fmt::format("{}: document {}", file, number), only_packages);
    if (!added) return added;
  }
  return Status{};
}

const CatalogChannel* Catalog::channel(const std::string& package, const std::string& name) const {
  for (const auto& c : channels) {
    if (c.package == package && c.name == name) return &c;
  }
  return nullptr;
}

std::optional<int> compare_semver(std::string_view a, std::string_view b) {
  struct Parsed {
    long long major = 0, minor = 0, patch = 0;
    std::vector<std::string> pre;
  };
  auto parse = [](std::string_view v) -> std::optional<Parsed> {
    if (!v.empty() && v.front() == 'v') v.remove_prefix(1);
    if (auto plus = v.find('+'); plus != std::string_view::npos) v = v.substr(0, plus);  // build: no precedence
    std::string_view core = v.substr(0, v.find('-'));
    Parsed p;
    long long* parts[] = {&p.major, &p.minor, &p.patch};
    std::size_t at = 0;
    for (int i = 0; i < 3; ++i) {
      std::size_t end = i < 2 ? core.find('.', at) : core.size();
      if (end == std::string_view::npos || end == at) return std::nullopt;
      if (end - at > 18) return std::nullopt;  // no version part needs more: it would overflow
      for (std::size_t k = at; k < end; ++k) {
        if (!std::isdigit(static_cast<unsigned char>(core[k]))) return std::nullopt;
        *parts[i] = *parts[i] * 10 + (core[k] - '0');
      }
      at = end + 1;
    }
    if (auto dash = v.find('-'); dash != std::string_view::npos) {
      std::string_view pre = v.substr(dash + 1);
      for (std::size_t s = 0; s <= pre.size();) {
        std::size_t dot = std::min(pre.find('.', s), pre.size());
        p.pre.emplace_back(pre.substr(s, dot - s));
        s = dot + 1;
      }
    }
    return p;
  };
  auto pa = parse(a), pb = parse(b);
  if (!pa || !pb) return std::nullopt;
  auto cmp = [](auto x, auto y) { return x < y ? -1 : x > y ? 1 : 0; };
  if (int c = cmp(pa->major, pb->major)) return c;
  if (int c = cmp(pa->minor, pb->minor)) return c;
  if (int c = cmp(pa->patch, pb->patch)) return c;
  if (pa->pre.empty() != pb->pre.empty()) return pa->pre.empty() ? 1 : -1;  // a release above its pre-releases
  if (pa->pre.empty()) return 0;
  for (std::size_t i = 0; i < std::min(pa->pre.size(), pb->pre.size()); ++i) {
    const auto& x = pa->pre[i];
    const auto& y = pb->pre[i];
    bool xn = !x.empty() && std::all_of(x.begin(), x.end(), ::isdigit);
    bool yn = !y.empty() && std::all_of(y.begin(), y.end(), ::isdigit);
    if (xn && yn) {
      // Numerically, without converting (identifiers may be longer than any integer): longer is larger.
      std::string_view xs = std::string_view(x).substr(std::min(x.find_first_not_of('0'), x.size()));
      std::string_view ys = std::string_view(y).substr(std::min(y.find_first_not_of('0'), y.size()));
      if (int c = cmp(xs.size(), ys.size())) return c;
      if (int c = cmp(xs, ys)) return c;
    } else if (xn != yn) {
      return xn ? -1 : 1;  // numeric identifiers sort below alphanumeric ones
    } else if (int c = cmp(x, y)) {
      return c;
    }
  }
  return cmp(pa->pre.size(), pb->pre.size());
}

namespace {

// The entries no other entry of `entries` replaces or skips.
std::vector<std::string> heads_of(const std::vector<ChannelEntry>& entries) {
  std::set<std::string> superseded;
  for (const auto& e : entries) {
    if (!e.replaces.empty()) superseded.insert(e.replaces);
    superseded.insert(e.skips.begin(), e.skips.end());
  }
  std::vector<std::string> heads;
  for (const auto& e : entries) {
    if (!superseded.count(e.name)) heads.push_back(e.name);
  }
  return heads;
}

struct Wanted {
  const CatalogChannel* channel = nullptr;
  std::string min, max;
  bool every = false;  // full: every entry (within min/max if given)
};

}  // namespace

Result<Catalog> select_bundles(const Catalog& catalog, const CatalogFilter& filter, const std::string& catalog_name) {
  auto bad = [&](const std::string& what) {
    return Error::make(ErrorKind::Invalid, fmt::format("catalog {}: {}", catalog_name, what));
  };
  std::vector<PackageFilter> scope = filter.packages;
  if (scope.empty()) {
    for (const auto& [name, p] : catalog.packages) scope.push_back(PackageFilter{name, {}, {}, {}, {}});
  }
  Catalog kept;
  for (const auto& pf : scope) {
    auto package = catalog.packages.find(pf.name);
    if (package == catalog.packages.end()) return bad(fmt::format("package {} is not in the catalog", pf.name));
    std::vector<Wanted> wanted;
    if (!pf.channels.empty()) {
      for (const auto& cf : pf.channels) {
        const auto* c = catalog.channel(pf.name, cf.name);
        if (!c) return bad(fmt::format("package {} has no channel {}", pf.name, cf.name));
        wanted.push_back(Wanted{c, cf.min_version, cf.max_version, filter.full});
      }
    } else if (filter.full) {
      for (const auto& c : catalog.channels) {
        if (c.package == pf.name) wanted.push_back(Wanted{&c, pf.min_version, pf.max_version, true});
      }
    } else {
      const auto* c = catalog.channel(pf.name, package->second.default_channel);
      if (!c) {
        return bad(fmt::format("package {}: its default channel {} is not in the catalog", pf.name,
                               package->second.default_channel));
      }
      wanted.push_back(Wanted{c, pf.min_version, pf.max_version, false});
    }
    for (const auto& w : wanted) {
      const CatalogChannel& channel = *w.channel;
      std::vector<ChannelEntry> entries;
      const bool ranged = !w.min.empty() || !w.max.empty();
      if (ranged || w.every) {
        for (const auto& e : channel.entries) {
          auto bundle = catalog.bundles.find(e.name);
          if (bundle == catalog.bundles.end()) {
            return bad(fmt::format("package {} channel {}: entry {} names no bundle", pf.name, channel.name, e.name));
          }
          const std::string& v = bundle->second.version;
          bool in = (w.min.empty() || compare_semver(v, w.min).value_or(-1) >= 0) &&
                    (w.max.empty() || compare_semver(v, w.max).value_or(1) <= 0);
          if (in) entries.push_back(e);
        }
        if (entries.empty()) {
          return bad(fmt::format("package {} channel {}: no bundle between {} and {}", pf.name, channel.name,
                                 w.min.empty() ? "the first" : w.min, w.max.empty() ? "the last" : w.max));
        }
      } else {
        auto heads = heads_of(channel.entries);
        if (heads.size() != 1) {
          return bad(fmt::format("package {} channel {} has {} heads ({}) in the catalog itself", pf.name, channel.name,
                                 heads.size(), fmt::join(heads, ", ")));
        }
        for (const auto& e : channel.entries) {
          if (e.name == heads.front()) entries.push_back(e);
        }
      }
      if (auto heads = heads_of(entries); heads.size() > 1) {
        return bad(
            fmt::format("package {} channel {}: the selection leaves multiple channel heads ({}): widen "
                        "minVersion/maxVersion so one bundle replaces or skips the others",
                        pf.name, channel.name, fmt::join(heads, ", ")));
      }
      for (const auto& e : entries) {
        auto bundle = catalog.bundles.find(e.name);
        if (bundle == catalog.bundles.end()) {
          return bad(fmt::format("package {} channel {}: entry {} names no bundle", pf.name, channel.name, e.name));
        }
        kept.bundles.emplace(bundle->first, bundle->second);
      }
      auto existing = std::find_if(kept.channels.begin(), kept.channels.end(), [&](const CatalogChannel& c) {
        return c.package == channel.package && c.name == channel.name;
      });
      if (existing == kept.channels.end()) {
        CatalogChannel k = channel;
        k.entries = std::move(entries);
        kept.channels.push_back(std::move(k));
      }
    }
    CatalogPackage p = package->second;
    auto kept_channel = [&](const std::string& name) { return kept.channel(pf.name, name) != nullptr; };
    if (!pf.default_channel.empty()) {
      if (!kept_channel(pf.default_channel)) {
        return bad(
            fmt::format("package {}: defaultChannel {} is not among the channels kept", pf.name, pf.default_channel));
      }
      p.default_channel = pf.default_channel;
    } else if (!kept_channel(p.default_channel)) {
      return bad(
          fmt::format("package {}: its default channel {} is not kept; name it among the channels, or set "
                      "defaultChannel to one that is",
                      pf.name, p.default_channel));
    }
    kept.packages[p.name] = std::move(p);
    for (const auto& other : catalog.others) {
      if (other.package == pf.name) kept.others.push_back(other);
    }
  }
  return kept;
}

std::vector<std::string> images_of(const Catalog& catalog) {
  std::set<std::string> images;
  for (const auto& [name, b] : catalog.bundles) {
    if (!b.image.empty()) images.insert(b.image);
    for (const auto& r : b.related_images) images.insert(r.image);
  }
  return {images.begin(), images.end()};
}

std::map<std::string, std::string> render_catalog(const Catalog& catalog) {
  std::map<std::string, std::string> files;
  auto rewrite = [](const std::string& json, auto&& change) {
    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    change(doc, doc.GetAllocator());
    return to_json(doc) + "\n";
  };
  for (const auto& entry : catalog.packages) {
    const std::string& name = entry.first;
    const CatalogPackage& p = entry.second;  // not a structured binding: lambdas below capture it
    std::string& out = files[name + "/catalog.json"];
    out += rewrite(p.document, [&](rapidjson::Document& doc, auto& alloc) {
      if (doc.HasMember("defaultChannel")) doc.RemoveMember("defaultChannel");
      doc.AddMember("defaultChannel", Value(p.default_channel.c_str(), alloc), alloc);
    });
    std::vector<const CatalogChannel*> channels;
    for (const auto& c : catalog.channels) {
      if (c.package == name) channels.push_back(&c);
    }
    std::sort(channels.begin(), channels.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
    for (const auto* c : channels) {
      out += rewrite(c->document, [&](rapidjson::Document& doc, auto& alloc) {
        std::set<std::string> kept;
        for (const auto& e : c->entries) kept.insert(e.name);
        if (!doc.HasMember("entries") || !doc["entries"].IsArray()) return;
        Value entries(rapidjson::kArrayType);
        for (auto& e : doc["entries"].GetArray()) {
          if (kept.count(string_member(e, "name"))) entries.PushBack(Value(e, alloc), alloc);
        }
        doc["entries"] = entries;
      });
    }
    for (const auto& [bundle_name, b] : catalog.bundles) {
      if (b.package == name) out += b.document + "\n";
    }
    for (const auto& o : catalog.others) {
      if (o.package == name) out += o.document + "\n";
    }
  }
  return files;
}

}  // namespace fastsync::imageset
