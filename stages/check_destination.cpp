#include "stages/check_destination.h"

#include <spdlog/spdlog.h>

namespace fastsync::stages {

Task<CheckResult> CheckDestination::operator()(ImageJob job) const {
  if (run_.cancelled()) co_return CheckResult{std::move(job), run_.cancelled_error()};
  auto digest = co_await api_.manifest_digest(job.dest, job.digest);
  if (digest && *digest == job.digest) {
    job.present = true;
    co_return CheckResult{std::move(job), std::nullopt};
  }
  if (!digest && (is_run_fatal(digest.error()) || digest.error().kind == ErrorKind::Cancelled)) {
    co_return CheckResult{std::move(job), digest.error()};
  }
  if (!digest && digest.error().kind != ErrorKind::NotFound) {
    // A failing HEAD never stops a copy: copying is always safe, just slower.
    spdlog::debug("{}: destination check failed ({}), copying", job.dest_ref(), digest.error().message);
  }
  job.present = false;
  co_return CheckResult{std::move(job), std::nullopt};
}

}  // namespace fastsync::stages
