// The one retry policy. Every loop that tries again — a request in
// Registry::send, the ping and token requests, a blob download resuming with
// Range, a whole blob copy restarting with a new upload session — asks it
// whether an error deserves another attempt and how long to wait first, so
// they all share one classification, one backoff and one Retry-After rule.
#pragma once

#include <chrono>
#include <optional>

#include "registry/core/result.h"

namespace fastsync {

struct RetryPolicy {
  int retries = 3;  // extra attempts after the first
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{std::chrono::seconds(30)};
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(5)};

  // What else the caller can redo besides transient failures.
  struct Scope {
    bool digest_mismatch = false;  // a whole-blob copy fetches the bytes again
  };

  // Backoff before retry number `retry` (1 = the first): base * 2^(retry-1),
  // capped at max_delay, with jitter in [0.5, 1] so clients that failed
  // together do not come back together.
  std::chrono::milliseconds backoff(int retry) const;

  // After a failure with `error`, having already retried `retries_used` times:
  // the wait before trying again, or nullopt to give up. Only transient errors
  // (network, stall, 408/429/5xx, an expired token on a streamed body) are
  // retried; a Retry-After the server sent wins over the backoff, up to
  // max_retry_after.
  std::optional<std::chrono::milliseconds> next_delay(const Error& error, int retries_used, Scope scope) const;
  std::optional<std::chrono::milliseconds> next_delay(const Error& error, int retries_used) const {
    return next_delay(error, retries_used, Scope{});
  }
};

}  // namespace fastsync
