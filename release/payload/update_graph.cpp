#include "release/payload/update_graph.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "registry/core/digest.h"

namespace fastsync::release {
namespace {

struct ParsedVersion {
  std::vector<long> numbers;  // major.minor.patch
  std::string pre;            // "rc.1", "ec.2"; empty for a release
};

std::optional<ParsedVersion> parse_version(std::string_view v) {
  ParsedVersion out;
  auto dash = v.find('-');
  std::string_view core = v.substr(0, dash);
  if (dash != std::string_view::npos) {
    out.pre = std::string(v.substr(dash + 1));
    if (out.pre.empty()) return std::nullopt;
  }
  while (!core.empty()) {
    auto dot = core.find('.');
    std::string_view part = core.substr(0, dot);
    if (part.empty() || part.size() > 9 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    out.numbers.push_back(std::stol(std::string(part)));
    if (dot == std::string_view::npos) break;
    core.remove_prefix(dot + 1);
    if (core.empty()) return std::nullopt;
  }
  if (out.numbers.size() != 3) return std::nullopt;
  return out;
}

// Pre-release identifiers compare numerically when both are numbers.
int compare_pre(const std::string& a, const std::string& b) {
  if (a == b) return 0;
  if (a.empty()) return 1;  // 4.19.0 > 4.19.0-rc.1
  if (b.empty()) return -1;
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    auto ea = a.find('.', i), eb = b.find('.', j);
    std::string pa = a.substr(i, ea == std::string::npos ? std::string::npos : ea - i);
    std::string pb = b.substr(j, eb == std::string::npos ? std::string::npos : eb - j);
    bool na = !pa.empty() && std::all_of(pa.begin(), pa.end(), ::isdigit);
    bool nb = !pb.empty() && std::all_of(pb.begin(), pb.end(), ::isdigit);
    if (na && nb && pa.size() < 10 && pb.size() < 10) {
      long x = std::stol(pa), y = std::stol(pb);
      if (x != y) return x < y ? -1 : 1;
    } else if (pa != pb) {
      return pa < pb ? -1 : 1;
    }
    if (ea == std::string::npos || eb == std::string::npos) return ea == eb ? 0 : (ea == std::string::npos ? -1 : 1);
    i = ea + 1;
    j = eb + 1;
  }
  return 0;
}

std::string digest_of(const std::string& pullspec) {
  auto at = pullspec.rfind('@');
  return at == std::string::npos ? std::string() : pullspec.substr(at + 1);
}

}  // namespace

std::optional<int> compare_versions(std::string_view a, std::string_view b) {
  auto x = parse_version(a), y = parse_version(b);
  if (!x || !y) return std::nullopt;
  if (x->numbers != y->numbers) return x->numbers < y->numbers ? -1 : 1;
  return compare_pre(x->pre, y->pre);
}

bool is_release_version(std::string_view v) { return parse_version(v).has_value(); }

std::string graph_arch(const std::string& arch) {
  if (arch == "x86_64") return "amd64";
  if (arch == "aarch64") return "arm64";
  return arch;
}

Result<UpdateGraph> UpdateGraph::parse(std::string_view json, const std::string& origin) {
  auto bad = [&](const std::string& why) {
    return Error::make(ErrorKind::Invalid, fmt::format("update graph {}: {}", origin, why));
  };
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError()) {
    return bad(
        fmt::format("not JSON (at byte {}: {})", d.GetErrorOffset(), rapidjson::GetParseError_En(d.GetParseError())));
  }
  if (!d.IsObject() || !d.HasMember("nodes") || !d["nodes"].IsArray()) return bad("no \"nodes\" array");
  UpdateGraph g;
  std::size_t i = 0;
  for (const auto& n : d["nodes"].GetArray()) {
    if (!n.IsObject() || !n.HasMember("version") || !n["version"].IsString() || !n.HasMember("payload") ||
        !n["payload"].IsString()) {
      return bad(fmt::format("nodes[{}] lacks a version or payload", i));
    }
    Node node{n["version"].GetString(), n["payload"].GetString()};
    if (!is_release_version(node.version))
      return bad(fmt::format("nodes[{}].version \"{}\" is not a version", i, node.version));
    if (!is_sha256_digest(digest_of(node.payload))) {
      return bad(fmt::format("nodes[{}].payload \"{}\" is not pinned by a sha256 digest", i, node.payload));
    }
    g.nodes.push_back(std::move(node));
    ++i;
  }
  if (d.HasMember("edges")) {
    if (!d["edges"].IsArray()) return bad("\"edges\" is not an array");
    i = 0;
    for (const auto& e : d["edges"].GetArray()) {
      if (!e.IsArray() || e.Size() != 2 || !e[0].IsUint64() || !e[1].IsUint64() || e[0].GetUint64() >= g.nodes.size() ||
          e[1].GetUint64() >= g.nodes.size()) {
        return bad(fmt::format("edges[{}] is not a pair of node indexes", i));
      }
      g.edges.emplace_back(e[0].GetUint64(), e[1].GetUint64());
      ++i;
    }
  }
  if (d.HasMember("conditionalEdges")) {
    if (!d["conditionalEdges"].IsArray()) return bad("\"conditionalEdges\" is not an array");
    i = 0;
    for (const auto& c : d["conditionalEdges"].GetArray()) {
      if (!c.IsObject() || !c.HasMember("edges") || !c["edges"].IsArray()) {
        return bad(fmt::format("conditionalEdges[{}] has no \"edges\"", i));
      }
      std::vector<UpdateRisk> risks;
      if (c.HasMember("risks") && c["risks"].IsArray()) {
        for (const auto& r : c["risks"].GetArray()) {
          if (!r.IsObject()) continue;
          auto text = [&](const char* key) {
            return r.HasMember(key) && r[key].IsString() ? std::string(r[key].GetString()) : std::string();
          };
          risks.push_back(UpdateRisk{text("name"), text("message"), text("url")});
        }
      }
      for (const auto& e : c["edges"].GetArray()) {
        if (!e.IsObject() || !e.HasMember("from") || !e["from"].IsString() || !e.HasMember("to") ||
            !e["to"].IsString()) {
          return bad(fmt::format("conditionalEdges[{}].edges holds an edge without from/to versions", i));
        }
        g.conditional.push_back(ConditionalEdge{e["from"].GetString(), e["to"].GetString(), risks});
      }
      ++i;
    }
  }
  return g;
}

Result<std::vector<ChosenRelease>> choose_releases(const std::vector<ChannelGraph>& graphs,
                                                   const VersionChoice& choice) {
  // One graph, by version, across the channels.
  std::map<std::string, std::string> payloads;  // version -> payload
  std::map<std::string, std::set<std::string>> next;
  std::map<std::pair<std::string, std::string>, std::vector<UpdateRisk>> conditional_risks;
  std::string channels;
  for (const auto& cg : graphs) {
    channels += (channels.empty() ? "" : ", ") + cg.channel;
    for (const auto& n : cg.graph.nodes) payloads.emplace(n.version, n.payload);
    for (const auto& [from, to] : cg.graph.edges) next[cg.graph.nodes[from].version].insert(cg.graph.nodes[to].version);
    for (const auto& c : cg.graph.conditional) {
      next[c.from].insert(c.to);
      conditional_risks[{c.from, c.to}] = c.risks;
    }
  }
  if (payloads.empty()) return Error::make(ErrorKind::Invalid, fmt::format("channel {} holds no releases", channels));
  auto less = [](const std::string& a, const std::string& b) { return compare_versions(a, b).value_or(0) < 0; };
  std::vector<std::string> versions;
  for (const auto& [v, p] : payloads) versions.push_back(v);
  std::sort(versions.begin(), versions.end(), less);
  auto require = [&](const std::string& v, const char* flag) -> Status {
    if (payloads.count(v)) return Status{};
    return Error::make(ErrorKind::Invalid, fmt::format("{} {} is not in channel {} (it holds {} … {})", flag, v,
                                                       channels, versions.front(), versions.back()));
  };
  std::string max = choice.max.empty() ? versions.back() : choice.max;
  if (auto s = require(max, "--max-version"); !s) return s.error();
  if (!choice.min.empty()) {
    if (auto s = require(choice.min, "--min-version"); !s) return s.error();
    if (less(max, choice.min)) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("--min-version {} is above --max-version {}", choice.min, max));
    }
  }
  auto chosen = [&](const std::string& v) { return ChosenRelease{v, payloads.at(v), digest_of(payloads.at(v)), {}}; };
  std::vector<ChosenRelease> out;
  if (!choice.shortest_path) {
    std::string min = choice.min.empty() ? max : choice.min;
    for (const auto& v : versions) {
      if (!less(v, min) && !less(max, v)) out.push_back(chosen(v));
    }
    return out;
  }
  if (choice.min.empty())
    return Error::make(ErrorKind::Invalid, "--shortest-path needs --min-version (where to start)");
  // Breadth-first: the fewest upgrades. Among equals, the first found in version order.
  std::map<std::string, std::string> came_from;
  std::deque<std::string> queue{choice.min};
  came_from[choice.min] = "";
  while (!queue.empty() && !came_from.count(max)) {
    std::string at = queue.front();
    queue.pop_front();
    std::vector<std::string> targets(next[at].begin(), next[at].end());
    std::sort(targets.begin(), targets.end(), less);
    for (const auto& t : targets) {
      if (came_from.emplace(t, at).second) queue.push_back(t);
    }
  }
  if (!came_from.count(max)) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("no upgrade path from {} to {} in channel {}", choice.min, max, channels));
  }
  for (std::string v = max; !v.empty(); v = came_from.at(v)) {
    ChosenRelease r = chosen(v);
    const std::string& prev = came_from.at(v);
    if (!prev.empty()) {
      bool plain = false;
      for (const auto& cg : graphs) {
        for (const auto& [f, t] : cg.graph.edges) {
          plain = plain || (cg.graph.nodes[f].version == prev && cg.graph.nodes[t].version == v);
        }
      }
      if (!plain) r.risks = conditional_risks[{prev, v}];
    }
    out.push_back(std::move(r));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace fastsync::release
