// One mirror's blobs split over N processes (the pods of a Kubernetes Indexed
// Job). Every shard resolves the same plan and computes the same assignment,
// so each blob is copied by exactly one of them; an ordinary run afterwards
// finds every blob present and pushes only manifests and tags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/manifest.h"

namespace fastsync::stages {

struct Shard {
  std::size_t index = 0;  // 0-based, as JOB_COMPLETION_INDEX
  std::size_t count = 1;
  std::string str() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// "K/N" with 0 <= K < N <= 4096; nullopt otherwise.
std::optional<Shard> parse_shard(std::string_view text);

// Each blob (unique by digest) to a shard, balanced by bytes: largest first,
// each to the shard with the fewest bytes so far (ties: the lowest index).
// Depends only on the set of blobs, never on their order.
std::map<std::string, std::size_t> assign_blobs(std::vector<Descriptor> blobs, std::size_t count);

// What one shard copies, out of the whole plan.
struct ShardShare {
  Shard shard;
  std::set<std::string> blobs;  // digests this shard copies
  std::uint64_t bytes = 0;
  std::size_t plan_blobs = 0;  // unique blobs of the whole plan
  std::uint64_t plan_bytes = 0;
  std::size_t unread_images = 0;  // images whose manifests could not be read: their blobs are in no share
};

ShardShare share_of(const std::vector<Descriptor>& plan_blobs, Shard shard);

}  // namespace fastsync::stages
