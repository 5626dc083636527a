#include "stages/copy_blob.h"

#include <spdlog/spdlog.h>

namespace fastsync::stages {

Task<Status> CopyBlob::copy_from_source(const BlobJob& job, std::string upload_session) const {
  auto copied = co_await api_.copy_blob(job.source, job.dest, job.blob, std::move(upload_session));
  if (!copied) co_return copied.error();
  co_return Status{};
}

Task<BlobOutcome> CopyBlob::operator()(BlobJob job) const {
  if (run_.cancelled()) co_return BlobOutcome::failed(job, run_.cancelled_error());
  BlobOutcome done;
  done.digest = job.blob.digest;
  done.dest = job.dest;
  done.size = job.blob.size;

  auto present = co_await api_.blob_exists(job.dest, job.blob.digest);
  if (present) {
    done.how = BlobHow::AlreadyPresent;
    co_return done;
  }
  // Any other HEAD failure (a 5xx, say) is no reason not to try the copy.
  if (is_run_fatal(present.error()) || present.error().kind == ErrorKind::Cancelled) {
    co_return BlobOutcome::failed(job, present.error());
  }

  // Within one registry a mount moves no bytes; a mount refused with 202 opened
  // an upload session, which the upload then uses.
  std::string session;
  if (job.source.registry == job.dest.registry && !(job.source == job.dest)) {
    auto mounted = co_await api_.mount_blob(job.dest, job.blob.digest, job.source);
    if (mounted && mounted->mounted) {
      done.how = BlobHow::Mounted;
      co_return done;
    }
    if (mounted) session = mounted->upload_session;
  }
  if (run_.cancelled()) co_return BlobOutcome::failed(job, run_.cancelled_error());
  // Bytes already read while resolving go up from memory; the rest streams from the source.
  // (No co_await inside ?: — GCC 12 miscompiles that.)
  Status moved;
  if (job.fetched) {
    moved = co_await api_.upload_blob(job.dest, job.blob.digest, job.fetched, std::move(session));
  } else {
    moved = co_await copy_from_source(job, std::move(session));
  }
  if (!moved) co_return BlobOutcome::failed(job, moved.error());
  done.how = BlobHow::Copied;
  co_return done;
}

}  // namespace fastsync::stages
