#include "registry/transfer/blob_copy.h"

#include <fmt/format.h>

#include "registry/core/log.h"

namespace fastsync {

Task<Status> download_blob(Registry& source, std::string repository, Descriptor blob,
                           std::shared_ptr<BlobChannel> channel) {
  bool use_range = true;
  for (int retries_used = 0;;) {
    // The upload half gave up (while we slept before a retry, say): its error is the story.
    if (auto reader_error = channel->reader_error()) co_return channel->finish_writer(*reader_error);
    std::uint64_t offset = channel->written();
    if (offset == blob.size && offset > 0) {
      // Every byte arrived before the connection dropped: nothing left to fetch.
      co_return channel->finish_writer(Status{});
    }
    auto sink = std::make_shared<ChannelSink>(channel, offset);
    Call call;
    call.kind = CallKind::BlobGet;
    call.target = fmt::format("/v2/{}/blobs/{}", repository, blob.digest);
    if (offset > 0 && use_range) call.request.headers.push_back(fmt::format("Range: bytes={}-", offset));
    call.request.body_sink = sink;
    call.scope.repository = repository;
    call.follow_redirects = true;  // to a CDN, without our credentials
    call.what = fmt::format("GET blob {}", blob.digest);
    auto result = co_await source.send(std::move(call));
    if (result) co_return channel->finish_writer(Status{});

    // Stopped because the upload half gave up: its error is the story.
    if (auto reader_error = channel->reader_error()) co_return channel->finish_writer(*reader_error);
    Error error = result.error();
    if (sink->range_rejected()) {
      use_range = false;  // a 206 that starts elsewhere: take the whole body and skip instead
      error.kind = ErrorKind::Network;
    }
    // A cut that still moved bytes does not use up the budget: a long blob on a
    // flaky link resumes as long as it keeps making progress.
    if (channel->written() > offset) retries_used = 0;
    auto delay = source.retry_policy().next_delay(error, retries_used);
    if (!delay || source.engine().cancelled()) co_return channel->finish_writer(error);
    ++retries_used;
    logging::debug("{}: download cut at {} of {} bytes ({}), resuming in {} ms", channel->label(), channel->written(),
                   blob.size, error.message, delay->count());
    source.counters().retries++;
    co_await source.engine().sleep_for(*delay);
  }
}

namespace {

// Starts writing a blob into `channel`; `done` gets the writer's verdict.
using ChannelFeeder = std::function<void(std::shared_ptr<BlobChannel> channel, std::function<void(Status)> done)>;

// One upload attempt: a fresh channel, fed (by `feed`) only once the upload's
// first request holds its connection — a feeder never fills a buffer nobody
// drains, so per-host caps cannot deadlock — and the two verdicts joined.
Task<Status> upload_through_channel(Registry& dest, std::string dest_repo, Descriptor blob, std::string label,
                                    BlobCopyOptions options, UploadSession session, ChannelFeeder feed) {
  auto channel = std::make_shared<BlobChannel>(blob.digest, blob.size, label, options.buffer_size, options.bytes_moved);
  if (options.segment_budget) channel->count_activity(options.segment_budget->activity());
  auto fed = std::make_shared<AsyncValue<Status>>();
  auto feeding = std::make_shared<std::atomic<bool>>(false);
  UploadBody body;
  body.size = blob.size;
  body.stream = [channel](std::uint64_t offset, std::uint64_t length) -> std::shared_ptr<BodySource> {
    return std::make_shared<ChannelSource>(channel, offset, length);
  };
  body.on_started = [channel, fed, feeding, feed](TransferId) {
    if (feeding->exchange(true)) return;
    feed(channel, [fed](Status s) { fed->set(std::move(s)); });
  };
  auto put = co_await dest.upload(dest_repo, session, blob.digest, body);
  if (!put) channel->close_reader(put.error());
  Status got;
  // Liveness: the feeder always finishes the writer side — a download ends with its
  // transfers (stall limit, cancellation), a reader thread when close_reader above
  // wakes its blocking write.
  if (feeding->load()) got = co_await fed->wait();
  if (put && got) co_return Status{};
  // Whichever half failed first tells why: a feeder that failed on its own
  // (source error, corrupt bytes) made the upload stop; an upload that failed
  // (5xx, 413, expired token) made the feeder stop, which then reports the
  // upload's error.
  if (!got.ok()) co_return got.error();
  co_return put.error();
}

// The blob into `dest` through a channel `feed` fills, each attempt in a new
// upload session (the first may be one a mount opened) as the retry policy allows.
Task<Result<std::uint64_t>> upload_fed(Registry& dest, std::string dest_repo, Descriptor blob, std::string label,
                                       BlobCopyOptions options, ChannelFeeder feed) {
  std::optional<UploadSession> first = std::move(options.session);
  options.session.reset();
  std::function<Task<Status>(UploadSession)> attempt = [&dest, dest_repo, blob, label, options,
                                                        feed](UploadSession session) {
    return upload_through_channel(dest, dest_repo, blob, label, options, std::move(session), feed);
  };
  auto status = co_await dest.upload_retrying(dest_repo, blob.digest, std::move(first), std::move(attempt));
  if (!status) co_return status.error();
  co_return blob.size;
}

}  // namespace

Task<Result<std::uint64_t>> copy_blob(Registry& source, std::string source_repo, Registry& dest, std::string dest_repo,
                                      Descriptor blob, BlobCopyOptions options) {
  std::string label = fmt::format("{}/{}@{}", source.host(), source_repo, blob.digest);
  // This copy holds a slot of the blob pool for its connection; segments take others.
  struct PoolSlot {
    std::shared_ptr<SegmentBudget> budget;
    std::uint64_t size;
    ~PoolSlot() {
      if (budget) budget->copy_finished(size);
    }
  };
  if (options.segment_budget) co_await options.segment_budget->copy_slot(blob.size);
  PoolSlot slot{options.segment_budget, blob.size};
  const bool segmented =
      options.segment_budget && options.segments.segment_size > 0 && blob.size >= options.segments.threshold();
  // Range segments that failed for good on the source's side (a CDN that
  // answers 500 to every Range, say) do not doom the blob: the next attempt
  // takes it whole, from one connection.
  auto whole_from_now = std::make_shared<std::atomic<bool>>(false);
  ChannelFeeder download = [&source, source_repo, blob, segmented, segments = options.segments,
                            budget = options.segment_budget,
                            whole_from_now](std::shared_ptr<BlobChannel> channel, std::function<void(Status)> done) {
    const bool in_segments = segmented && !whole_from_now->load();
    Task<Status> fetch = in_segments ? download_segmented(source, source_repo, blob, channel, segments, budget)
                                     : download_blob(source, source_repo, blob, channel);
    spawn(
        std::move(fetch),
        [done, channel, in_segments, whole_from_now, digest = blob.digest](Status s) {
          bool sources_fault = !s && !channel->reader_error() && s.error().kind != ErrorKind::Cancelled;
          if (in_segments && sources_fault && !whole_from_now->exchange(true)) {
            logging::debug("blob {}: Range segments failed ({}); fetching it whole from now on", digest,
                           s.error().message);
          }
          done(std::move(s));
        },
        [done, channel](std::exception_ptr) {
          done(channel->finish_writer(Error::make(
              ErrorKind::Protocol, fmt::format("blob {}: internal error while downloading", channel->label()))));
        });
  };
  co_return co_await upload_fed(dest, std::move(dest_repo), std::move(blob), std::move(label), std::move(options),
                                std::move(download));
}

Task<Result<std::uint64_t>> store_blob(BlobOpener open_source, Registry& dest, std::string dest_repo, Descriptor blob,
                                       BlobCopyOptions options) {
  std::string label = fmt::format("{} into {}/{}", blob.digest, dest.host(), dest_repo);
  // A reader that blocks (a file on a slow disk) reads on a thread of the
  // readers' pool, never the engine's.
  BlockingPool* readers = options.readers;
  ChannelFeeder from_reader = [open_source, readers](std::shared_ptr<BlobChannel> channel,
                                                     std::function<void(Status)> done) {
    readers->post([open_source, channel, done] {
      Status verdict;
      try {
        auto reader = open_source();
        std::vector<char> buffer(64 * 1024);
        while (true) {
          auto n = reader->read(buffer.data(), buffer.size());
          if (!n) {
            verdict = n.error();
            break;
          }
          if (*n == 0) break;
          if (channel->write_blocking(std::string_view(buffer.data(), *n)) != Flow::Continue) {
            verdict = channel->reader_error().value_or(
                Error::make(ErrorKind::Cancelled, fmt::format("blob {}: upload stopped", channel->label())));
            break;
          }
        }
      } catch (const std::exception& e) {
        verdict = Error::make(ErrorKind::Protocol, fmt::format("blob {}: {}", channel->label(), e.what()));
      }
      done(channel->finish_writer(std::move(verdict)));
    });
  };
  co_return co_await upload_fed(dest, std::move(dest_repo), std::move(blob), std::move(label), std::move(options),
                                std::move(from_reader));
}

namespace {

class ChannelBlobReader : public BlobReader {
 public:
  explicit ChannelBlobReader(std::shared_ptr<BlobChannel> channel) : channel_(std::move(channel)) {}
  ~ChannelBlobReader() override { channel_->close_reader(Error::make(ErrorKind::Cancelled, "reader closed")); }
  Result<std::size_t> read(char* buffer, std::size_t capacity) override {
    return channel_->read_blocking(buffer, capacity);
  }

 private:
  std::shared_ptr<BlobChannel> channel_;
};

}  // namespace

std::unique_ptr<BlobReader> open_blob_reader(Registry& source, std::string repository, Descriptor blob,
                                             std::atomic<std::uint64_t>* bytes_counter) {
  auto channel = std::make_shared<BlobChannel>(
      blob.digest, blob.size, fmt::format("{}/{}@{}", source.host(), repository, blob.digest), 1u << 20, bytes_counter);
  // The reader's thread hashes (an archive's writer, libarchive reading a
  // layer), not the engine's, which serves every transfer of the run.
  channel->hash_on_reader_side();
  // A blocking reader has no waker: it waits on the channel's condition variable.
  spawn(
      download_blob(source, std::move(repository), std::move(blob), channel), [](Status) {},
      [channel](std::exception_ptr) {
        (void)channel->finish_writer(Error::make(ErrorKind::Protocol, "internal error while downloading"));
      });
  return std::make_unique<ChannelBlobReader>(channel);
}

}  // namespace fastsync
