#include "stages/types.h"

namespace fastsync::stages {

const char* to_string(ImageStatus status) {
  switch (status) {
    case ImageStatus::Planned: return "planned";
    case ImageStatus::Copied: return "copied";
    case ImageStatus::Skipped: return "skipped";
    case ImageStatus::Failed: return "failed";
    case ImageStatus::BlobsIn: return "blobs-in";
  }
  return "unknown";
}

std::uint64_t ImageJob::size() const {
  std::uint64_t total = 0;
  for (const auto& b : blobs) total += b.size;
  return total;
}

ImageOutcome ImageOutcome::failed(const ImageJob& job, const Error& e) {
  ImageOutcome o;
  o.id = job.id;
  o.status = ImageStatus::Failed;
  o.error = e.message;
  o.fatal = is_run_fatal(e);
  o.cancelled = e.kind == ErrorKind::Cancelled;
  return o;
}

BlobOutcome BlobOutcome::failed(const BlobJob& job, const Error& e) {
  BlobOutcome o;
  o.digest = job.blob.digest;
  o.dest = job.dest;
  o.size = job.blob.size;
  o.error = e;
  o.fatal = is_run_fatal(e);
  return o;
}

void RunControl::cancel(std::string reason) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mutex_);
    if (cancelled_.load()) return;
    reason_ = std::move(reason);
    cancelled_.store(true);
    hook = on_cancel_;
  }
  if (hook) hook();
}

void RunControl::set_on_cancel(std::function<void()> hook) {
  bool already = false;
  {
    std::lock_guard lock(mutex_);
    on_cancel_ = hook;
    already = cancelled_.load();
  }
  if (already && hook) hook();
}

std::string RunControl::reason() const {
  std::lock_guard lock(mutex_);
  return reason_.empty() ? "cancelled" : reason_;
}

bool is_run_fatal(const Error& e) {
  return e.kind == ErrorKind::AuthDenied || e.kind == ErrorKind::NoCredentials || e.kind == ErrorKind::Forbidden ||
         e.kind == ErrorKind::Tls || e.kind == ErrorKind::LocalIo;
}

}  // namespace fastsync::stages
