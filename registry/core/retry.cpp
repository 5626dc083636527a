#include "registry/core/retry.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace fastsync {

std::chrono::milliseconds RetryPolicy::backoff(int retry) const {
  thread_local std::mt19937 rng{std::random_device{}()};
  double delay = static_cast<double>(base_delay.count()) * std::pow(2.0, std::max(0, retry - 1));
  delay = std::min(delay, static_cast<double>(max_delay.count()));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::chrono::milliseconds(static_cast<long>(delay * jitter(rng)));
}

std::optional<std::chrono::milliseconds> RetryPolicy::next_delay(const Error& error, int retries_used,
                                                                 Scope scope) const {
  bool transient = error.retryable() || (scope.digest_mismatch && error.kind == ErrorKind::DigestMismatch);
  if (!transient || retries_used >= retries) return std::nullopt;
  if (error.retry_after) return std::min(*error.retry_after, max_retry_after);
  return backoff(retries_used + 1);
}

}  // namespace fastsync
