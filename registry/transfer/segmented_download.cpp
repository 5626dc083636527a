#include "registry/transfer/segmented_download.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "registry/core/log.h"

namespace fastsync {

bool SegmentBudget::take_free_slot(bool for_copy) {
  std::lock_guard lock(mutex_);
  if (cancelled_ ? !for_copy : in_use_ >= pool_) return false;
  count_slots_locked(std::chrono::steady_clock::now());
  ++in_use_;
  return true;
}

bool SegmentBudget::wait_for_slot(std::coroutine_handle<> copy) {
  std::lock_guard lock(mutex_);
  if (in_use_ < pool_ || cancelled_) {
    count_slots_locked(std::chrono::steady_clock::now());
    ++in_use_;
    return false;  // no need to wait after all
  }
  waiting_copies_.push_back(copy);
  return true;
}

void SegmentBudget::ask_for_lane(std::uint64_t member, std::uint64_t segment, std::function<bool()> take) {
  std::lock_guard lock(mutex_);
  if (cancelled_) return;
  lane_askers_.push_back({member, segment, std::move(take)});
}

void SegmentBudget::cancel() {
  std::deque<std::coroutine_handle<>> waiting;
  {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    lane_askers_.clear();
    waiting.swap(waiting_copies_);
    count_slots_locked(std::chrono::steady_clock::now());
    in_use_ += waiting.size();  // each gives its slot back when it ends
  }
  for (auto copy : waiting) copy.resume();
}

void SegmentBudget::hand_on_slot() {
  while (true) {
    std::function<bool()> lane;
    std::coroutine_handle<> copy;
    {
      std::lock_guard lock(mutex_);
      // The latest finish first (a member gone reads 0, and is offered to be
      // dropped); the earlier asker of equals. Askers whose next segment the
      // memory cannot hold are passed over, still asking: offered the slot,
      // they would hand it on and stop asking, and the run's longest blob
      // went a second and a half without the lane it was due (100 ms away).
      auto latest = lane_askers_.end();
      double latest_finish = -1;
      for (auto asker = lane_askers_.begin(); asker != lane_askers_.end(); ++asker) {
        auto it = members_.find(asker->member);
        double finish = it == members_.end() ? 0.0 : it->second.seconds_left;
        if (finish <= latest_finish) continue;
        if (it != members_.end() && !fits_locked(it, asker->segment)) continue;
        latest = asker;
        latest_finish = finish;
      }
      if (latest != lane_askers_.end()) {
        lane = std::move(latest->take);
        lane_askers_.erase(latest);
      } else if (!waiting_copies_.empty()) {
        copy = waiting_copies_.front();
        waiting_copies_.pop_front();
      } else {
        count_slots_locked(std::chrono::steady_clock::now());
        if (in_use_ > 0) --in_use_;
        sample_rate_locked();
        return;
      }
    }
    // Outside the lock: both start transfers, which may come back here.
    if (copy) {
      copy.resume();
      return;
    }
    if (lane()) return;
  }
}

std::uint64_t SegmentBudget::join(std::uint64_t blob_size) {
  std::lock_guard lock(mutex_);
  std::uint64_t member = next_member_++;
  members_[member].size = blob_size;
  return member;
}

void SegmentBudget::leave(std::uint64_t member) {
  std::lock_guard lock(mutex_);
  members_.erase(member);
}

void SegmentBudget::set_appetite(std::uint64_t member, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  if (auto it = members_.find(member); it != members_.end()) it->second.appetite = bytes;
}

bool SegmentBudget::fits_locked(std::map<std::uint64_t, Member>::const_iterator me, std::uint64_t bytes) const {
  if (bytes > memory_free_) return false;
  // What larger blobs (the earlier one of two the same size) could still use is theirs.
  std::uint64_t owed = 0;
  for (const auto& [id, m] : members_) {
    bool larger = m.size > me->second.size || (m.size == me->second.size && id < me->first);
    if (larger && m.appetite > m.held) owed += m.appetite - m.held;
  }
  return memory_free_ - bytes >= owed;
}

bool SegmentBudget::try_reserve(std::uint64_t member, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  auto me = members_.find(member);
  if (me == members_.end() || !fits_locked(me, bytes)) return false;
  memory_free_ -= bytes;
  me->second.held += bytes;
  return true;
}

void SegmentBudget::grow_memory() {
  std::lock_guard lock(mutex_);
  if (link_is_the_limit_) return;  // lanes there only fetch further ahead of the upload
  std::uint64_t more = std::min(memory_total_, memory_ceiling_ - memory_total_);
  if (more == 0) return;
  memory_total_ += more;
  memory_free_ += more;
  logging::debug("segment memory: lanes pay, {} MiB now (at most {} MiB)", memory_total_ >> 20, memory_ceiling_ >> 20);
}

void SegmentBudget::release(std::uint64_t member, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  memory_free_ += bytes;
  if (auto it = members_.find(member); it != members_.end()) it->second.held -= std::min(it->second.held, bytes);
}

void SegmentBudget::report_finish(std::uint64_t member, double seconds_left) {
  std::lock_guard lock(mutex_);
  if (auto it = members_.find(member); it != members_.end()) it->second.seconds_left = seconds_left;
}

void SegmentBudget::add_work(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  ++copies_;
  work_bytes_ += bytes;
  sample_rate_locked();
}

void SegmentBudget::finish_work(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  copies_ -= std::min<std::size_t>(copies_, 1);
  work_bytes_ -= std::min(work_bytes_, bytes);
  finished_bytes_ += bytes;
  sample_rate_locked();
}

void SegmentBudget::count_slots_locked(std::chrono::steady_clock::time_point now) {
  if (slots_counted_at_ != std::chrono::steady_clock::time_point{}) {
    slot_seconds_ += static_cast<double>(in_use_) * std::chrono::duration<double>(now - slots_counted_at_).count();
  }
  slots_counted_at_ = now;
}

void SegmentBudget::sample_rate_locked() {
  if (!run_bytes_) return;
  auto now = std::chrono::steady_clock::now();
  count_slots_locked(now);
  std::uint64_t bytes = run_bytes_->load(std::memory_order_relaxed);
  std::uint64_t fetched = bytes + ahead_.load(std::memory_order_relaxed);
  double since = std::chrono::duration<double>(now - rate_sampled_at_).count();
  if (rate_sampled_at_ != std::chrono::steady_clock::time_point{} && since < 0.5) return;
  if (rate_sampled_at_ != std::chrono::steady_clock::time_point{}) {
    run_rate_ = static_cast<double>(bytes - rate_sampled_bytes_) / since;
    // A window with few connections, or few copies moving bytes (the rest
    // held at the source, say), says nothing of what more would fetch.
    double connections = (slot_seconds_ - slot_seconds_sampled_) / since;
    std::size_t active = activity_.active.exchange(0, std::memory_order_relaxed);
    activity_.window.fetch_add(1, std::memory_order_relaxed);
    double fetch_rate = static_cast<double>(fetched - std::min(fetched, fetched_sampled_)) / since;
    bool cpu_had_room = cpu_room_.window_had_room();
    if (connections >= kPeakConnections && static_cast<double>(active) >= kPeakConnections) {
      peak_rate_ = std::max(peak_rate_, run_rate_);
      // A window short of CPU fetched less than its links allowed: it may
      // show that fewer connections fetched about the best (the ramp at a
      // run's start, where planning keeps the CPU busy), never set the best.
      // Under a saturated CPU (the suite's load, stress-ng) a run capped at 2
      // MB/s a connection fetched no more with more connections either.
      if (cpu_had_room && fetch_rate > fetch_peak_) {
        fetch_peak_connections_ =
            fetch_rate >= kAlsoAtTheBest * fetch_peak_ ? std::max(fetch_peak_connections_, connections) : connections;
        fetch_peak_ = fetch_rate;
      } else if (cpu_had_room && fetch_rate >= kAlsoAtTheBest * fetch_peak_) {
        fetch_peak_connections_ = std::max(fetch_peak_connections_, connections);
      }
      // Against the best rate of any window, busy or not: a far source's
      // proxy keeps the CPU busy while the run fetches 117 MB/s, and its
      // first window with room came late, at 48 MB/s with 42 connections held
      // mostly by lanes waiting for segment memory. With the best of any
      // window with as few connections (rounded down), so the ramp at the
      // run's start counts as well as its end. Behind one 8 MB/s interface:
      // 6.6 MB/s with 16 connections, 7.9 with 64, still 8.0 with 47 and 11;
      // 100 ms from a source at 3 MB/s a connection: 117 MB/s with 60, 49 with 17.
      fetch_peak_any_ = std::max(fetch_peak_any_, fetch_rate);
      auto slot = std::min(static_cast<std::size_t>(connections), best_with_.size() - 1);
      best_with_[slot] = std::max(best_with_[slot], fetch_rate);
      auto fewer =
          std::min(static_cast<std::size_t>(kFewerConnections * fetch_peak_connections_), best_with_.size() - 1);
      double best_with_fewer = *std::max_element(best_with_.begin(), best_with_.begin() + fewer + 1);
      // A slot counts from the request to the upload's end, not only while
      // bytes come: with a few connections that blurs what "fewer" means
      // (capped at 2 MB/s each, 4 slots fetched 8.0 MB/s and 6 slots 8.2), so
      // only a best window of many tells.
      if (!link_is_the_limit_ && fetch_peak_connections_ >= kLinkEvidenceConnections &&
          best_with_fewer >= kLinkRate * fetch_peak_any_) {
        link_is_the_limit_ = true;
        logging::debug(
            "the run fetched {:.1f} MB/s with {} connections or fewer, against its best {:.1f} (its best window with "
            "CPU to spare had {:.0f}): what caps it is shared, lanes would only take shares",
            best_with_fewer / 1e6, fewer, fetch_peak_any_ / 1e6, fetch_peak_connections_);
      }
    }
  }
  rate_sampled_at_ = now;
  rate_sampled_bytes_ = bytes;
  fetched_sampled_ = fetched;
  slot_seconds_sampled_ = slot_seconds_;
}

bool SegmentBudget::link_is_the_limit() {
  std::lock_guard lock(mutex_);
  sample_rate_locked();
  return link_is_the_limit_;
}

bool SegmentBudget::fetches_like_the_whole_run(double rate) {
  std::lock_guard lock(mutex_);
  sample_rate_locked();
  return peak_rate_ > 0 && rate >= kAtTheRunsBest * peak_rate_;
}

double SegmentBudget::seconds_of_other_work(std::uint64_t own) {
  std::lock_guard lock(mutex_);
  if (!run_bytes_) return 0;
  sample_rate_locked();
  std::uint64_t bytes = run_bytes_->load(std::memory_order_relaxed);
  if (run_rate_ <= 0) return 0;
  // What copies under way have fetched is what the run fetched less what the
  // finished ones did (retries make it a little more: an estimate).
  std::uint64_t fetched = bytes - std::min(bytes, finished_bytes_);
  std::uint64_t left = work_bytes_ - std::min(work_bytes_, fetched);
  return static_cast<double>(left - std::min(left, own)) / run_rate_;
}

bool SegmentBudget::finishes_last(std::uint64_t member, double seconds_left) {
  std::lock_guard lock(mutex_);
  for (const auto& [id, m] : members_) {
    if (id != member && m.seconds_left > seconds_left) return false;
  }
  return true;
}

namespace {

constexpr std::size_t kDrainPiece = BlobChannel::kReadBatch;
constexpr std::size_t kMaxExtraLanes = 7;  // at most 8 connections for one blob
// Splitting a blob due within this long costs more requests than it saves.
constexpr double kWorthSplittingSeconds = 1.5;
// Lanes pay when the blob's bytes arrive at least this much of what they would
// add at its per-lane rate faster. Measured as received by all its lanes, not
// in order: the in-order rate jumps when a buffered segment drains (a trial on
// an 8 MB/s link read 12 MB/s and kept a lane that only shared it; capped by
// it where lanes waited for memory, it withdrew lanes that paid 100 ms away).
// A lane waiting for memory receives nothing, so those count as they are.
constexpr double kGainNeeded = 0.5;
// Rates of two epochs this close (a share of the larger) make a baseline.
constexpr double kSettled = 1.0 / 3;
// Lanes scale when each fetches at least this share of what one did before.
constexpr double kScales = 0.85;

using Clock = std::chrono::steady_clock;

// A rate from the last few samples (bytes over the time they took). Each
// sample is one drain or one segment: seconds apart behind a slow link,
// so a handful covers the recent run, not its start.
class RateSamples {
 public:
  void add(double bytes, Clock::duration took) {
    samples_[count_++ % kKept] = {bytes, std::chrono::duration<double>(took).count()};
  }
  bool measured() const { return count_ >= kNeeded; }
  double rate() const {
    double bytes = 0, seconds = 0;
    for (std::size_t i = 0; i < std::min(count_, kKept); ++i) {
      bytes += samples_[i].bytes;
      seconds += samples_[i].seconds;
    }
    return bytes / std::max(seconds, 1e-3);
  }

 private:
  static constexpr std::size_t kKept = 4;
  static constexpr std::size_t kNeeded = 2;
  struct Sample {
    double bytes = 0;
    double seconds = 0;
  };
  std::array<Sample, kKept> samples_{};
  std::size_t count_ = 0;
};

void wake_all(const std::vector<Waker>& wakers) {
  for (const auto& w : wakers) w.wake();
}

// The blob's segments and the order they reach the channel in. Sinks of every
// segment write here: the head segment (the one at the channel's frontier)
// straight into the channel, the others into their reserved buffers, drained
// into the channel as the frontier reaches them.
class Assembler : public std::enable_shared_from_this<Assembler> {
 public:
  Assembler(Registry& source, std::string repository, Descriptor blob, std::shared_ptr<BlobChannel> channel,
            SegmentSettings settings, std::shared_ptr<SegmentBudget> budget)
      : source_(source),
        repository_(std::move(repository)),
        blob_(std::move(blob)),
        channel_(std::move(channel)),
        budget_(std::move(budget)),
        segment_size_(settings.segment_size),
        adaptive_(settings.policy == SegmentPolicy::Adaptive),
        epoch_(settings.epoch),
        member_(budget_->join(blob_.size)) {
    if (adaptive_) {
      segments_.push_back(Segment{.start = 0, .length = blob_.size});  // whole, until splitting pays
      lanes_target_ = 0;
    } else {
      carve_from(0, segment_size_);
    }
    std::lock_guard lock(mutex_);
    update_appetite_locked();
  }
  ~Assembler() { budget_->leave(member_); }

  // The channel tells us when it has room (the reader took bytes, or gave up).
  void start() {
    std::weak_ptr<Assembler> weak = weak_from_this();
    Waker room;
    room.call = [weak] {
      if (auto self = weak.lock()) self->on_room();
    };
    channel_->set_writer_waker(room);
  }

  Registry& source() { return source_; }
  const std::string& repository() const { return repository_; }
  const Descriptor& blob() const { return blob_; }
  SegmentBudget& budget() { return *budget_; }
  std::optional<Error> reader_error() const { return channel_->reader_error(); }
  std::shared_ptr<AsyncValue<bool>> range_answer() { return range_answer_; }
  std::shared_ptr<AsyncValue<Status>> finished() { return finished_; }

  struct Pick {
    enum Kind { Take, Wait, Stop } kind = Stop;
    std::size_t index = 0;
    std::shared_ptr<AsyncValue<bool>> advanced;  // Wait: set when the frontier moves on
    bool withdrawn = false;                      // Stop: an extra lane no longer wanted, already uncounted
  };
  // The next segment nobody fetches yet. One ahead of the frontier needs its
  // memory reserved: an extra lane stops without it, the blob's own lane
  // waits for the frontier (which needs none), so the blob always progresses.
  Pick pick(bool own_lane) {
    std::lock_guard lock(mutex_);
    if (!own_lane && extra_lanes_ > lanes_target_) {
      --extra_lanes_;  // here, not when the lane ends: two lanes must not both see one too many
      return {.withdrawn = true};
    }
    if (failed_ || next_ >= segments_.size()) return {};
    std::size_t k = next_;
    if (k != head_) {
      if (!budget_->try_reserve(member_, segments_[k].length)) {
        // Adaptive lanes were counted as paying: they wait for the frontier
        // (and the memory it frees) rather than end unseen.
        if (own_lane || adaptive_) {
          memory_waited_ = true;
          return {Pick::Wait, 0, advanced_};
        }
        return {};
      }
      segments_[k].reserved = true;
    }
    ++next_;
    segments_[k].taken_at = Clock::now();
    update_appetite_locked();
    return {Pick::Take, k, nullptr};
  }

  struct Where {
    std::uint64_t start = 0;
    std::uint64_t length = 0;
    std::uint64_t delivered = 0;
  };
  Where where(std::size_t k) {
    std::lock_guard lock(mutex_);
    const Segment& s = segments_[k];
    return {s.start, s.length, s.delivered};
  }
  bool failed() {
    std::lock_guard lock(mutex_);
    return failed_;
  }

  void attach(std::size_t k, Waker waker) {
    std::lock_guard lock(mutex_);
    segments_[k].transfer = waker;
  }

  // The source answered segment 0 with 206 (true), or ignored Range (false):
  // then, before any other lane started, segment 0 becomes the whole blob.
  bool whole_body_instead(std::size_t k) {
    {
      std::lock_guard lock(mutex_);
      if (k != 0 || range_answered_ || segments_[0].delivered > 0) return false;
      segments_.resize(1);
      segments_[0].length = blob_.size;
      next_ = 1;
      range_answered_ = true;
      update_appetite_locked();
    }
    range_answer_->set(false);
    return true;
  }
  void range_honoured() {
    {
      std::lock_guard lock(mutex_);
      if (range_answered_) return;
      range_answered_ = true;
    }
    range_answer_->set(true);
  }

  // Takes what of `bytes` belongs to segment k — its end may have moved
  // closer since the request went out (a split) — and says how much it took.
  struct Taken {
    Flow flow = Flow::Continue;
    std::size_t bytes = 0;
  };
  Taken write(std::size_t k, std::string_view bytes) {
    std::unique_lock lock(mutex_);
    if (failed_) return {Flow::Abort, 0};
    Segment& s = segments_[k];
    bytes = bytes.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), s.length - s.delivered)));
    if (k == head_ && s.drained == s.buffer.size()) {
      Flow flow = channel_->write(bytes);
      if (flow == Flow::Pause) {
        s.paused = true;  // the channel calls on_room when it has room
        s.waited_for_upload = true;
        upload_waited_ = true;
        Fetched fetched = all_fetched_locked();
        lock.unlock();  // logging, like every wake, happens outside the lock
        say(fetched);
      }
      if (flow != Flow::Continue) return {flow, 0};
      in_order_ += bytes.size();
    } else {
      if (s.buffer.capacity() < s.length) s.buffer.reserve(static_cast<std::size_t>(s.length));
      s.buffer.append(bytes);
      budget_->fetched_ahead(bytes.size());
    }
    s.delivered += bytes.size();
    received_ += bytes.size();
    return {Flow::Continue, bytes.size()};
  }

  void segment_done(std::size_t k) {
    Moves moves;
    Fetched fetched;
    {
      std::lock_guard lock(mutex_);
      Segment& s = segments_[k];
      s.done = true;
      if (!s.waited_for_upload && s.taken_at != Clock::time_point{})
        one_connection_.add(static_cast<double>(s.length), Clock::now() - s.taken_at);
      drain_locked(moves);
      ++done_;
      fetched = all_fetched_locked();
    }
    say(fetched);
    act(moves);
  }

  void on_room() {
    Moves moves;
    {
      std::lock_guard lock(mutex_);
      drain_locked(moves);
    }
    act(moves);
  }

  void fail(const Error& error) {
    Moves moves;
    {
      std::lock_guard lock(mutex_);
      if (completed_) return;
      fail_locked(moves, error);
    }
    act(moves);
  }

  // Always: spawns extra lanes while the pool has free slots and segments are
  // left; with none free, asks for the next one that frees.
  void add_lanes();
  // Adaptive: once per epoch, measures and decides (see the header). False
  // once the blob is done or failed: no further epochs.
  bool weigh_lanes();
  bool adaptive() const { return adaptive_; }
  void lane_ended() {
    std::lock_guard lock(mutex_);
    --extra_lanes_;
  }

 private:
  struct Segment {
    std::uint64_t start = 0;
    std::uint64_t length = 0;
    std::uint64_t delivered = 0;  // bytes its sink handed over (written through or buffered)
    std::string buffer;           // bytes that arrived ahead of the frontier
    std::size_t drained = 0;      // of `buffer`, written into the channel
    bool reserved = false;        // `length` bytes of the budget are held for it
    bool done = false;
    bool paused = false;             // its transfer is paused on a full channel
    bool waited_for_upload = false;  // it paused at least once: its rate is not its connection's
    Clock::time_point taken_at{};
    Waker transfer;
  };
  struct Moves {
    std::vector<Waker> wake;
    std::vector<std::shared_ptr<AsyncValue<bool>>> advanced;
    bool all_written = false;
    std::optional<Error> failure;  // the blob failed: complete with it (once)
  };

  // Once per blob, when every segment is in — or every one but the frontier's,
  // paused on a full channel — the bytes that wait for the upload: it is the
  // bottleneck (and tests stop a run at this point).
  struct Fetched {
    std::uint64_t waiting = 0;
    bool frontier_paused = false;
  };
  Fetched all_fetched_locked() {
    Fetched f;
    if (told_fetched_ || segments_.size() < 2 || next_ < segments_.size()) return f;
    f.frontier_paused = head_ < segments_.size() && segments_[head_].paused && !segments_[head_].done;
    if (done_ + (f.frontier_paused ? 1 : 0) != segments_.size()) return f;
    for (std::size_t i = head_; i < segments_.size(); ++i)
      f.waiting += segments_[i].buffer.size() - segments_[i].drained;
    told_fetched_ = f.waiting > 0;
    return f;
  }
  void say(const Fetched& f) {
    if (f.waiting == 0) return;
    logging::debug("blob {}: every segment fetched{}, {} bytes wait for the upload", blob_.digest,
                   f.frontier_paused ? " but the one the upload is on (paused until it takes more)" : "", f.waiting);
  }

  void drain_locked(Moves& moves) {
    while (!failed_ && head_ < segments_.size()) {
      Segment& s = segments_[head_];
      if (s.drained < s.buffer.size() && !draining_) {
        draining_ = true;
        drain_started_at_ = Clock::now();
        drain_started_in_order_ = in_order_;
      }
      while (s.drained < s.buffer.size()) {
        std::size_t piece = std::min(kDrainPiece, s.buffer.size() - s.drained);
        Flow flow = channel_->write(std::string_view(s.buffer).substr(s.drained, piece));
        if (flow == Flow::Pause) return;  // on_room comes back when the reader took some
        if (flow == Flow::Abort) {
          // The reader gave up (cancelled, or its upload failed): every lane
          // stops, and the blob completes now — no lane may be left to do it.
          fail_locked(moves, Error::make(ErrorKind::Cancelled, fmt::format("blob {}: upload stopped", blob_.digest)));
          return;
        }
        s.drained += piece;
        in_order_ += piece;
        budget_->drained(piece);
      }
      if (s.reserved) {
        budget_->release(member_, s.length);
        s.reserved = false;
      }
      if (!s.buffer.empty()) {
        std::string().swap(s.buffer);
        s.drained = 0;
      }
      if (!s.done) {
        drain_ended_locked();
        // From here its sink writes straight through; wake it if it waited on the channel.
        if (s.paused) {
          s.paused = false;
          moves.wake.push_back(s.transfer);
        }
        return;
      }
      drain_ended_locked();  // a sample a segment: lanes may keep the frontier buffered to the blob's end
      ++head_;
      moves.advanced.push_back(std::exchange(advanced_, std::make_shared<AsyncValue<bool>>()));
    }
    drain_ended_locked();
    if (!failed_ && head_ == segments_.size() && !completed_) moves.all_written = true;
  }
  // Buffered bytes drained from the frontier until none was left: the upload
  // was all that held them back, so this is its rate.
  void drain_ended_locked() {
    if (!std::exchange(draining_, false)) return;
    upload_.add(static_cast<double>(in_order_ - drain_started_in_order_), Clock::now() - drain_started_at_);
  }

  // What this blob could hold ahead of its frontier were memory no object:
  // a segment for each lane it may still add.
  void update_appetite_locked() {
    std::uint64_t lanes = failed_ ? 0 : std::min<std::uint64_t>(lanes_target_, segments_.size() - next_);
    budget_->set_appetite(member_, lanes == 0 ? 0 : lanes * segments_[next_].length);
  }

  // Segments of `length` from `start` to the blob's end.
  void carve_from(std::uint64_t start, std::uint64_t length) {
    for (; start < blob_.size; start += length) {
      segments_.push_back(Segment{.start = start, .length = std::min(length, blob_.size - start)});
    }
  }

  // Adaptive: the whole-blob request stops a segment past where it is (those
  // bytes are on the way) and the rest becomes segments for the lanes, each
  // about four epochs' worth at one connection's rate (at least segment_size;
  // a few fit the memory budget): each segment costs its lane a round trip
  // and a slow start, which on a far source (100 ms, 3 MB/s a connection)
  // took a third of an epoch's worth and hid most of a lane's gain. False when
  // too little is left to be worth it.
  bool split_locked(double rate, std::chrono::milliseconds epoch) {
    if (segments_.size() > 1) return true;
    auto worth = static_cast<std::uint64_t>(4 * rate * std::chrono::duration<double>(epoch).count());
    std::uint64_t length = std::max(segment_size_, std::min(worth, budget_->memory_total() / 4));
    Segment& whole = segments_[0];
    std::uint64_t cut = whole.start + whole.delivered + length;
    if (failed_ || cut + length > blob_.size) return false;
    whole.length = cut - whole.start;
    carve_from(cut, length);
    logging::debug("blob {}: split at byte {} into {} segments", blob_.digest, cut, segments_.size() - 1);
    return true;
  }

  // Adaptive, no extra lane wanted any more: what no lane has taken becomes
  // one segment again, fetched by one request when the frontier reaches it.
  void merge_untaken_locked() {
    if (next_ + 1 >= segments_.size()) return;
    segments_[next_].length = blob_.size - segments_[next_].start;
    segments_.resize(next_ + 1);
  }
  bool wants_lane();
  bool start_extra_lane();
  void ask_for_slot();
  bool take_offered_slot();

  // Every path to a failure goes through here and completes the blob (in
  // act): whoever sees it first — a lane's error, or the reader closing the
  // channel while the frontier drains buffered segments — may be the only one
  // left running (the lost wake-up of issue 22: segments all fetched, the
  // upload cancelled, nobody to finish the writer side).
  void fail_locked(Moves& moves, Error error) {
    if (!moves.failure) moves.failure = std::move(error);
    if (failed_) return;
    failed_ = true;
    for (auto& s : segments_) {
      if (s.reserved) budget_->release(member_, s.length);
      s.reserved = false;
      std::string().swap(s.buffer);
      if (s.paused) moves.wake.push_back(s.transfer);  // to see Abort
      s.paused = false;
    }
    next_ = segments_.size();
    update_appetite_locked();
    moves.advanced.push_back(advanced_);
  }

  // Outside the lock: waking transfers and resuming waiters may re-enter.
  void act(Moves& moves) {
    wake_all(moves.wake);
    for (auto& a : moves.advanced) a->set(true);
    // The consumer's error, when it gave up first, is the story (the copy retries by its class).
    if (moves.failure) complete(channel_->reader_error().value_or(*moves.failure));
    if (moves.all_written) complete(Status{});
  }

  void complete(Status status) {
    {
      std::lock_guard lock(mutex_);
      if (completed_) return;
      completed_ = true;
      if (!range_answered_) range_answered_ = true;
    }
    range_answer_->set(false);
    finished_->set(channel_->finish_writer(std::move(status)));
  }

  Registry& source_;
  const std::string repository_;
  const Descriptor blob_;
  const std::shared_ptr<BlobChannel> channel_;
  const std::shared_ptr<SegmentBudget> budget_;
  const std::uint64_t segment_size_;
  const bool adaptive_;
  const std::chrono::milliseconds epoch_;
  const std::uint64_t member_;  // of the budget
  const std::shared_ptr<AsyncValue<bool>> range_answer_ = std::make_shared<AsyncValue<bool>>();
  const std::shared_ptr<AsyncValue<Status>> finished_ = std::make_shared<AsyncValue<Status>>();

  std::mutex mutex_;
  std::vector<Segment> segments_;
  std::size_t head_ = 0;  // the segment at the channel's frontier
  std::size_t next_ = 0;  // the next segment no lane has taken
  std::size_t extra_lanes_ = 0;
  std::size_t lanes_target_ = kMaxExtraLanes;  // extra lanes wanted; those beyond stop at their next pick
  std::size_t done_ = 0;                       // segments complete
  bool told_fetched_ = false;                  // all_fetched_locked said so
  bool asking_ = false;                        // the budget holds our request for the next free slot
  bool range_answered_ = false;
  bool failed_ = false;
  bool completed_ = false;
  std::shared_ptr<AsyncValue<bool>> advanced_ = std::make_shared<AsyncValue<bool>>();

  // Adaptive measurement, per epoch.
  enum class Phase { Steady, WarmingUp, Measuring } phase_ = Phase::Steady;
  std::uint64_t in_order_ = 0;  // bytes of this blob written into the channel
  Clock::time_point tick_ = Clock::now();
  std::uint64_t in_order_at_tick_ = 0;
  std::uint64_t received_ = 0;  // bytes of this blob its lanes received, in order or ahead
  std::uint64_t received_at_tick_ = 0;
  double received_rate_before_ = 0;      // in the epoch before the last
  Clock::time_point lane_started_at_{};  // the latest extra lane's
  // The frontier's own connection found the channel full since then: the
  // upload is the limit. (A buffered segment draining always fills it: not that.)
  bool upload_waited_ = false;
  // The upload's rate (buffered segments draining at the frontier) and one
  // connection's (segments fetched without waiting for the upload): lanes
  // past what the upload takes only fetch further ahead of it.
  RateSamples upload_;
  RateSamples one_connection_;
  bool draining_ = false;
  Clock::time_point drain_started_at_{};
  std::uint64_t drain_started_in_order_ = 0;
  std::size_t upload_takes_ = kMaxExtraLanes + 1;  // connections' worth, once measured
  bool saturated_ = false;                         // lanes were tried and did not pay: none again
  bool lanes_scale_ = false;    // the last trial's lanes each fetched what one had: the source caps each connection
  bool memory_waited_ = false;  // a lane waited for segment memory since the trial began
  int extra_trials_left_ = 3;   // after trials judged short of memory, or voided as the run changed
  struct Trial {
    double blob_rate = 0;
    std::size_t lanes = 1;  // before the trial, counting the blob's own
    std::size_t added = 0;
    std::size_t copies = 0;  // the run's copies when it began
  } trial_;
};

// Receives one segment's response: a 206 for exactly the bytes asked, or a
// 200 (Range ignored) from which it takes its part of the whole body.
class SegmentSink : public BodySink {
 public:
  SegmentSink(std::shared_ptr<Assembler> assembler, std::size_t index, std::uint64_t offset)
      : assembler_(std::move(assembler)), index_(index), offset_(offset) {}
  void attach(Waker waker) override { assembler_->attach(index_, waker); }

  Flow begin(long status, const HeaderList& headers) override {
    skip_ = 0;
    if (status == 206) {
      if (!range_starts_at(headers, offset_)) {
        range_rejected_ = true;
        return Flow::Abort;
      }
      assembler_->range_honoured();
      return Flow::Continue;
    }
    if (assembler_->whole_body_instead(index_)) return Flow::Continue;
    skip_ = offset_;
    return Flow::Continue;
  }

  Flow write(std::string_view chunk) override {
    std::size_t drop = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, chunk.size()));
    std::string_view rest = chunk.substr(drop);
    if (!rest.empty()) {
      auto taken = assembler_->write(index_, rest);
      if (taken.flow != Flow::Continue) return taken.flow;  // curl offers the same chunk again after a pause
      // A body past our segment (a whole one, or a split moved our end): we have what we came for.
      if (taken.bytes < rest.size()) return Flow::Abort;
    }
    skip_ -= drop;
    return Flow::Continue;
  }

  bool range_rejected() const { return range_rejected_; }

 private:
  std::shared_ptr<Assembler> assembler_;
  std::size_t index_;
  std::uint64_t offset_;
  std::uint64_t skip_ = 0;
  bool range_rejected_ = false;
};

// One segment, resumed after a cut from the bytes it already delivered.
Task<Status> fetch_segment(std::shared_ptr<Assembler> assembler, std::size_t index) {
  Registry& source = assembler->source();
  const Descriptor& blob = assembler->blob();
  for (int retries_used = 0;;) {
    if (auto reader_error = assembler->reader_error()) co_return *reader_error;
    auto before = assembler->where(index);
    if (before.delivered == before.length) break;
    std::uint64_t first = before.start + before.delivered;
    std::uint64_t last = before.start + before.length - 1;
    auto sink = std::make_shared<SegmentSink>(assembler, index, first);
    Call call;
    call.kind = CallKind::BlobGet;
    call.target = fmt::format("/v2/{}/blobs/{}", assembler->repository(), blob.digest);
    call.request.headers.push_back(fmt::format("Range: bytes={}-{}", first, last));
    call.request.body_sink = sink;
    call.scope.repository = assembler->repository();
    call.follow_redirects = true;  // to a CDN, without our credentials
    call.what = fmt::format("GET blob {} bytes {}-{}", blob.digest, first, last);
    auto result = co_await source.send(std::move(call));
    auto after = assembler->where(index);
    // Complete is complete, whatever the transfer said after the last byte
    // (a whole body is cut off once our part of it is in).
    if (after.delivered == after.length) break;
    if (assembler->failed())
      co_return assembler->reader_error().value_or(
          Error::make(ErrorKind::Cancelled, fmt::format("blob {}: download stopped", blob.digest)));
    Error error =
        result ? Error::make(ErrorKind::Network, fmt::format("blob {}: bytes {}-{} ended {} bytes short", blob.digest,
                                                             first, last, after.length - after.delivered))
               : result.error();
    if (sink->range_rejected()) error.kind = ErrorKind::Network;
    if (after.delivered > before.delivered) retries_used = 0;  // progress does not use up the budget
    auto delay = source.retry_policy().next_delay(error, retries_used);
    if (!delay || source.engine().cancelled()) co_return error;
    ++retries_used;
    source.counters().retries++;
    logging::debug("blob {}: segment {}-{} cut at {} ({}), resuming in {} ms", blob.digest, before.start, last,
                   after.start + after.delivered, error.message, delay->count());
    co_await source.engine().sleep_for(*delay);
  }
  assembler->segment_done(index);
  co_return Status{};
}

// `first`: a segment already taken for this lane (kNone: pick one).
constexpr std::size_t kNone = SIZE_MAX;

Task<void> run_lane(std::shared_ptr<Assembler> assembler, bool own_lane, std::size_t first) {
  while (true) {
    Assembler::Pick pick;
    if (first != kNone) {
      pick.kind = Assembler::Pick::Take;
      pick.index = std::exchange(first, kNone);
    } else {
      pick = assembler->pick(own_lane);
    }
    if (pick.kind == Assembler::Pick::Stop) {
      if (pick.withdrawn) {
        assembler->budget().remove_lane();
        co_return;
      }
      break;
    }
    if (pick.kind == Assembler::Pick::Wait) {
      logging::debug("blob {}: waiting for segment memory (the segments ahead of the upload hold it)",
                     assembler->blob().digest);
      // Liveness: set when the frontier moves on (another lane's segment, a
      // transfer) or when the blob fails (fail_locked), whoever sees it.
      co_await pick.advanced->wait();
      continue;
    }
    auto status = co_await fetch_segment(assembler, pick.index);
    if (!status) {
      assembler->fail(status.error());
      break;
    }
    if (own_lane && !assembler->adaptive()) assembler->add_lanes();  // slots of the pool free up as other copies end
  }
  if (!own_lane) {
    assembler->lane_ended();  // first: the slot may be offered straight back to this blob
    assembler->budget().remove_lane();
  }
}

void start_lane(const std::shared_ptr<Assembler>& assembler, bool own_lane, std::size_t first = kNone) {
  spawn(
      run_lane(assembler, own_lane, first), [] {},
      [assembler](std::exception_ptr) {
        assembler->fail(Error::make(
            ErrorKind::Protocol, fmt::format("blob {}: internal error while downloading", assembler->blob().digest)));
      });
}

void Assembler::add_lanes() {
  while (wants_lane()) {
    if (!budget_->try_add_lane()) {
      ask_for_slot();
      return;
    }
    if (!start_extra_lane()) {
      budget_->remove_lane();
      return;
    }
  }
}

bool Assembler::wants_lane() {
  std::lock_guard lock(mutex_);
  if (failed_ || !range_answered_ || segments_.size() == 1) return false;
  std::size_t unassigned = segments_.size() - next_;
  return extra_lanes_ < lanes_target_ && extra_lanes_ < unassigned;
}

bool Assembler::weigh_lanes() {
  std::size_t add = 0;
  bool far_last = false;
  {
    std::lock_guard lock(mutex_);
    if (failed_ || completed_) return false;
    auto now = Clock::now();
    double seconds = std::chrono::duration<double>(now - tick_).count();
    if (seconds <= 0) return true;
    double blob_rate = static_cast<double>(in_order_ - in_order_at_tick_) / seconds;
    double received_rate = static_cast<double>(received_ - received_at_tick_) / seconds;
    tick_ = now;
    in_order_at_tick_ = in_order_;
    received_at_tick_ = received_;
    // A trial's baseline is the better of the last two epochs: one slow
    // epoch (a busy CPU) must not make ordinary ones look like a gain.
    double previous = std::exchange(received_rate_before_, received_rate);
    double baseline = std::max(received_rate, previous);
    // A trial needs a baseline to judge against: two epochs within a third
    // of each other. A blob that just started among many others behind one
    // shared interface reads 0.0, then 0.2, then 0.6 MB/s as they end; a
    // trial begun on the way up kept a lane for a gain that was theirs.
    bool settled = previous > 0 && std::abs(received_rate - previous) <= kSettled * baseline;
    double seconds_left = blob_rate > 0 ? static_cast<double>(blob_.size - in_order_) / blob_rate : 1e9;
    budget_->report_finish(member_, seconds_left);

    switch (phase_) {
      case Phase::WarmingUp:  // the new lanes were connecting: this epoch says little
        // A lane that started late in it may not have its first bytes yet
        // (100 ms away: a connection and a request, two round trips). Judged
        // on the next epoch, it counted half: one lane's trial read 4.5 MB/s
        // against 3, and the run's largest blob went on alone for 25 s.
        if (now - lane_started_at_ < epoch_ / 2) return true;
        phase_ = Phase::Measuring;
        return true;
      case Phase::Measuring: {
        phase_ = Phase::Steady;
        // How many lanes' worth the blob gained, at its rate per lane before:
        // that many of the new lanes stay. Fewer than were added means the
        // link (or the CPU) is as busy as lanes can make it: no more trials.
        double rate = received_rate;  // the lanes' gain, as received (see kGainNeeded)
        double per_lane = trial_.blob_rate / static_cast<double>(trial_.lanes);
        double worth = per_lane > 0 ? (rate - trial_.blob_rate) / per_lane : 0;
        std::size_t running = 1 + extra_lanes_;
        if (running <= trial_.lanes) return true;  // the new lanes ended already (the blob's last segments): no verdict
        trial_.added = running - trial_.lanes;
        // Each lane fetches more than a third above what one did before: the
        // blob's rate rose with a share the run's other copies left (behind one
        // shared interface, 0.1 to 5 MB/s as they ended, and lanes kept there
        // fetch ahead of an upload that then waits: 3 to 8 MB waited at a
        // shard's end, whether or not half the copies had ended). No verdict:
        // the lanes go, and a later trial judges again. Where each lane fetches
        // what one did (a source that caps each connection) the gain is the
        // lanes' own, however many copies ended: withdrawing them left the
        // run's largest blob alone at its end.
        bool lanes_rose = rate / static_cast<double>(running) > per_lane * (1 + kSettled);
        if (lanes_rose && extra_trials_left_ > 0) {
          --extra_trials_left_;
          logging::debug(
              "blob {}: {} lanes fetch {:.1f} MB/s (was {:.1f} with {}; the run went from {} copies to {}): more than "
              "lanes add, no verdict, {} lanes withdrawn",
              blob_.digest, running, rate / 1e6, trial_.blob_rate / 1e6, trial_.lanes, trial_.copies, budget_->copies(),
              trial_.added);
          lanes_target_ = trial_.lanes - 1;
          update_appetite_locked();
          return true;
        }
        auto keep = static_cast<std::size_t>(
            std::clamp(std::floor(worth + 1 - kGainNeeded), 0.0, static_cast<double>(trial_.added)));
        // Lanes paid, each no more than a third above what one fetched (more
        // is a share others left, not the lanes' own: loopback, where a lane
        // read 12 MB/s against 8 as the CPU freed), and the upload never made
        // bytes wait (a loopback run where the CPU is the limit does): the
        // segment memory, not the link, would soon be the limit.
        if (keep > 0 && !upload_waited_ && !lanes_rose) budget_->grow_memory();
        if (keep == trial_.added) {
          lanes_scale_ = !lanes_rose && rate / static_cast<double>(running) >= per_lane * kScales;
          logging::debug("blob {}: {} lanes fetch {:.1f} MB/s (was {:.1f} with {}): kept", blob_.digest,
                         trial_.lanes + trial_.added, rate / 1e6, trial_.blob_rate / 1e6, trial_.lanes);
          break;  // and weigh more at once
        }
        // A lane that waited for segment memory other blobs held was starved,
        // not useless: the blob may try again later, a few times (100 ms away,
        // the run's largest blob judged so went on alone for 25 s).
        bool starved = memory_waited_ && extra_trials_left_ > 0;
        if (starved) --extra_trials_left_;
        logging::debug("blob {}: {} lanes fetch {:.1f} MB/s (was {:.1f} with {}): {} kept, {} withdrawn, {}",
                       blob_.digest, trial_.lanes + trial_.added, rate / 1e6, trial_.blob_rate / 1e6, trial_.lanes,
                       keep, trial_.added - keep,
                       starved ? "short of segment memory: may try again" : "none tried again");
        saturated_ = !starved;
        lanes_target_ = trial_.lanes - 1 + keep;
        // Merged, the rest would be one request for the blob's own lane, and
        // no segment left for a lane a later trial adds.
        if (lanes_target_ == 0 && saturated_) merge_untaken_locked();
        update_appetite_locked();
        return true;
      }
      case Phase::Steady:
        break;
    }
    // The run fetches its best with far fewer connections than it had: a
    // lane only takes a share from other copies, and fetches ahead of an
    // upload that gets one share (behind a pod's interface, kept lanes held
    // 45 MB ahead of the frontiers while the upload ran at a third of the
    // link, and the shard ended with that to upload). Lanes go, for good.
    if (!saturated_ && budget_->link_is_the_limit()) {
      if (lanes_target_ > 0 || extra_lanes_ > 0)
        logging::debug("blob {}: what caps the run is shared: {} lanes withdrawn, none tried again", blob_.digest,
                       extra_lanes_);
      saturated_ = true;
      lanes_target_ = 0;
      merge_untaken_locked();
      update_appetite_locked();
      return true;
    }
    // Lanes raise what the blob fetches, never what its upload takes: past
    // that they only fetch further ahead of it (a destination slower than
    // one source connection: at 5 MB/s a connection against an upload of 3,
    // a kept lane's segments all waited in memory, a request every 1 MiB).
    // The upload's rate is read as buffered segments drain at the frontier,
    // where nothing else holds them. Where the upload is near (a far
    // source), they drain in milliseconds and this never binds.
    if (upload_.measured() && one_connection_.measured()) {
      double connections = upload_.rate() / one_connection_.rate();
      upload_takes_ =
          std::clamp<std::size_t>(static_cast<std::size_t>(connections + kGainNeeded), 1, kMaxExtraLanes + 1);
      if (lanes_target_ + 1 > upload_takes_ || (upload_takes_ == 1 && !saturated_)) {
        logging::debug(
            "blob {}: its upload takes {:.1f} MB/s, one connection fetches {:.1f}: {} lanes wanted, {} withdrawn{}",
            blob_.digest, upload_.rate() / 1e6, one_connection_.rate() / 1e6, upload_takes_ - 1,
            lanes_target_ + 1 - upload_takes_, upload_takes_ == 1 ? ", none tried again" : "");
        lanes_target_ = upload_takes_ - 1;
        if (upload_takes_ == 1) {
          saturated_ = true;
          merge_untaken_locked();
        }
        update_appetite_locked();
        return true;
      }
    }
    if (saturated_ || !range_answered_ || !settled || seconds_left < kWorthSplittingSeconds) return true;
    std::size_t lanes = 1 + extra_lanes_;
    // Doubling, as slow start: a trial of many lanes where one does not pay
    // (loopback) costs their requests and the reorder memory they fill. Once
    // a trial's lanes each fetched what one did, the source caps each
    // connection and more lanes pay as those did: the rest at once (100 ms
    // away, doubling took the run's largest blob 3 s to reach 8 lanes, and
    // it finished last by 1.5 s).
    add = lanes_scale_ ? kMaxExtraLanes + 1 - lanes : std::min(lanes, kMaxExtraLanes + 1 - lanes);
    add = std::min(add, upload_takes_ > lanes ? upload_takes_ - lanes : 0);
    if (add == 0) return true;
    // Alone on its one connection the blob already fetches what the whole run
    // did over many: the link is the limit, not the connection (a pod's one
    // interface). A trial would only split it: its lane fetches ahead of an
    // upload that then finishes late (a shard's last 0.4 s), and is withdrawn.
    if (lanes == 1 && budget_->fetches_like_the_whole_run(baseline)) {
      saturated_ = true;
      logging::debug("blob {}: {:.1f} MB/s on one connection, about the run's best over many: no lanes", blob_.digest,
                     baseline / 1e6);
      return true;
    }
    // Free slots are the pool's to spare, for the blob that would finish
    // last. When the rest of the run's work would be done long before this
    // blob (a far source, a few large layers), it also takes the next slots
    // that free: waiting for the pool to drain would leave it alone at the
    // end with its trial to come.
    double others = budget_->seconds_of_other_work(blob_.size - in_order_);
    far_last = others > 0 && seconds_left > 2 * others + kWorthSplittingSeconds;
    if (!far_last && !budget_->finishes_last(member_, seconds_left)) return true;
    if (!split_locked(blob_rate, epoch_)) return true;
    trial_ = {baseline, lanes, 0, budget_->copies()};
    memory_waited_ = false;
    upload_waited_ = false;
    lanes_target_ = extra_lanes_ + add;
    update_appetite_locked();
  }
  if (far_last) {
    // The free slots now, and the next that free go to this blob before
    // copies still waiting (the pool is never exceeded: --blob-concurrency
    // holds). The trial counts the lanes running when it is judged.
    add_lanes();
    std::lock_guard lock(mutex_);
    phase_ = Phase::WarmingUp;
    logging::debug(
        "blob {}: {:.1f} s left at {:.1f} MB/s, the run's last by far: trying up to {} more lanes (the "
        "next slots that free)",
        blob_.digest, static_cast<double>(blob_.size - in_order_) / std::max(trial_.blob_rate, 1.0),
        trial_.blob_rate / 1e6, add);
    return true;
  }
  std::size_t added = 0;
  while (added < add && budget_->try_add_lane()) {
    if (!start_extra_lane()) {
      budget_->remove_lane();
      break;
    }
    ++added;
  }
  std::lock_guard lock(mutex_);
  lanes_target_ = extra_lanes_;
  update_appetite_locked();
  if (added == 0) return true;  // no free slot after all, or no memory: ask again next epoch
  phase_ = Phase::WarmingUp;
  logging::debug("blob {}: {:.1f} s left at {:.1f} MB/s, the run's last: trying {} more lanes (of {} it would add)",
                 blob_.digest, static_cast<double>(blob_.size - in_order_) / std::max(trial_.blob_rate, 1.0),
                 trial_.blob_rate / 1e6, added, add);
  return true;
}

bool Assembler::start_extra_lane() {
  // Its first segment is taken here: a lane the memory budget cannot feed is never started.
  auto first = pick(false);
  if (first.kind != Pick::Take) return false;
  {
    std::lock_guard lock(mutex_);
    ++extra_lanes_;
    lane_started_at_ = Clock::now();
    // A lane given a slot that freed mid-trial: the epoch that judges the
    // trial starts after it connected, or it counts for what it had no time to fetch.
    if (phase_ == Phase::Measuring) phase_ = Phase::WarmingUp;
  }
  start_lane(shared_from_this(), false, first.index);
  return true;
}

void Assembler::ask_for_slot() {
  std::uint64_t segment = 0;  // what the lane's first segment must reserve (none at the frontier)
  {
    std::lock_guard lock(mutex_);
    if (asking_) return;
    asking_ = true;
    if (next_ < segments_.size() && next_ != head_) segment = segments_[next_].length;
  }
  std::weak_ptr<Assembler> weak = weak_from_this();
  budget_->ask_for_lane(member_, segment, [weak] {
    auto self = weak.lock();
    return self && self->take_offered_slot();
  });
}

bool Assembler::take_offered_slot() {
  {
    std::lock_guard lock(mutex_);
    asking_ = false;
  }
  if (!wants_lane() || !start_extra_lane()) return false;
  add_lanes();  // more while slots are free, or ask again
  return true;
}

// A timer chain, not a coroutine: nothing waits for it, and a pending timer
// holds only a weak pointer. Ends with the blob; cancellation fires it at once.
void weigh_every_epoch(HttpEngine& engine, const std::shared_ptr<Assembler>& assembler,
                       std::chrono::milliseconds epoch) {
  std::weak_ptr<Assembler> weak = assembler;
  engine.after(epoch, [&engine, weak, epoch] {
    auto self = weak.lock();
    if (!self || engine.cancelled() || !self->weigh_lanes()) return;
    weigh_every_epoch(engine, self, epoch);
  });
}

}  // namespace

Task<Status> download_segmented(Registry& source, std::string repository, Descriptor blob,
                                std::shared_ptr<BlobChannel> channel, SegmentSettings settings,
                                std::shared_ptr<SegmentBudget> budget) {
  auto assembler = std::make_shared<Assembler>(source, std::move(repository), std::move(blob), std::move(channel),
                                               settings, std::move(budget));
  assembler->start();
  auto finished = assembler->finished();
  auto range_answer = assembler->range_answer();
  start_lane(assembler, true);
  // Other connections only once the source (or the CDN it redirects to) has
  // shown it honours Range.
  // Liveness: the first answer sets range_answer, completion at the latest;
  // `finished` is set by the last segment written or by any failure (fail_locked).
  if (co_await range_answer->wait()) {
    if (assembler->adaptive()) {
      weigh_every_epoch(source.engine(), assembler, settings.epoch);
    } else {
      assembler->add_lanes();
    }
  }
  co_return co_await finished->wait();
}

}  // namespace fastsync
