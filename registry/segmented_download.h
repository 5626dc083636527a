// A large blob fetched as parallel Range segments, reassembled in order into
// one channel (so one streamed PUT, digest checked as now). The segment at the
// channel's frontier writes straight through; a later one waits in memory
// reserved from a budget the whole run shares, so what sits out of order stays
// bounded. Extra segments are extra connections taken from free slots of the
// blob pool: while many blobs are moving there are none, and at the start and
// end of a run the large layers stop being the long pole.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "registry/blob_channel.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "registry/task.h"

namespace fastsync {

struct SegmentSettings {
  std::uint64_t segment_size = 2u << 20;  // 0: never split a blob
  // Blobs of at least this many bytes are split (into two or more).
  std::uint64_t threshold() const { return segment_size * 2; }
};

// What segments may take: connections (free slots of the blob pool) and memory
// for bytes that arrive ahead of the frontier. Shared by every copy of a run.
class SegmentBudget {
 public:
  SegmentBudget(std::size_t pool, std::uint64_t memory) : pool_(pool), memory_free_(memory) {}
  // Each blob copy in flight holds a slot of the pool for its own connection.
  void copy_started();
  void copy_finished();
  // An extra connection for a segment, while the pool has a free slot.
  bool try_add_lane();
  void remove_lane();
  bool try_reserve(std::uint64_t bytes);
  void release(std::uint64_t bytes);

 private:
  std::mutex mutex_;
  std::size_t pool_;
  std::size_t in_use_ = 0;
  std::uint64_t memory_free_;
};

// Downloads `blob` into `channel` as segments and finishes the writer side
// with the verdict, as download_blob does. A source that ignores Range gets
// the whole blob from one connection.
Task<Status> download_segmented(Registry& source, std::string repository, Descriptor blob,
                                std::shared_ptr<BlobChannel> channel, SegmentSettings settings,
                                std::shared_ptr<SegmentBudget> budget);

}  // namespace fastsync
