// Moving blob bytes: a registry-to-registry streamed copy (GET -> bounded
// channel -> PUT, nothing on disk) and a blocking reader for consumers such as
// libarchive. Both resume a download cut mid-stream with a Range request.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "registry/api.h"
#include "registry/blob_channel.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "registry/task.h"

namespace fastsync {

struct BlobCopyOptions {
  std::size_t buffer_size = BlobChannel::kDefaultCapacity;
  std::atomic<std::uint64_t>* bytes_moved = nullptr;  // progress counter, bytes read from the source
};

// Downloads `blob` into `channel`, resuming after a cut (Range from the bytes
// already received) up to the source's retry budget; finishes the writer side
// with the verdict (size and digest checked).
Task<Status> download_blob(Registry& source, std::string repository, Descriptor blob,
                           std::shared_ptr<BlobChannel> channel);

// Uploads `blob` from `source`/`source_repo` to `dest`/`dest_repo` as one
// monolithic streamed PUT. Retried as a whole (new upload session) on failure,
// including a digest mismatch; after a failed PUT the destination is asked
// whether the blob arrived anyway (another writer may have won). Returns the
// bytes uploaded.
Task<Result<std::uint64_t>> copy_blob(Registry& source, std::string source_repo, Registry& dest,
                                      std::string dest_repo, Descriptor blob, BlobCopyOptions options = {});

// Starts downloading `blob` now; read it with blocking calls from a thread
// that is not the engine's.
std::unique_ptr<BlobReader> open_blob_reader(Registry& source, std::string repository, Descriptor blob,
                                             std::atomic<std::uint64_t>* bytes_counter = nullptr);

}  // namespace fastsync
