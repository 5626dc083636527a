#include "registry/distribution/web_fetch.h"

#include <fmt/format.h>

#include "registry/core/log.h"
#include "registry/distribution/errors.h"
#include "registry/net/url.h"

namespace fastsync {

Task<WebDocument> WebFetcher::get(std::string url, std::size_t max_bytes, std::vector<std::string> headers) {
  constexpr int kMaxRedirects = 5;
  std::string current = url;
  int redirects = 0;
  for (int retries_used = 0;;) {
    auto tls = trust_.for_host(url_host_port(current));
    if (!tls) co_return WebDocument{false, {}, tls.error()};
    Request request;
    request.url = current;
    request.headers = headers;
    request.tls = *tls;
    request.http2 = options_.http2;
    request.stall_limit = options_.stall_limit;
    request.max_memory_body = max_bytes;
    Response resp = co_await engine_.perform(std::move(request));
    if (resp.ok()) co_return WebDocument{false, std::move(resp.body), std::nullopt};
    if (resp.transport_ok() && resp.status == 404) co_return WebDocument{true, {}, std::nullopt};
    if (resp.transport_ok() && resp.status >= 300 && resp.status < 400 && resp.header("location")) {
      auto next = resolve_url(current, *resp.header("location"));
      if (!next || ++redirects > kMaxRedirects) {
        co_return WebDocument{
            false,
            {},
            Error::make(ErrorKind::Protocol, fmt::format("{}: too many or bad redirects", url_for_log(url)))};
      }
      current = *next;
      continue;
    }
    if (resp.transport == TransportError::TooLarge) {
      co_return WebDocument{
          false,
          {},
          Error::make(ErrorKind::TooLarge, fmt::format("{}: larger than {} KiB", url_for_log(url), max_bytes / 1024))};
    }
    CallContext ctx{url_host_port(current), {}, "GET " + url_for_log(current), false, false};
    Error error = error_from_response(resp, ctx);
    auto delay = options_.retry.next_delay(error, retries_used++);
    if (!delay || engine_.cancelled()) co_return WebDocument{false, {}, error};
    logging::debug("{}: {}, retrying in {} ms", url_for_log(current), error.message, delay->count());
    co_await engine_.sleep_for(*delay);
  }
}

}  // namespace fastsync
