#include "registry/transfer/blob_channel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace fastsync {

BlobChannel::BlobChannel(std::string digest, std::uint64_t size, std::string label, std::size_t capacity,
                         std::atomic<std::uint64_t>* bytes_counter)
    : digest_(std::move(digest)), size_(size), label_(std::move(label)), bytes_counter_(bytes_counter) {
  // Never more than the blob itself: 140 tiny configs should not each pin 256 KiB.
  ring_.reset(static_cast<std::size_t>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(capacity, size))));
}

void BlobChannel::hash_on_reader_side() { reader_hashes_ = true; }

std::optional<Error> BlobChannel::digest_mismatch() {
  std::string actual = hasher_.finish();
  if (actual == digest_) return std::nullopt;
  return Error::make(ErrorKind::DigestMismatch, fmt::format("blob {}: content hashes to {}", label_, actual));
}

void BlobChannel::set_writer_waker(Waker waker) {
  std::lock_guard lock(mutex_);
  writer_waker_ = waker;
}

void BlobChannel::set_reader_waker(Waker waker) {
  std::lock_guard lock(mutex_);
  reader_waker_ = waker;
}

std::uint64_t BlobChannel::written() const {
  std::lock_guard lock(mutex_);
  return written_;
}

bool BlobChannel::reader_closed() const {
  std::lock_guard lock(mutex_);
  return reader_closed_;
}

std::optional<Error> BlobChannel::reader_error() const {
  std::lock_guard lock(mutex_);
  return reader_error_;
}

std::uint64_t BlobChannel::consumed() const {
  std::lock_guard lock(mutex_);
  return written_ - buffered_;
}

std::size_t BlobChannel::readable_locked() const {
  // The last byte of the blob stays here until the digest is verified.
  bool holding_last = !verified_ && written_ == size_ && buffered_ > 0;
  return buffered_ - (holding_last ? 1 : 0);
}

std::size_t BlobChannel::batch_locked() const {
  std::uint64_t consumed = written_ - buffered_;
  std::uint64_t left = size_ - consumed;
  return static_cast<std::size_t>(std::min<std::uint64_t>({kReadBatch, left, ring_.size()}));
}

void BlobChannel::copy_in_locked(std::string_view bytes) {
  std::size_t tail = (head_ + buffered_) % ring_.size();
  std::size_t first = std::min(bytes.size(), ring_.size() - tail);
  std::memcpy(ring_.data() + tail, bytes.data(), first);
  std::memcpy(ring_.data(), bytes.data() + first, bytes.size() - first);
  buffered_ += bytes.size();
}

std::size_t BlobChannel::copy_out_locked(char* buffer, std::size_t capacity) {
  std::size_t n = std::min(capacity, readable_locked());
  std::size_t first = std::min(n, ring_.size() - head_);
  std::memcpy(buffer, ring_.data() + head_, first);
  std::memcpy(buffer + first, ring_.data(), n - first);
  head_ = (head_ + n) % ring_.size();
  buffered_ -= n;
  return n;
}

Flow BlobChannel::write(std::string_view bytes) {
  Waker wake_reader;
  Flow flow = Flow::Continue;
  {
    std::lock_guard lock(mutex_);
    if (reader_closed_ || writer_failure_) return Flow::Abort;
    if (written_ + bytes.size() > size_) {
      writer_failure_ =
          Error::make(ErrorKind::DigestMismatch,
                      fmt::format("blob {}: source sent more than the {} bytes its descriptor states", label_, size_));
      return Flow::Abort;
    }
    if (buffered_ == 0 && bytes.size() > ring_.size()) {
      // A chunk larger than the ring (never with the engine's buffer size, but
      // a stuck writer would be worse than a bigger buffer).
      ring_.reset(bytes.size());
      head_ = 0;
    }
    if (ring_.size() - buffered_ < bytes.size()) {
      writer_waiting_ = true;
      flow = Flow::Pause;  // curl offers the same bytes again after a wake
    } else {
      copy_in_locked(bytes);
      written_ += bytes.size();
    }
    // Wake a waiting reader once a batch is ready, or now if we are stuck (a
    // reader holding out for a batch must then take what there is), or once it
    // has waited long enough.
    bool waited_enough = reader_wait_started_ != std::chrono::steady_clock::time_point{} &&
                         std::chrono::steady_clock::now() - reader_wait_started_ >= kMaxBatchWait;
    std::size_t batch =
        static_cast<std::size_t>(std::min<std::uint64_t>(batch_locked(), std::max<std::uint64_t>(1, reader_want_)));
    if (reader_waiting_ && (flow == Flow::Pause || readable_locked() >= batch || waited_enough)) {
      reader_waiting_ = false;
      wake_reader = reader_waker_;
    }
  }
  if (flow == Flow::Continue) {
    if (!reader_hashes_) hasher_.update(bytes);
    if (bytes_counter_) bytes_counter_->fetch_add(bytes.size(), std::memory_order_relaxed);
    if (activity_) {
      std::uint64_t window = activity_->window.load(std::memory_order_relaxed);
      if (std::exchange(activity_window_, window) != window) activity_->active.fetch_add(1, std::memory_order_relaxed);
    }
    readable_.notify_one();
  }
  wake_reader.wake();
  return flow;
}

Flow BlobChannel::write_blocking(std::string_view bytes) {
  while (!bytes.empty()) {
    std::size_t piece = std::min(bytes.size(), std::max<std::size_t>(1, ring_.size() / 2));
    {
      std::unique_lock lock(mutex_);
      // Liveness: the reader takes bytes, or gives up (close_reader: its upload failed or was cancelled).
      writable_.wait(lock, [&] { return reader_closed_ || writer_failure_ || ring_.size() - buffered_ >= piece; });
      if (reader_closed_ || writer_failure_) return Flow::Abort;
    }
    // Room for `piece` now, and only this thread adds bytes: the write goes through.
    if (write(bytes.substr(0, piece)) != Flow::Continue) return Flow::Abort;
    bytes.remove_prefix(piece);
  }
  return Flow::Continue;
}

Status BlobChannel::finish_writer(Status download) {
  std::optional<Error> failure;
  bool verified = false;
  {
    std::lock_guard lock(mutex_);
    if (writer_failure_) {
      failure = writer_failure_;
    } else if (!download.ok()) {
      failure = download.error();
    } else if (written_ != size_) {
      failure =
          Error::make(ErrorKind::DigestMismatch,
                      fmt::format("blob {}: received {} bytes, its descriptor states {}", label_, written_, size_));
    }
  }
  if (!failure && reader_hashes_) {
    verified = true;  // complete: the reader checks the digest before it takes the last byte
  } else if (!failure) {
    failure = digest_mismatch();
    verified = !failure;
  }
  Waker wake_reader;
  {
    std::lock_guard lock(mutex_);
    verified_ = verified;
    if (failure && !writer_failure_) writer_failure_ = failure;
    reader_waiting_ = false;
    wake_reader = reader_waker_;
  }
  readable_.notify_all();
  wake_reader.wake();
  if (failure) return *failure;
  return Status{};
}

BodySource::Chunk BlobChannel::read_some(char* buffer, std::size_t capacity, std::uint64_t want) {
  Waker wake_writer;
  std::size_t n = 0;
  {
    std::lock_guard lock(mutex_);
    if (writer_failure_ || reader_closed_) return {Flow::Abort, 0};
    auto now = std::chrono::steady_clock::now();
    bool waited_enough =
        reader_wait_started_ != std::chrono::steady_clock::time_point{} && now - reader_wait_started_ >= kMaxBatchWait;
    std::size_t batch =
        static_cast<std::size_t>(std::min<std::uint64_t>(batch_locked(), std::max<std::uint64_t>(1, want)));
    // Hold out for a full batch, unless the writer is stuck waiting for room or we waited long enough.
    if (readable_locked() == 0 || (!verified_ && !writer_waiting_ && !waited_enough && readable_locked() < batch)) {
      if (verified_ && buffered_ == 0) return {Flow::Continue, 0};  // end of blob
      reader_waiting_ = true;
      reader_want_ = want;
      if (reader_wait_started_ == std::chrono::steady_clock::time_point{}) reader_wait_started_ = now;
      return {Flow::Pause, 0};
    }
    reader_wait_started_ = {};
    n = copy_out_locked(buffer, capacity);
    if (writer_waiting_) {
      writer_waiting_ = false;
      wake_writer = writer_waker_;
    }
  }
  writable_.notify_one();
  wake_writer.wake();
  return {Flow::Continue, n};
}

Result<std::size_t> BlobChannel::read_blocking(char* buffer, std::size_t capacity) {
  Waker wake_writer;
  std::size_t n = 0;
  {
    std::unique_lock lock(mutex_);
    // Liveness: the writer adds bytes or finishes (its download always ends:
    // stall limit, cancellation), or the reader side is closed.
    readable_.wait(lock, [&] {
      return writer_failure_ || reader_closed_ || readable_locked() > 0 || (verified_ && buffered_ == 0);
    });
    if (writer_failure_) return *writer_failure_;
    if (reader_closed_) return Error::make(ErrorKind::Cancelled, fmt::format("blob {}: reading stopped", label_));
    if (readable_locked() > 0) {
      n = copy_out_locked(buffer, capacity);
      if (writer_waiting_) {
        writer_waiting_ = false;
        wake_writer = writer_waker_;
      }
    }
  }
  writable_.notify_one();
  wake_writer.wake();
  if (reader_hashes_ && !reader_checked_) {
    // This thread's own state: the writer neither reads nor writes it.
    hasher_.update(std::string_view(buffer, n));
    hashed_ += n;
    if (hashed_ == size_) {
      reader_checked_ = true;
      if (auto mismatch = digest_mismatch()) {
        close_reader(*mismatch);
        return *mismatch;
      }
    }
  }
  return n;
}

void BlobChannel::close_reader(Error why) {
  Waker wake_writer;
  {
    std::lock_guard lock(mutex_);
    if (reader_closed_) return;
    reader_closed_ = true;
    reader_error_ = std::move(why);
    writer_waiting_ = false;
    wake_writer = writer_waker_;  // a paused writer must run once more to see it and abort
  }
  readable_.notify_all();
  writable_.notify_all();
  wake_writer.wake();
}

BodySource::Chunk ChannelSource::read(char* buffer, std::size_t capacity) {
  if (sent_ == length_) return {Flow::Continue, 0};                            // this request's window is complete
  if (sent_ == 0 && channel_->consumed() != offset_) return {Flow::Abort, 0};  // windows are read in order
  std::uint64_t left = length_ - sent_;
  auto chunk = channel_->read_some(buffer, static_cast<std::size_t>(std::min<std::uint64_t>(capacity, left)), left);
  sent_ += chunk.size;
  return chunk;
}

bool range_starts_at(const HeaderList& headers, std::uint64_t offset) {
  std::string range;
  for (const auto& [name, value] : headers) {
    if (name == "content-range") range = value;
  }
  unsigned long long first = 0;
  return std::sscanf(range.c_str(), "bytes %llu-", &first) == 1 && first == offset;
}

Flow ChannelSink::begin(long status, const HeaderList& headers) {
  skip_ = 0;
  if (offset_ == 0) return Flow::Continue;
  if (status == 206) {
    if (!range_starts_at(headers, offset_)) {
      range_rejected_ = true;
      return Flow::Abort;
    }
    return Flow::Continue;
  }
  skip_ = offset_;  // the server ignored Range: drop what we already have
  return Flow::Continue;
}

Flow ChannelSink::write(std::string_view chunk) {
  std::size_t drop = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, chunk.size()));
  std::string_view rest = chunk.substr(drop);
  if (!rest.empty()) {
    Flow flow = channel_->write(rest);
    if (flow != Flow::Continue) return flow;  // curl offers the same chunk again after a pause
  }
  skip_ -= drop;
  return Flow::Continue;
}

}  // namespace fastsync
