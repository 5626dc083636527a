// Expected failures travel as values: a Result<T> holds either a T or an Error.
// Exceptions are reserved for the fatal (bugs, out of memory).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace fastsync {

enum class ErrorKind {
  NotFound,        // 404 / MANIFEST_UNKNOWN / BLOB_UNKNOWN / NAME_UNKNOWN
  AuthDenied,      // 401 after a fresh token, or the token server refused the credentials
  AuthExpired,     // 401 on a request whose streamed body cannot be sent again: redo it with a fresh token
  NoCredentials,   // the registry wants credentials and the pull secret has none for it
  Forbidden,       // 403: authenticated but not allowed (read-only, no push)
  DigestMismatch,  // bytes do not hash to the digest that names them
  Tls,             // certificate not trusted, handshake failed
  Network,         // connection refused/reset, DNS, truncated body
  Stalled,         // no bytes moved for the stall limit
  RateLimited,     // 429 after all retries
  TooLarge,        // 413: the destination (or a proxy before it) refuses a body this large
  Server,          // 5xx after all retries
  Protocol,        // the registry answered something we cannot use
  Invalid,         // bad input (release content, manifest, flag)
  LocalIo,         // this machine's disk: cannot write or read an archive volume (full, failing)
  Unverified,      // no release signature verified (and --require-signatures), or one refused
  Cancelled,       // the run is stopping (signal)
};

const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::Protocol;
  std::string message;  // one line, names host/repository/operation, never a credential
  long http_status = 0;
  // The server asked us to wait this long before trying again (Retry-After).
  std::optional<std::chrono::milliseconds> retry_after;
  // The registry's own error code ("NAME_UNKNOWN"), the first its body gives.
  std::string registry_code;

  static Error make(ErrorKind kind, std::string message, long http_status = 0) {
    return Error{kind, std::move(message), http_status, std::nullopt, {}};
  }
  // Transient problems another attempt may fix (see registry/core/retry.h for the policy).
  bool retryable() const {
    switch (kind) {
      case ErrorKind::Network:
      case ErrorKind::Stalled:
      case ErrorKind::RateLimited:
      case ErrorKind::Server:
      case ErrorKind::AuthExpired:
        return true;
      default:
        return false;
    }
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  const Error& error() const { return std::get<1>(v_); }
  Error& error() { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  Error& error() { return error_; }

 private:
  Error error_{};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace fastsync
