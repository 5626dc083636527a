#include "tests/support/update_graph_server.h"

#include <fmt/format.h>

namespace fastsync::testing {

GraphServer::GraphServer(const TempDir& dir, const std::map<std::string, std::string>& channels,
                         const std::string& mode, const std::string& graph_data)
    : log_(dir.file("graph-" + mode + ".log")) {
  std::vector<std::string> argv = {"/usr/bin/python3", source_dir() + "/tests/servers/update_graph.py", "--mode", mode};
  for (const auto& [name, json] : channels) {
    write_file(dir.file(name + ".json"), json);
    argv.insert(argv.end(), {"--channel", name + "=" + dir.file(name + ".json")});
  }
  if (!graph_data.empty()) argv.insert(argv.end(), {"--graph-data", graph_data});
  server_ = std::make_unique<Process>(argv, log_);
  url_ = "http://127.0.0.1:" + server_->wait_ready().at("port") + "/graph";
}

std::string GraphServer::log() const { return read_file(log_); }

std::string graph_json(const std::vector<GraphNode>& nodes, const std::vector<std::pair<int, int>>& edges,
                       const std::vector<std::pair<std::string, std::string>>& conditional) {
  std::string out = R"({"nodes":[)";
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    out += fmt::format(
        R"({}{{"version":"{}","payload":"quay.io/openshift-release-dev/ocp-release@{}","metadata":{{"io.openshift.upgrades.graph.release.channels":"stable-4.20"}}}})",
        i ? "," : "", nodes[i].version, nodes[i].digest);
  }
  out += R"(],"edges":[)";
  for (std::size_t i = 0; i < edges.size(); ++i)
    out += fmt::format("{}[{},{}]", i ? "," : "", edges[i].first, edges[i].second);
  out += R"(],"conditionalEdges":[)";
  for (std::size_t i = 0; i < conditional.size(); ++i) {
    out += fmt::format(
        R"({}{{"edges":[{{"from":"{}","to":"{}"}}],"risks":[{{"name":"OVNRestart","message":"Pods may lose networking briefly","url":"https://issues.redhat.example/OCPBUGS-1","matchingRules":[{{"type":"Always"}}]}}]}})",
        i ? "," : "", conditional[i].first, conditional[i].second);
  }
  return out + "]}";
}

}  // namespace fastsync::testing
