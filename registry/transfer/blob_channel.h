// A blob in transit: a small bounded ring buffer between the transfer that
// downloads a blob and whoever consumes it (a PUT to another registry, or a
// thread reading a layer with libarchive). The writer hashes every byte — or,
// for a blocking reader on a thread of its own, the reader does (the engine
// thread that writes then only copies); either way the consumer never gets the
// final byte until size and digest are verified, so a wrong blob can never be
// committed by the PUT that streams it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/core/digest.h"
#include "registry/core/result.h"
#include "registry/net/http_engine.h"

namespace fastsync {

// How many copies moved bytes in a window of time (the segment budget's rate
// window): each channel counts itself once per window it writes in.
struct CopyActivity {
  std::atomic<std::uint64_t> window{0};
  std::atomic<std::size_t> active{0};
};

class BlobChannel {
 public:
  static constexpr std::size_t kDefaultCapacity = 128 * 1024;  // two read batches; x64 copies in flight
  // A non-blocking reader is woken, and served, in batches of at least this much
  // (or the rest of the blob): a PUT fed 16 KiB at a time costs the receiving
  // registry several times the CPU of one fed in 64 KiB writes.
  static constexpr std::size_t kReadBatch = 64 * 1024;
  // ...but never waits longer than this for one: a slow source still feeds the
  // upload steadily (and keeps it clear of the stall limit).
  static constexpr std::chrono::milliseconds kMaxBatchWait{100};

  // `label` names the blob in errors ("quay.io/ns/repo@sha256:…").
  BlobChannel(std::string digest, std::uint64_t size, std::string label, std::size_t capacity = kDefaultCapacity,
              std::atomic<std::uint64_t>* bytes_counter = nullptr);

  const std::string& digest() const { return digest_; }
  std::uint64_t size() const { return size_; }
  const std::string& label() const { return label_; }
  // Before any byte is written: read_blocking hashes what it hands out, on
  // the reader's thread, and verifies the digest before the last byte. The
  // writer only copies; finish_writer checks the size. (Not with read_some.)
  void hash_on_reader_side();
  // Before any byte is written: counts this copy in `activity` in each window it writes bytes in.
  void count_activity(CopyActivity* activity) { activity_ = activity; }

  // --- writer side (a download transfer, on the engine thread) ---
  void set_writer_waker(Waker waker);
  Flow write(std::string_view bytes);
  // For a writer on a thread of its own (a file being read): waits for room.
  // Continue, or Abort once the reader gave up.
  Flow write_blocking(std::string_view bytes);
  std::uint64_t written() const;
  // The download ended: with ok, size and digest are checked here. Returns the
  // channel's verdict (a mismatch or the download's own error).
  Status finish_writer(Status download);

  // --- reader side ---
  void set_reader_waker(Waker waker);
  // Non-blocking, for a streamed PUT on the engine thread. `want` bounds the
  // batch the reader holds out for (the rest of a chunked upload's window).
  BodySource::Chunk read_some(char* buffer, std::size_t capacity, std::uint64_t want = UINT64_MAX);
  // Bytes handed to the reader so far.
  std::uint64_t consumed() const;
  // Blocking, for a consumer thread; 0 at the verified end of the blob.
  Result<std::size_t> read_blocking(char* buffer, std::size_t capacity);
  // The consumer gave up: the writer aborts at its next write, and the
  // download reports `why` (so a copy retries by the consumer's error class).
  void close_reader(Error why);
  bool reader_closed() const;
  std::optional<Error> reader_error() const;

 private:
  std::size_t readable_locked() const;
  std::size_t batch_locked() const;
  void copy_in_locked(std::string_view bytes);
  std::size_t copy_out_locked(char* buffer, std::size_t capacity);
  // Finishes the hash (once, by whichever side hashes): the error when it is not the digest.
  std::optional<Error> digest_mismatch();

  const std::string digest_;
  const std::uint64_t size_;
  const std::string label_;
  std::atomic<std::uint64_t>* bytes_counter_;
  bool reader_hashes_ = false;   // set before use
  Sha256 hasher_;                // the writer's, or the blocking reader's
  std::uint64_t hashed_ = 0;     // reader hashing: bytes hashed so far
  bool reader_checked_ = false;  // reader hashing: the digest was checked
  CopyActivity* activity_ = nullptr;
  std::uint64_t activity_window_ = ~std::uint64_t{0};  // the last window counted (the writer's alone)

  mutable std::mutex mutex_;
  std::condition_variable readable_;
  std::condition_variable writable_;  // a blocking writer waits here for room
  // The ring's bytes, never zero-filled: every byte is written before it is read,
  // and zeroing a ring per blob costs as much as copying the blob once.
  struct Buffer {
    std::unique_ptr<char[]> bytes;
    std::size_t length = 0;
    void reset(std::size_t n) {
      bytes.reset(new char[n]);
      length = n;
    }
    char* data() { return bytes.get(); }
    std::size_t size() const { return length; }
  };
  Buffer ring_;
  std::size_t head_ = 0;      // next byte to read
  std::size_t buffered_ = 0;  // bytes in the ring
  std::uint64_t written_ = 0;
  bool writer_waiting_ = false;
  bool reader_waiting_ = false;
  bool verified_ = false;  // the writer finished: size (and, hashing there, digest) checked
  std::optional<Error> writer_failure_;
  bool reader_closed_ = false;
  std::optional<Error> reader_error_;
  std::chrono::steady_clock::time_point reader_wait_started_{};  // zero while the reader is not waiting
  std::uint64_t reader_want_ = UINT64_MAX;                       // the waiting reader's window
  Waker writer_waker_;
  Waker reader_waker_;
};

// The body of a streamed upload request, fed from a channel: the whole blob
// (one PUT), or the window [offset, offset + length) of it (one PATCH chunk).
class ChannelSource : public BodySource {
 public:
  explicit ChannelSource(std::shared_ptr<BlobChannel> channel) : ChannelSource(channel, 0, channel->size()) {}
  ChannelSource(std::shared_ptr<BlobChannel> channel, std::uint64_t offset, std::uint64_t length)
      : channel_(std::move(channel)), offset_(offset), length_(length) {}
  void attach(Waker waker) override { channel_->set_reader_waker(waker); }
  std::uint64_t length() const override { return length_; }
  Chunk read(char* buffer, std::size_t capacity) override;

 private:
  std::shared_ptr<BlobChannel> channel_;
  std::uint64_t offset_;
  std::uint64_t length_;
  std::uint64_t sent_ = 0;
};

// Whether a 206's Content-Range ("bytes <first>-<last>/<total>") starts at `offset`.
bool range_starts_at(const HeaderList& headers, std::uint64_t offset);

// One download attempt feeding a channel from byte `offset` on. A 206 must
// start exactly there; a 200 (Range ignored) has its first `offset` bytes dropped.
class ChannelSink : public BodySink {
 public:
  ChannelSink(std::shared_ptr<BlobChannel> channel, std::uint64_t offset)
      : channel_(std::move(channel)), offset_(offset) {}
  void attach(Waker waker) override { channel_->set_writer_waker(waker); }
  Flow begin(long status, const HeaderList& headers) override;
  Flow write(std::string_view chunk) override;
  bool range_rejected() const { return range_rejected_; }

 private:
  std::shared_ptr<BlobChannel> channel_;
  std::uint64_t offset_;
  std::uint64_t skip_ = 0;
  bool range_rejected_ = false;
};

}  // namespace fastsync
