// Choosing releases from the update graph: ranges, shortest paths across
// channels with the risks of conditional edges, and one clear line for what
// cannot be chosen.
#include "release/payload/update_graph.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace fastsync::release {
namespace {

std::string payload(const std::string& version) {
  // A stable fake digest per version.
  std::string hex;
  for (char c : version) hex += fmt::format("{:02x}", static_cast<unsigned char>(c));
  hex.resize(64, '0');
  return "quay.io/openshift-release-dev/ocp-release@sha256:" + hex;
}

// nodes in the order given; edges by version; conditional edges with one risk each.
std::string graph_json(const std::vector<std::string>& nodes,
                       const std::vector<std::pair<std::string, std::string>>& edges,
                       const std::vector<std::pair<std::string, std::string>>& conditional = {}) {
  std::string out = R"({"nodes":[)";
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    out += fmt::format(R"({}{{"version":"{}","payload":"{}","metadata":{{}}}})", i ? "," : "", nodes[i],
                       payload(nodes[i]));
  }
  out += R"(],"edges":[)";
  auto index = [&](const std::string& v) { return std::find(nodes.begin(), nodes.end(), v) - nodes.begin(); };
  for (std::size_t i = 0; i < edges.size(); ++i) {
    out += fmt::format("{}[{},{}]", i ? "," : "", index(edges[i].first), index(edges[i].second));
  }
  out += R"(],"conditionalEdges":[)";
  for (std::size_t i = 0; i < conditional.size(); ++i) {
    out += fmt::format(
        R"({}{{"edges":[{{"from":"{}","to":"{}"}}],"risks":[{{"name":"EtcdSlow","message":"etcd may be slow","url":"https://issues.example/1","matchingRules":[{{"type":"Always"}}]}}]}})",
        i ? "," : "", conditional[i].first, conditional[i].second);
  }
  return out + "]}";
}

ChannelGraph channel(const std::string& name, const std::string& json) {
  auto g = UpdateGraph::parse(json, name);
  EXPECT_TRUE(g.ok()) << g.error().message;
  return ChannelGraph{name, g.ok() ? *g : UpdateGraph{}};
}

std::vector<std::string> versions(const Result<std::vector<ChosenRelease>>& r) {
  std::vector<std::string> out;
  if (r.ok()) {
    for (const auto& c : *r) out.push_back(c.version);
  }
  return out;
}

TEST(Versions, CompareNumericallyWithPreReleasesFirst) {
  EXPECT_LT(*compare_versions("4.9.0", "4.10.0"), 0);
  EXPECT_LT(*compare_versions("4.19.9", "4.19.10"), 0);
  EXPECT_LT(*compare_versions("4.19.0-rc.2", "4.19.0-rc.10"), 0);
  EXPECT_LT(*compare_versions("4.19.0-rc.2", "4.19.0"), 0);
  EXPECT_EQ(*compare_versions("4.20.8", "4.20.8"), 0);
  EXPECT_FALSE(compare_versions("4.20", "4.20.8"));
  EXPECT_FALSE(is_release_version("latest"));
  EXPECT_EQ(graph_arch("x86_64"), "amd64");
  EXPECT_EQ(graph_arch("aarch64"), "arm64");
}

TEST(ChooseReleases, RangesWithoutAPath) {
  std::vector<ChannelGraph> g{channel("stable-4.20", graph_json({"4.20.10", "4.20.8", "4.20.9", "4.20.12"},
                                                                {{"4.20.8", "4.20.9"}, {"4.20.9", "4.20.10"}}))};
  EXPECT_EQ(versions(choose_releases(g, {"4.20.9", "", false})),
            (std::vector<std::string>{"4.20.9", "4.20.10", "4.20.12"}));  // no max: the latest
  EXPECT_EQ(versions(choose_releases(g, {"4.20.8", "4.20.10", false})),
            (std::vector<std::string>{"4.20.8", "4.20.9", "4.20.10"}));
  EXPECT_EQ(versions(choose_releases(g, {"", "4.20.9", false})), (std::vector<std::string>{"4.20.9"}));  // max alone
  EXPECT_EQ(versions(choose_releases(g, {"", "", false})), (std::vector<std::string>{"4.20.12"}));
  auto r = choose_releases(g, {"4.20.8", "4.20.8", false});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->front().payload, payload("4.20.8"));
  EXPECT_EQ(r->front().digest, payload("4.20.8").substr(payload("4.20.8").find('@') + 1));

  auto missing = choose_releases(g, {"4.20.7", "", false});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "--min-version 4.20.7 is not in channel stable-4.20 (it holds 4.20.8 … 4.20.12)");
  auto upside_down = choose_releases(g, {"4.20.10", "4.20.9", false});
  ASSERT_FALSE(upside_down.ok());
  EXPECT_NE(upside_down.error().message.find("above"), std::string::npos);
}

TEST(ChooseReleases, ShortestPathAcrossChannelsCarriesTheRisksOfConditionalEdges) {
  // 4.18.30 -> 4.19.5 is conditional; 4.18.30 -> 4.18.31 -> 4.19.6 -> 4.20.8 is longer than
  // 4.18.30 -> 4.19.5 -> 4.20.8.
  std::vector<ChannelGraph> g{
      channel("stable-4.19", graph_json({"4.18.30", "4.18.31", "4.19.5", "4.19.6"},
                                        {{"4.18.30", "4.18.31"}, {"4.18.31", "4.19.6"}, {"4.19.5", "4.19.6"}},
                                        {{"4.18.30", "4.19.5"}})),
      channel("stable-4.20", graph_json({"4.19.5", "4.19.6", "4.20.8"}, {{"4.19.5", "4.20.8"}, {"4.19.6", "4.20.8"}}))};
  auto path = choose_releases(g, {"4.18.30", "4.20.8", true});
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(versions(path), (std::vector<std::string>{"4.18.30", "4.19.5", "4.20.8"}));
  ASSERT_EQ((*path)[1].risks.size(), 1u);
  EXPECT_EQ((*path)[1].risks[0].name, "EtcdSlow");
  EXPECT_EQ((*path)[1].risks[0].url, "https://issues.example/1");
  EXPECT_TRUE((*path)[2].risks.empty());

  auto no_way_back = choose_releases(g, {"4.20.8", "4.20.8", true});
  EXPECT_EQ(versions(no_way_back), (std::vector<std::string>{"4.20.8"}));
  auto unreachable = choose_releases(g, {"4.19.6", "4.19.5", true});
  ASSERT_FALSE(unreachable.ok());
  auto none = choose_releases({channel("c", graph_json({"4.1.0", "4.1.1"}, {}))}, {"4.1.0", "4.1.1", true});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "no upgrade path from 4.1.0 to 4.1.1 in channel c");
  auto no_min = choose_releases(g, {"", "4.20.8", true});
  ASSERT_FALSE(no_min.ok());
  EXPECT_NE(no_min.error().message.find("--min-version"), std::string::npos);
}

TEST(UpdateGraphParse, BadAnswersNameTheFieldAndOrigin) {
  auto not_json = UpdateGraph::parse("<html>", "for channel stable-4.20 (http://g/graph)");
  ASSERT_FALSE(not_json.ok());
  EXPECT_NE(not_json.error().message.find("update graph for channel stable-4.20 (http://g/graph): not JSON"),
            std::string::npos);
  EXPECT_FALSE(UpdateGraph::parse(R"({"nodes":[{"version":"4.20.8","payload":"quay.io/x:latest"}]})", "c").ok());
  EXPECT_TRUE(UpdateGraph::parse(graph_json({"4.20.8"}, {}), "c").ok());
  auto bad_edge = UpdateGraph::parse(
      R"({"nodes":[{"version":"4.20.8","payload":")" + payload("4.20.8") + R"("}],"edges":[[0,5]]})", "c");
  ASSERT_FALSE(bad_edge.ok());
  EXPECT_NE(bad_edge.error().message.find("edges[0]"), std::string::npos);
}

}  // namespace
}  // namespace fastsync::release
