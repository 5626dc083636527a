#include "registry/signature_stores.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "registry/errors.h"
#include "registry/url.h"

namespace fastsync {

std::vector<std::string> default_signature_stores() {
  return {"https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release",
          "https://storage.googleapis.com/openshift-release/official/signatures/openshift/release"};
}

struct SignatureStores::Fetched {
  bool absent = false;  // 404: no signature with this number
  std::string body;
  std::optional<Error> error;
};

SignatureStores::SignatureStores(HttpEngine& engine, TrustStore& trust, RegistryOptions options,
                                 std::vector<std::string> stores)
    : engine_(engine), trust_(trust), options_(std::move(options)), stores_(std::move(stores)) {
  for (auto& s : stores_) {
    while (!s.empty() && s.back() == '/') s.pop_back();
  }
}

Task<SignatureStores::Fetched> SignatureStores::fetch(std::string url) {
  constexpr int kMaxRedirects = 5;
  std::string current = url;
  int redirects = 0;
  for (int retries_used = 0;;) {
    auto tls = trust_.for_host(url_host_port(current));
    if (!tls) co_return Fetched{false, {}, tls.error()};
    Request request;
    request.url = current;
    request.tls = *tls;
    request.http2 = options_.http2;
    request.stall_limit = options_.stall_limit;
    request.max_memory_body = kMaxSignatureBytes;
    Response resp = co_await engine_.perform(std::move(request));
    CallContext ctx{url_host_port(current), {}, "GET " + url_for_log(current), false, false};
    if (resp.ok()) co_return Fetched{false, std::move(resp.body), std::nullopt};
    if (resp.transport_ok() && resp.status == 404) co_return Fetched{true, {}, std::nullopt};
    if (resp.transport_ok() && resp.status >= 300 && resp.status < 400 && resp.header("location")) {
      auto next = resolve_url(current, *resp.header("location"));
      if (!next || ++redirects > kMaxRedirects) {
        co_return Fetched{false, {}, Error::make(ErrorKind::Protocol, fmt::format("{}: too many or bad redirects",
                                                                                 url_for_log(url)))};
      }
      current = *next;
      continue;
    }
    if (resp.transport == TransportError::TooLarge) {
      co_return Fetched{false, {}, Error::make(ErrorKind::TooLarge, fmt::format("{}: larger than {} KiB", url_for_log(url),
                                                                               kMaxSignatureBytes / 1024))};
    }
    Error error = error_from_response(resp, ctx);
    auto delay = options_.retry.next_delay(error, retries_used++);
    if (!delay || engine_.cancelled()) co_return Fetched{false, {}, error};
    spdlog::debug("{}: {}, retrying in {} ms", url_for_log(current), error.message, delay->count());
    co_await engine_.sleep_for(*delay);
  }
}

Task<FetchedSignatures> SignatureStores::read_store(std::string store, std::string hex) {
  FetchedSignatures out;
  for (int n = 1; n <= kMaxSignaturesPerStore; ++n) {
    std::string url = fmt::format("{}/sha256={}/signature-{}", store, hex, n);
    auto got = co_await fetch(url);
    if (got.absent) break;
    if (got.error) {
      // One signature too large is skipped; anything else ends this store.
      if (got.error->kind == ErrorKind::TooLarge) {
        out.problems.push_back(got.error->message);
        continue;
      }
      out.problems.push_back(fmt::format("signature store {}: {}", store, got.error->message));
      break;
    }
    out.found.push_back(SignatureCandidate{url, std::move(got.body)});
  }
  co_return out;
}

Task<FetchedSignatures> SignatureStores::release_signatures(const std::string& digest) {
  struct Join {
    std::mutex mutex;
    std::vector<FetchedSignatures> by_store;
    std::size_t left = 0;
    AsyncValue<bool> done;
  };
  auto join = std::make_shared<Join>();
  join->by_store.resize(stores_.size());
  join->left = stores_.size();
  std::string hex = digest.substr(digest.find(':') + 1);
  if (stores_.empty()) co_return FetchedSignatures{};
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    auto finished = [join, i](FetchedSignatures r) {
      bool last = false;
      {
        std::lock_guard lock(join->mutex);
        join->by_store[i] = std::move(r);
        last = --join->left == 0;
      }
      if (last) join->done.set(true);
    };
    auto failed = [finished, store = stores_[i]](std::exception_ptr) {
      finished(FetchedSignatures{{}, {fmt::format("signature store {}: internal error", store)}});
    };
    spawn(read_store(stores_[i], hex), finished, failed);
  }
  co_await join->done.wait();
  // In the stores' order, whatever order they answered in.
  FetchedSignatures all;
  for (auto& s : join->by_store) {
    for (auto& f : s.found) all.found.push_back(std::move(f));
    for (auto& p : s.problems) all.problems.push_back(std::move(p));
  }
  co_return all;
}

}  // namespace fastsync
