#include "stages/copy_blob.h"

#include <spdlog/spdlog.h>

namespace fastsync::stages {

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
  if (is_fatal_for_destination(present.error())) {
    auto failed = BlobOutcome::failed(job, present.error());
    failed.fatal = true;
    co_return failed;
  }
  if (present.error().kind == ErrorKind::Cancelled) co_return BlobOutcome::failed(job, present.error());

  // Within one registry a mount moves no bytes.
  if (job.source.registry == job.dest.registry && !(job.source == job.dest)) {
    auto mounted = co_await api_.mount_blob(job.dest, job.blob.digest, job.source);
    if (mounted && *mounted) {
      done.how = BlobHow::Mounted;
      co_return done;
    }
  }
  if (run_.cancelled()) co_return BlobOutcome::failed(job, run_.cancelled_error());
  if (job.fetched) {
    auto uploaded = co_await api_.upload_blob(job.dest, job.blob.digest, *job.fetched);
    if (!uploaded) {
      auto failed = BlobOutcome::failed(job, uploaded.error());
      failed.fatal = is_fatal_for_destination(uploaded.error());
      co_return failed;
    }
    done.how = BlobHow::Copied;
    co_return done;
  }
  auto copied = co_await api_.copy_blob(job.source, job.dest, job.blob);
  if (!copied) {
    auto failed = BlobOutcome::failed(job, copied.error());
    failed.fatal = is_fatal_for_destination(copied.error());
    co_return failed;
  }
  done.how = BlobHow::Copied;
  co_return done;
}

}  // namespace fastsync::stages
