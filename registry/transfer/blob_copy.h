// Moving blob bytes: a registry-to-registry streamed copy (GET -> bounded
// channel -> upload, nothing on disk) and a blocking reader for consumers such
// as libarchive. Both resume a download cut mid-stream with a Range request.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "registry/core/blocking_pool.h"
#include "registry/core/endpoint.h"
#include "registry/core/manifest.h"
#include "registry/core/task.h"
#include "registry/distribution/registry.h"
#include "registry/transfer/blob_channel.h"
#include "registry/transfer/segmented_download.h"

namespace fastsync {

struct BlobCopyOptions {
  std::size_t buffer_size = BlobChannel::kDefaultCapacity;
  std::atomic<std::uint64_t>* bytes_moved = nullptr;  // progress counter, bytes read from the source
  std::optional<UploadSession> session;               // an upload already open at the destination (mount 202)
  // Large blobs are fetched as parallel Range segments when the budget allows (none: never).
  SegmentSettings segments;
  std::shared_ptr<SegmentBudget> segment_budget;
  // store_blob: the threads that read blocking sources (required there).
  BlockingPool* readers = nullptr;
};

// Downloads `blob` into `channel`, resuming after a cut (Range from the bytes
// already received) as the source's retry policy allows — a cut that still
// moved bytes does not use up the budget; finishes the writer side with the
// verdict (size and digest checked). When the consumer closed the channel, the
// verdict is the consumer's error.
Task<Status> download_blob(Registry& source, std::string repository, Descriptor blob,
                           std::shared_ptr<BlobChannel> channel);

// Streams `blob` from `source`/`source_repo` into `dest`/`dest_repo` (one
// PUT, or PATCH chunks where the destination needs them). A failed attempt is
// redone in a new upload session (Registry::upload_retrying), the error class
// being the half that failed first. Returns the bytes uploaded.
Task<Result<std::uint64_t>> copy_blob(Registry& source, std::string source_repo, Registry& dest, std::string dest_repo,
                                      Descriptor blob, BlobCopyOptions options = {});

// Uploads `blob` into `dest`/`dest_repo` from a reader another endpoint opens
// (an archive's volume), read on a thread of its own; retried like copy_blob,
// with a fresh reader for each attempt. Returns the bytes uploaded.
Task<Result<std::uint64_t>> store_blob(BlobOpener open_source, Registry& dest, std::string dest_repo, Descriptor blob,
                                       BlobCopyOptions options = {});

// Starts downloading `blob` now; read it with blocking calls from a thread
// that is not the engine's.
std::unique_ptr<BlobReader> open_blob_reader(Registry& source, std::string repository, Descriptor blob,
                                             std::atomic<std::uint64_t>* bytes_counter = nullptr);

}  // namespace fastsync
