// How large one upload request to a registry may be: whole blobs until the
// registry (or a proxy before it) answers 413, then chunks, shrinking while
// they are refused. Shared by every upload to that registry, for the run.
#pragma once

#include <atomic>
#include <cstdint>

namespace fastsync {

class UploadChunks {
 public:
  static constexpr std::uint64_t kFirstChunk = 16u << 20;
  static constexpr std::uint64_t kSmallestChunk = 1u << 20;  // nginx's default client_max_body_size

  explicit UploadChunks(std::uint64_t forced = 0) : chunk_(forced) {}

  // 0: whole blobs; otherwise blobs larger than this go up in chunks of this size.
  std::uint64_t chunk() const;
  // The registry asked for chunks of at least this (OCI-Chunk-Min-Length).
  void set_minimum(std::uint64_t bytes) { minimum_.store(bytes); }

  // A request body of `refused` bytes was answered 413. Returns whether trying
  // again can help: the next attempt sends less per request than was refused —
  // because of this refusal, or because another upload already shrank the
  // chunks further. `switched` tells whether this call changed the size.
  struct Verdict {
    bool retry = false;
    bool switched = false;
  };
  Verdict refused(std::uint64_t refused);

 private:
  std::atomic<std::uint64_t> chunk_{0};
  std::atomic<std::uint64_t> minimum_{0};
};

}  // namespace fastsync
