#include "registry/distribution/errors.h"

#include <fmt/format.h>

#include <algorithm>

#include "registry/distribution/error_body.h"

namespace fastsync {
namespace {

Error from_status(const Response& resp, const CallContext& ctx) {
  std::string detail = describe_error_body(resp.body);
  std::string base = fmt::format("{}: HTTP {}{}", ctx.where(), resp.status, detail.empty() ? "" : " " + detail);
  switch (resp.status) {
    case 404:
      return Error::make(ErrorKind::NotFound, base, resp.status);
    case 401:
      if (resp.header("www-authenticate").value_or("").find("insufficient_scope") != std::string::npos) {
        return Error::make(ErrorKind::Forbidden,
                           base + fmt::format(" (the credentials for {} do not allow {} {})", ctx.host,
                                              ctx.push ? "pushing to" : "pulling from", ctx.repository),
                           resp.status);
      }
      if (!ctx.have_credentials) {
        return Error::make(ErrorKind::NoCredentials,
                           base + fmt::format(" (the pull secret has no credentials for {})", ctx.host), resp.status);
      }
      return Error::make(ErrorKind::AuthDenied, base + fmt::format(" (credentials for {} were refused)", ctx.host),
                         resp.status);
    case 403:
      return Error::make(ErrorKind::Forbidden, base, resp.status);
    case 405:
      if (ctx.push) {
        return Error::make(ErrorKind::Forbidden, base + fmt::format(" ({} refuses writes: is it read-only?)", ctx.host),
                           resp.status);
      }
      return Error::make(ErrorKind::Protocol, base, resp.status);
    case 408:
      return Error::make(ErrorKind::Network, base, resp.status);
    case 413:
      return Error::make(ErrorKind::TooLarge, base, resp.status);
    case 429:
      return Error::make(ErrorKind::RateLimited, base, resp.status);
    default:
      // 501 and 505 say "never", not "not now".
      bool transient = resp.status >= 500 && resp.status != 501 && resp.status != 505;
      return Error::make(transient ? ErrorKind::Server : ErrorKind::Protocol, base, resp.status);
  }
}

Error from_transport(const Response& resp, const CallContext& ctx) {
  const std::string& why = resp.transport_message;
  switch (resp.transport) {
    case TransportError::Connect:
      return Error::make(ErrorKind::Network, fmt::format("{}: cannot connect: {}", ctx.where(), why));
    case TransportError::TlsVerify:
      return Error::make(ErrorKind::Tls,
                         fmt::format("TLS certificate of {} is not trusted ({}); pass --ca-file with the CA that "
                                     "signed it (or put it in /etc/containers/certs.d/{}/ca.crt), or --insecure to "
                                     "skip verification",
                                     ctx.host, why, ctx.host));
    case TransportError::TlsHandshake:
      return Error::make(
          ErrorKind::Tls,
          fmt::format("TLS handshake with {} failed ({}); if it serves plain HTTP, pass --insecure", ctx.host, why));
    case TransportError::Network:
      return Error::make(ErrorKind::Network, fmt::format("{}: connection failed: {}", ctx.where(), why));
    case TransportError::Stalled:
      return Error::make(ErrorKind::Stalled, fmt::format("{}: {}", ctx.where(), why));
    case TransportError::Cancelled:
      return Error::make(ErrorKind::Cancelled, fmt::format("{}: cancelled", ctx.where()));
    case TransportError::CredentialExpired:
      return Error::make(ErrorKind::AuthExpired, fmt::format("{}: {}", ctx.where(), why));
    default:
      return Error::make(ErrorKind::Protocol, fmt::format("{}: {}", ctx.where(), why));
  }
}

}  // namespace

std::string CallContext::where() const {
  std::string at = repository.empty() ? host : host + "/" + repository;
  return what.empty() ? at : fmt::format("{} at {}", what, at);
}

Error error_from_response(const Response& resp, const CallContext& ctx) {
  Error e = resp.transport_ok() ? from_status(resp, ctx) : from_transport(resp, ctx);
  if (resp.transport_ok()) {
    if (auto after = resp.header("retry-after")) e.retry_after = parse_retry_after(*after);
    e.registry_code = first_error_code(resp.body);
  }
  return e;
}

}  // namespace fastsync
