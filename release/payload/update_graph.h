// The OpenShift update graph (Cincinnati): which releases a channel holds and
// which upgrades it allows; choosing the releases to mirror from it (a range,
// or a shortest path between two versions across channels).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/result.h"

namespace fastsync::release {

// "4.18.12" < "4.19.0-rc.1" < "4.19.0"; nullopt when not a version.
std::optional<int> compare_versions(std::string_view a, std::string_view b);
bool is_release_version(std::string_view v);

// The graph's architecture names: x86_64 -> amd64, aarch64 -> arm64 (ppc64le, s390x, multi as they are).
std::string graph_arch(const std::string& arch);

struct UpdateRisk {
  std::string name;
  std::string message;
  std::string url;
};

struct UpdateGraph {
  struct Node {
    std::string version;
    std::string payload;  // quay.io/openshift-release-dev/ocp-release@sha256:…
  };
  struct ConditionalEdge {
    std::string from;
    std::string to;
    std::vector<UpdateRisk> risks;
  };
  std::vector<Node> nodes;
  std::vector<std::pair<std::size_t, std::size_t>> edges;  // indexes into nodes
  std::vector<ConditionalEdge> conditional;

  // The service's JSON; errors name `origin` (channel and URL) and the field.
  static Result<UpdateGraph> parse(std::string_view json, const std::string& origin);
};

struct ChannelGraph {
  std::string channel;
  UpdateGraph graph;
};

struct VersionChoice {
  std::string min;  // empty: the max alone (or, with shortest_path, an error)
  std::string max;  // empty: the latest version in the channels
  bool shortest_path = false;
};

struct ChosenRelease {
  std::string version;
  std::string payload;  // pullspec by digest
  std::string digest;   // of the payload pullspec
  // Set on a shortest path when the upgrade into this release is a conditional edge.
  std::vector<UpdateRisk> risks;
};

// Releases to mirror, oldest first. The channels are joined into one graph:
// without shortest_path every node with min <= version <= max; with it, the
// fewest upgrades from min to max over edges and conditional edges. A version
// asked for that no channel holds, or no path, is one error line naming them.
Result<std::vector<ChosenRelease>> choose_releases(const std::vector<ChannelGraph>& graphs,
                                                   const VersionChoice& choice);

}  // namespace fastsync::release
