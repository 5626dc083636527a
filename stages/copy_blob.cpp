#include "stages/copy_blob.h"

namespace fastsync::stages {

Task<Status> CopyBlob::copy_from_source(const BlobJob& job, std::string upload_session) const {
  auto copied = co_await dest_.receive_blob(source_, job.source, job.dest, job.blob, std::move(upload_session));
  if (!copied) co_return copied.error();
  co_return Status{};
}

Task<BlobOutcome> CopyBlob::operator()(BlobJob job) const {
  if (run_.cancelled()) co_return BlobOutcome::failed(job, run_.cancelled_error());
  BlobOutcome done;
  done.digest = job.blob.digest;
  done.dest = job.dest;
  done.size = job.blob.size;

  // Within one registry a mount moves no bytes.
  std::optional<Repository> mount_from = job.mount_from;
  if (!mount_from && job.source.registry == job.dest.registry && !(job.source == job.dest)) mount_from = job.source;
  auto probe = co_await dest_.probe_blob(job.dest, job.blob.digest, mount_from);
  std::string session;
  if (probe && probe->present) {
    done.how = probe->mounted ? BlobHow::Mounted : BlobHow::AlreadyPresent;
    co_return done;
  }
  if (probe) {
    session = probe->upload_session;
  } else if (is_run_fatal(probe.error()) || probe.error().kind == ErrorKind::Cancelled) {
    co_return BlobOutcome::failed(job, probe.error());
  }
  // Any other failure to ask (a 5xx, say) is no reason not to try the copy.
  if (run_.cancelled()) co_return BlobOutcome::failed(job, run_.cancelled_error());
  // Bytes already read while resolving go up from memory; the rest streams from the source.
  // (No co_await inside ?: — GCC 12 miscompiles that.)
  Status moved;
  if (job.fetched) {
    moved = co_await dest_.upload_blob(job.dest, job.blob.digest, job.fetched, std::move(session));
  } else {
    moved = co_await copy_from_source(job, std::move(session));
  }
  if (!moved) co_return BlobOutcome::failed(job, moved.error());
  done.how = BlobHow::Copied;
  co_return done;
}

}  // namespace fastsync::stages
