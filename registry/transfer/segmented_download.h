// A large blob fetched as parallel Range segments, reassembled in order into
// one channel (so one streamed PUT, digest checked as now). The segment at the
// channel's frontier writes straight through; a later one waits in memory
// reserved from a budget the whole run shares, so what sits out of order stays
// bounded. Extra segments are extra connections, slots of the blob pool.
//
// Adaptive (the default): a blob starts as one GET. Every epoch it weighs its
// measured rate: when its projected finish is the run's latest and the pool
// has free slots — or the rest of the run's work would be done long before
// it, when it also takes the next slots that free — the rest of it is split
// into segments and lanes are added, doubling (all the rest at once after a
// trial whose lanes each fetched what one did). A trial epoch later it keeps
// as many as it gained lanes' worth of received rate; fewer than it added
// (none where one connection already runs at the link's speed, on a shared
// interface, with a busy CPU) and it tries no more — unless its lanes were
// short of segment memory, which lanes that pay make grow. A trial whose
// lanes each fetched more than one did (a share the run's other copies left)
// gets no verdict: its lanes go, and a later trial judges. A blob that on its
// one connection already fetches about the run's best over many tries none:
// the link is the limit. Lanes past what the blob's upload takes (read as
// buffered segments drain at the frontier, against one connection's rate)
// go: they would only fetch further ahead of it. Always: split at once, and
// a large blob takes the next slots that free before copies still waiting.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "registry/core/manifest.h"
#include "registry/core/task.h"
#include "registry/distribution/registry.h"
#include "registry/transfer/blob_channel.h"
#include "registry/transfer/cpu_room.h"

namespace fastsync {

enum class SegmentPolicy { Adaptive, Always };

struct SegmentSettings {
  std::uint64_t segment_size = 2u << 20;  // the smallest segment; 0: never split a blob
  SegmentPolicy policy = SegmentPolicy::Adaptive;
  // How often an adaptive blob weighs adding or withdrawing lanes.
  std::chrono::milliseconds epoch{500};
  // Blobs of at least this many bytes may be split (into two or more).
  std::uint64_t threshold() const { return segment_size * 2; }
};

// What segments may take: connections (slots of the blob pool) and memory
// for bytes that arrive ahead of the frontier. Shared by every copy of a run.
class SegmentBudget {
 public:
  // `run_bytes`: what the whole run has fetched so far, for its rate.
  // `memory_ceiling`: what the segment memory may grow to once lanes pay
  // (grow_memory); at most `memory` when less.
  SegmentBudget(std::size_t pool, std::uint64_t memory, const std::atomic<std::uint64_t>* run_bytes = nullptr,
                std::uint64_t memory_ceiling = 0)
      : pool_(std::max<std::size_t>(1, pool)),
        memory_total_(memory),
        memory_ceiling_(std::max(memory, memory_ceiling)),
        memory_free_(memory),
        run_bytes_(run_bytes) {}

  // Each blob copy holds a slot of the pool for its own connection; it waits
  // while the pool is full. A slot that frees goes first to a blob asking for
  // lanes: the largest blobs start first and decide how long a run takes.
  // Liveness: woken when a slot frees (every holder is a transfer the stall
  // limit bounds) or by cancel(), which lets every waiter through at once.
  // `size`: the blob's, counted as work ahead until copy_finished.
  auto copy_slot(std::uint64_t size = 0) {
    add_work(size);
    struct Awaiter {
      SegmentBudget& budget;
      bool await_ready() { return budget.take_free_slot(true); }
      bool await_suspend(std::coroutine_handle<> copy) { return budget.wait_for_slot(copy); }
      void await_resume() {}
    };
    return Awaiter{*this};
  }
  void copy_finished(std::uint64_t size = 0) {
    finish_work(size);
    hand_on_slot();
  }
  // An extra connection for a segment, while the pool has a free slot.
  bool try_add_lane() { return take_free_slot(false); }
  void remove_lane() { hand_on_slot(); }
  // `take` is offered a slot that frees, already counted as its own; it
  // returns false to hand it on. Of the blobs asking, the one that reported
  // the latest finish is offered first: the run waits for it. A lane needs
  // memory for its first segment (`segment` bytes): an asker it would not fit
  // (held by segments ahead of frontiers) stays asking, and the slot goes on.
  // Not a wait: the asking blob carries on with the lanes it has. After
  // cancel() nothing is offered.
  void ask_for_lane(std::uint64_t member, std::uint64_t segment, std::function<bool()> take);
  // The run is cancelled: copies waiting for a slot go on (to fail at once on
  // the cancelled engine), later ones never wait, no lane is added.
  void cancel();

  // Memory for bytes ahead of a blob's frontier goes to the largest blobs
  // first: the run waits for them at its end. A segmented blob joins with its
  // size and says as it goes how much it could still use (its appetite); a
  // smaller blob gets only what the larger ones' appetites leave.
  std::uint64_t join(std::uint64_t blob_size);
  void leave(std::uint64_t member);
  void set_appetite(std::uint64_t member, std::uint64_t bytes);
  bool try_reserve(std::uint64_t member, std::uint64_t bytes);
  void release(std::uint64_t member, std::uint64_t bytes);

  // For adaptive lanes: each segmented blob says when it expects to finish
  // at its current rate; the one finishing last is offered the free slots.
  void report_finish(std::uint64_t member, double seconds_left);
  bool finishes_last(std::uint64_t member, double seconds_left);
  std::uint64_t memory_total() {
    std::lock_guard lock(mutex_);
    return memory_total_;
  }
  // Lanes a trial added were kept (each connection is slower than the link):
  // their segments wait for the frontier in memory, and with the default
  // budget that, not the link, becomes the limit (a source 100 ms away at 3 MB/s
  // per connection: 12 MiB took 11.6 s, 48 MiB 7.4 s, as fast as 30 MB/s; in
  // a 190-image release eight lanes of its largest blob hold 30-40 MiB).
  // Doubles the memory, up to the ceiling. Where lanes never pay (loopback, a
  // shared interface) it stays as it was.
  void grow_memory();
  // Copies waiting or under way (each counted from copy_slot to copy_finished).
  std::size_t copies() {
    std::lock_guard lock(mutex_);
    return copies_;
  }
  // How long what the run's copies (waiting or under way) have still to fetch
  // would take at its recent rate, leaving out `own` bytes (what the asking
  // blob has left); 0 when unknown.
  double seconds_of_other_work(std::uint64_t own);
  // Whether one connection fetching `rate` already fetches about the best the
  // whole run did over many (a half-second window with at least
  // kPeakConnections slots in use on average, and as many copies moving
  // bytes: slots held by copies that wait say nothing): then the link, not the
  // connection, is the limit (one interface every connection shares, a pod's),
  // and a lane would only take a share of it. False while no such window was seen.
  bool fetches_like_the_whole_run(double rate);
  // Whether the run has fetched about its best with far fewer connections
  // than its best window had: what caps it is shared by every connection (one
  // interface, a pod's), not each connection, so a lane only takes a share
  // from other copies. Only windows where the CPU had room set the best (a
  // saturated CPU flattens the rate too). Where each connection is capped
  // (a far source), fewer connections fetch proportionally less.
  bool link_is_the_limit();
  // Bytes a blob's lanes fetched ahead of its frontier, and then drained into
  // its channel: with run_bytes (what channels took) the run's fetched bytes.
  void fetched_ahead(std::uint64_t bytes) { ahead_.fetch_add(bytes, std::memory_order_relaxed); }
  void drained(std::uint64_t bytes) { ahead_.fetch_sub(bytes, std::memory_order_relaxed); }
  // Each copy's channel counts itself here once per rate window it moved bytes in.
  CopyActivity* activity() { return &activity_; }
  static constexpr double kPeakConnections = 4;
  static constexpr double kAtTheRunsBest = 0.85;          // of its best window's rate
  static constexpr double kFewerConnections = 0.75;       // of its best window's
  static constexpr double kAlsoAtTheBest = 0.95;          // a window this close to the best counts as it
  static constexpr double kLinkRate = 0.75;               // of the best window's rate, with kFewerConnections
  static constexpr double kLinkEvidenceConnections = 12;  // in the best window, at least

 private:
  struct Member {
    std::uint64_t size = 0;
    std::uint64_t appetite = 0;
    std::uint64_t held = 0;
    double seconds_left = 0;
  };
  // A copy passes once the run is cancelled (it fails at once); a lane never does.
  bool take_free_slot(bool for_copy);
  // Whether `bytes` more for `member` fit beside what larger blobs could still use.
  bool fits_locked(std::map<std::uint64_t, Member>::const_iterator member, std::uint64_t bytes) const;
  void add_work(std::uint64_t bytes);
  void finish_work(std::uint64_t bytes);
  bool wait_for_slot(std::coroutine_handle<> copy);
  void hand_on_slot();
  // Slot-seconds so far (the slots in use, integrated over time): a window's
  // average connections. Called before every change of in_use_.
  void count_slots_locked(std::chrono::steady_clock::time_point now);
  // Closes the rate window once it is half a second old: the run's rate, and
  // its best over windows with many connections.
  void sample_rate_locked();

  std::mutex mutex_;
  bool cancelled_ = false;
  const std::size_t pool_;
  std::size_t in_use_ = 0;
  std::uint64_t memory_total_;
  const std::uint64_t memory_ceiling_;
  std::uint64_t memory_free_;
  struct LaneAsker {
    std::uint64_t member;
    std::uint64_t segment;
    std::function<bool()> take;
  };
  std::deque<LaneAsker> lane_askers_;
  std::deque<std::coroutine_handle<>> waiting_copies_;
  std::map<std::uint64_t, Member> members_;
  std::uint64_t next_member_ = 1;
  const std::atomic<std::uint64_t>* run_bytes_;
  std::size_t copies_ = 0;
  std::uint64_t work_bytes_ = 0;      // sizes of the copies waiting or under way
  std::uint64_t finished_bytes_ = 0;  // sizes of the copies finished (their bytes are in run_bytes_)
  // The run's rate, sampled at most twice a second.
  std::chrono::steady_clock::time_point rate_sampled_at_{};
  std::uint64_t rate_sampled_bytes_ = 0;
  double run_rate_ = 0;
  std::chrono::steady_clock::time_point slots_counted_at_{};
  double slot_seconds_ = 0;
  double slot_seconds_sampled_ = 0;  // at the window's start
  double peak_rate_ = 0;             // the best window's, with kPeakConnections or more
  // The same for bytes fetched (ahead of frontiers too): a link's rate, not
  // the upload's bursts; over windows where the CPU had room. Its best
  // window's connections, the most of any window within a few percent of it.
  std::atomic<std::uint64_t> ahead_{0};
  std::uint64_t fetched_sampled_ = 0;
  double fetch_peak_ = 0;
  double fetch_peak_connections_ = 0;
  double fetch_peak_any_ = 0;                                            // the best of any window, the CPU short or not
  bool link_is_the_limit_ = false;                                       // once seen, for the rest of the run
  std::vector<double> best_with_ = std::vector<double>(pool_ + 1, 0.0);  // [n]: the best fetch rate with n connections
  CpuRoom cpu_room_;  // whether each window's rate was the links' to say
  CopyActivity activity_;
};

// Downloads `blob` into `channel` as segments and finishes the writer side
// with the verdict, as download_blob does. A source that ignores Range gets
// the whole blob from one connection.
Task<Status> download_segmented(Registry& source, std::string repository, Descriptor blob,
                                std::shared_ptr<BlobChannel> channel, SegmentSettings settings,
                                std::shared_ptr<SegmentBudget> budget);

}  // namespace fastsync
