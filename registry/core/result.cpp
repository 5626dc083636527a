#include "registry/core/result.h"

namespace fastsync {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::NotFound:
      return "not found";
    case ErrorKind::AuthDenied:
      return "authentication denied";
    case ErrorKind::AuthExpired:
      return "credentials expired";
    case ErrorKind::NoCredentials:
      return "no credentials";
    case ErrorKind::Forbidden:
      return "forbidden";
    case ErrorKind::DigestMismatch:
      return "digest mismatch";
    case ErrorKind::Tls:
      return "TLS";
    case ErrorKind::Network:
      return "network";
    case ErrorKind::Stalled:
      return "stalled";
    case ErrorKind::RateLimited:
      return "rate limited";
    case ErrorKind::TooLarge:
      return "body too large";
    case ErrorKind::Server:
      return "server error";
    case ErrorKind::Protocol:
      return "protocol";
    case ErrorKind::Invalid:
      return "invalid";
    case ErrorKind::LocalIo:
      return "local disk";
    case ErrorKind::Unverified:
      return "unverified";
    case ErrorKind::Cancelled:
      return "cancelled";
  }
  return "error";
}

}  // namespace fastsync
