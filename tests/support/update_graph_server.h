// A local update graph service shaped like api.openshift.com's
// (tests/servers/update_graph.py), and the graph JSON it serves.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/process.h"

namespace fastsync::testing {

class GraphServer {
 public:
  // `channels`: channel name -> the graph JSON it answers with (for amd64;
  // "<channel>@<arch>" for another architecture, e.g. stable-4.20@arm64).
  // `graph_data`: a file GET /graph-data answers with (the update service's graph-data tarball).
  GraphServer(const TempDir& dir, const std::map<std::string, std::string>& channels,
              const std::string& mode = "normal", const std::string& graph_data = "");
  const std::string& url() const { return url_; }
  std::string graph_data_url() const { return url_ + "-data"; }
  std::string log() const;

 private:
  std::string log_;
  std::unique_ptr<Process> server_;
  std::string url_;
};

struct GraphNode {
  std::string version;
  std::string digest;
};

// The service's shape: nodes with payload pullspecs by digest, edges as index pairs,
// conditional edges by version with risks.
std::string graph_json(const std::vector<GraphNode>& nodes, const std::vector<std::pair<int, int>>& edges,
                       const std::vector<std::pair<std::string, std::string>>& conditional = {});

}  // namespace fastsync::testing
