#include "registry/distribution/upload_chunks.h"

#include <algorithm>

namespace fastsync {

std::uint64_t UploadChunks::chunk() const {
  std::uint64_t chunk = chunk_.load();
  return chunk == 0 ? 0 : std::max(chunk, minimum_.load());
}

UploadChunks::Verdict UploadChunks::refused(std::uint64_t refused) {
  // The largest power of two below what was refused, 16 MiB at most, 1 MiB at least.
  std::uint64_t want = kSmallestChunk;
  while (want * 2 < refused && want * 2 <= kFirstChunk) want *= 2;
  Verdict v;
  std::uint64_t current = chunk_.load();
  while (current == 0 || want < current) {
    if (chunk_.compare_exchange_weak(current, want)) {
      v.switched = true;
      break;
    }
  }
  std::uint64_t next = chunk();
  v.retry = next > 0 && next < refused;
  return v;
}

}  // namespace fastsync
