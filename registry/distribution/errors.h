// From an HTTP response to an Error value: which kind (and so whether it is
// worth retrying), and one line that names the operation, host and repository.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "registry/core/result.h"
#include "registry/net/http_engine.h"

namespace fastsync {

// Who asked what of whom, for messages.
struct CallContext {
  std::string host;        // host[:port]
  std::string repository;  // may be empty
  std::string what;        // "PUT blob sha256:…", may be empty
  bool push = false;
  bool have_credentials = false;
  // "PUT blob sha256:… at host/repository"
  std::string where() const;
};

// The error a non-2xx (or failed) response stands for. Retry-After, when the
// server sent one, travels with it.
Error error_from_response(const Response& resp, const CallContext& ctx);

}  // namespace fastsync
