#include "registry/blob_copy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace fastsync {

Task<Status> download_blob(Registry& source, std::string repository, Descriptor blob,
                           std::shared_ptr<BlobChannel> channel) {
  bool use_range = true;
  for (int attempt = 0;; ++attempt) {
    std::uint64_t offset = channel->written();
    if (offset == blob.size && offset > 0) {
      // Every byte arrived before the connection dropped: nothing left to fetch.
      co_return channel->finish_writer(Status{});
    }
    auto sink = std::make_shared<ChannelSink>(channel, offset);
    Call call;
    call.kind = CallKind::BlobGet;
    call.target = fmt::format("/v2/{}/blobs/{}", repository, blob.digest);
    if (offset > 0 && use_range) call.headers.push_back(fmt::format("Range: bytes={}-", offset));
    call.sink = sink;
    call.repository = repository;
    call.follow_redirects = true;  // to a CDN, without our credentials
    call.what = fmt::format("GET blob {}", blob.digest);
    auto result = co_await source.send(std::move(call));
    if (result) co_return channel->finish_writer(Status{});

    Error error = result.error();
    if (channel->reader_closed()) co_return channel->finish_writer(error);
    if (sink->range_rejected()) {
      use_range = false;  // a 206 that starts elsewhere: take the whole body and skip instead
      error.kind = ErrorKind::Network;
    }
    bool progressed = channel->written() > offset;
    bool retry = error.retryable() && !source.engine().cancelled() &&
                 (attempt < source.options().retries || progressed);
    if (!retry) co_return channel->finish_writer(error);
    // A cut that still moved bytes does not use up the budget: a long blob on a
    // flaky link resumes as long as it keeps making progress.
    if (progressed) attempt = -1;
    auto delay = source.backoff_delay(std::max(1, attempt + 1));
    spdlog::debug("{}: download cut at {} of {} bytes ({}), resuming in {} ms", channel->label(), channel->written(),
                  blob.size, error.message, delay.count());
    source.counters().retries++;
    co_await source.engine().sleep_for(delay);
  }
}

Task<Result<std::uint64_t>> copy_blob(Registry& source, std::string source_repo, Registry& dest,
                                      std::string dest_repo, Descriptor blob, BlobCopyOptions options) {
  const std::string label = fmt::format("{}/{}@{}", source.host(), source_repo, blob.digest);
  for (int attempt = 0;; ++attempt) {
    auto location = co_await dest.start_upload(dest_repo);
    if (!location) co_return location.error();

    auto channel = std::make_shared<BlobChannel>(blob.digest, blob.size, label, options.buffer_size,
                                                 options.bytes_moved);
    auto download_result = std::make_shared<AsyncValue<Status>>();
    auto download_started = std::make_shared<std::atomic<bool>>(false);
    // The GET starts only once the PUT holds its connection slot: a download
    // never fills a buffer nobody drains, so per-host caps cannot deadlock.
    auto start_download = [&source, source_repo, blob, channel, download_result, download_started](TransferId) {
      if (download_started->exchange(true)) return;
      spawn(
          download_blob(source, source_repo, blob, channel),
          [download_result](Status s) { download_result->set(std::move(s)); },
          [download_result, channel](std::exception_ptr) {
            download_result->set(channel->finish_writer(
                Error::make(ErrorKind::Protocol, fmt::format("blob {}: internal error while downloading", channel->label()))));
          });
    };
    auto put = co_await dest.finish_upload_streamed(dest_repo, *location, blob.digest,
                                                    std::make_shared<ChannelSource>(channel), start_download);
    if (!put) channel->close_reader(put.error());
    Status got;
    if (download_started->load()) got = co_await download_result->wait();
    if (put && got) co_return blob.size;

    // The download's verdict explains a failed PUT better than "aborted".
    Error error = !got.ok() && got.error().kind != ErrorKind::Cancelled ? got.error() : put.error();
    if (source.engine().cancelled()) co_return Error::make(ErrorKind::Cancelled, fmt::format("blob {}: cancelled", label));
    co_await dest.cancel_upload(dest_repo, *location);
    if (!put) {
      auto present = co_await dest.head_blob(dest_repo, blob.digest);
      if (present) co_return blob.size;  // a parallel writer (or a late commit) won
    }
    bool retry = (error.retryable() || error.kind == ErrorKind::DigestMismatch) && attempt < dest.options().retries;
    if (!retry) co_return error;
    auto delay = dest.backoff_delay(attempt + 1);
    spdlog::debug("{}: copy failed ({}), retry {}/{} in {} ms", label, error.message, attempt + 1,
                  dest.options().retries, delay.count());
    dest.counters().retries++;
    co_await dest.engine().sleep_for(delay);
  }
}

namespace {

class ChannelBlobReader : public BlobReader {
 public:
  explicit ChannelBlobReader(std::shared_ptr<BlobChannel> channel) : channel_(std::move(channel)) {}
  ~ChannelBlobReader() override {
    channel_->close_reader(Error::make(ErrorKind::Cancelled, "reader closed"));
  }
  Result<std::size_t> read(char* buffer, std::size_t capacity) override {
    return channel_->read_blocking(buffer, capacity);
  }

 private:
  std::shared_ptr<BlobChannel> channel_;
};

}  // namespace

std::unique_ptr<BlobReader> open_blob_reader(Registry& source, std::string repository, Descriptor blob,
                                             std::atomic<std::uint64_t>* bytes_counter) {
  auto channel = std::make_shared<BlobChannel>(blob.digest, blob.size,
                                               fmt::format("{}/{}@{}", source.host(), repository, blob.digest),
                                               1u << 20, bytes_counter);
  // A blocking reader has no waker: it waits on the channel's condition variable.
  spawn(
      download_blob(source, std::move(repository), std::move(blob), channel), [](Status) {},
      [channel](std::exception_ptr) {
        (void)channel->finish_writer(Error::make(ErrorKind::Protocol, "internal error while downloading"));
      });
  return std::make_unique<ChannelBlobReader>(channel);
}

}  // namespace fastsync
