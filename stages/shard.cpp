#include "stages/shard.h"

#include <algorithm>
#include <charconv>

namespace fastsync::stages {

std::optional<Shard> parse_shard(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<std::size_t> {
    std::size_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return value;
  };
  auto index = number(text.substr(0, slash));
  auto count = number(text.substr(slash + 1));
  if (!index || !count || *count == 0 || *count > 4096 || *index >= *count) return std::nullopt;
  return Shard{*index, *count};
}

std::map<std::string, std::size_t> assign_blobs(std::vector<Descriptor> blobs, std::size_t count) {
  std::sort(blobs.begin(), blobs.end(), [](const Descriptor& a, const Descriptor& b) {
    return a.size != b.size ? a.size > b.size : a.digest < b.digest;
  });
  std::map<std::string, std::size_t> owner;
  std::vector<std::uint64_t> load(std::max<std::size_t>(count, 1), 0);
  for (const auto& b : blobs) {
    if (owner.count(b.digest)) continue;
    auto least = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owner.emplace(b.digest, least);
    load[least] += b.size;
  }
  return owner;
}

ShardShare share_of(const std::vector<Descriptor>& plan_blobs, Shard shard) {
  ShardShare share;
  share.shard = shard;
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& b : plan_blobs) sizes.emplace(b.digest, b.size);
  share.plan_blobs = sizes.size();
  for (const auto& [digest, size] : sizes) share.plan_bytes += size;
  for (const auto& [digest, owner] : assign_blobs(plan_blobs, shard.count)) {
    if (owner != shard.index) continue;
    share.blobs.insert(digest);
    share.bytes += sizes[digest];
  }
  return share;
}

}  // namespace fastsync::stages
