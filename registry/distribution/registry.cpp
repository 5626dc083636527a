#include "registry/distribution/registry.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "registry/core/digest.h"
#include "registry/core/log.h"
#include "registry/core/reference.h"
#include "registry/net/url.h"

namespace fastsync {

const char* to_string(CallKind kind) {
  switch (kind) {
    case CallKind::Ping:
      return "ping";
    case CallKind::Token:
      return "token";
    case CallKind::ManifestHead:
      return "manifest_head";
    case CallKind::ManifestGet:
      return "manifest_get";
    case CallKind::ManifestPut:
      return "manifest_put";
    case CallKind::BlobHead:
      return "blob_head";
    case CallKind::TagList:
      return "tag_list";
    case CallKind::BlobGet:
      return "blob_get";
    case CallKind::UploadStart:
      return "upload_start";
    case CallKind::BlobMount:
      return "blob_mount";
    case CallKind::BlobPatch:
      return "blob_patch";
    case CallKind::BlobPut:
      return "blob_put";
    case CallKind::UploadCancel:
      return "upload_cancel";
    case CallKind::Other:
    case CallKind::Count_:
      break;
  }
  return "other";
}

namespace {

using Clock = std::chrono::steady_clock;

// Credentials refused twice in a row (a Basic password, or a token that was
// fresh) are refused, not expired.
constexpr int kMaxRefusals = 2;
// Tokens old enough to have expired may be refused more often (a registry whose
// tokens die younger than they claim), but not without end.
constexpr int kMaxExpiredRefusals = 10;
// How often a request may find its token expired while queued before it is sent
// regardless (a queue longer than a token's life would otherwise never drain).
constexpr int kMaxExpiredWhileQueued = 8;

std::string strip_parameters(std::string_view content_type) {
  std::string_view mt = content_type.substr(0, content_type.find(';'));
  while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
  return std::string(mt);
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Whether send() may repeat the request itself. A streamed body is read once:
// only a request that never started may go again. A streamed download can go
// again only if nothing reached its sink (not a 2xx; resuming mid-body is the
// download's own loop). Upload PUT/PATCH go to a session whose state a failed
// attempt may have changed: the upload starts over with a new session instead.
bool can_replay(const Call& call, const Response& resp, bool started) {
  if (call.request.body_source && started) return false;
  if ((call.kind == CallKind::BlobPut || call.kind == CallKind::BlobPatch) && started) return false;
  if (call.request.body_sink) return resp.status < 200 || resp.status >= 300;
  return true;
}

std::string short_reason(const Response& resp) {
  return resp.transport_ok() ? fmt::format("HTTP {}", resp.status) : resp.transport_message;
}

}  // namespace

Registry::Registry(HttpEngine& engine, std::string host, const AuthFile& auth, RegistryOptions options,
                   TrustStore& trust, ActivityBoard& board, std::string forced_scheme)
    : engine_(engine),
      host_(std::move(host)),
      options_(std::move(options)),
      trust_(trust),
      board_(board),
      forced_scheme_(std::move(forced_scheme)),
      auth_(host_, auth, options_.insecure || is_loopback_host(host_),
            Authenticator::Transport{[this](const std::string& url) { return request_for(url); },
                                     [this](Request r) { return perform_retrying(std::move(r), CallKind::Token); }}),
      chunks_(options_.upload_chunk_size) {}

Result<Request> Registry::request_for(const std::string& url) {
  // TLS of the host the URL names: a token server or CDN has its own certs.d entry.
  auto tls = trust_.for_host(url_host_port(url));
  if (!tls) return tls.error();
  Request req;
  req.url = url;
  req.tls = *tls;
  req.http2 = options_.http2;
  req.stall_limit = options_.stall_limit;
  return req;
}

CallContext Registry::context(const Call& call) const {
  return CallContext{host_, call.scope.repository, call.what, call.scope.push,
                     auth_.has_credentials(call.scope.repository)};
}

Task<Response> Registry::perform_retrying(Request request, CallKind kind) {
  CallContext ctx{host_, {}, to_string(kind), false, false};
  for (int retries_used = 0;; ++retries_used) {
    if (engine_.cancelled()) {
      Response cancelled;
      cancelled.transport = TransportError::Cancelled;
      cancelled.transport_message = "cancelled";
      co_return cancelled;
    }
    counters_.by_kind[static_cast<int>(kind)]++;
    Response resp = co_await engine_.perform(request);
    if (resp.ok()) co_return resp;
    auto delay = options_.retry.next_delay(error_from_response(resp, ctx), retries_used);
    if (!delay) co_return resp;
    counters_.retries++;
    logging::debug("{}: {} failed ({}), retry {}/{} in {} ms", host_, to_string(kind), short_reason(resp),
                   retries_used + 1, options_.retry.retries, delay->count());
    co_await engine_.sleep_for(*delay);
  }
}

std::string Registry::base_url() {
  std::lock_guard lock(mutex_);
  if (ping_) {
    if (auto state = ping_->try_get(); state && state->ok()) return **state;
  }
  return {};
}

Task<Status> Registry::ping() {
  std::shared_ptr<AsyncValue<Result<std::string>>> slot;
  bool mine = false;
  {
    std::lock_guard lock(mutex_);
    if (!ping_) {
      ping_ = std::make_shared<AsyncValue<Result<std::string>>>();
      mine = true;
    }
    slot = ping_;
  }
  if (mine) {
    auto result = co_await do_ping();
    if (!result) {
      // Do not remember a failure: the registry may be back for the next caller.
      std::lock_guard lock(mutex_);
      if (ping_ == slot) ping_.reset();
    }
    slot->set(std::move(result));
  }
  // Liveness: the ping's own requests end it (stall limit, cancellation).
  auto state = co_await slot->wait();
  if (!state) co_return state.error();
  co_return Status{};
}

Task<Result<std::string>> Registry::do_ping() {
  bool plain_http_allowed = options_.insecure || is_loopback_host(host_);
  std::vector<std::string> schemes;
  if (!forced_scheme_.empty()) {
    schemes.push_back(forced_scheme_);
  } else {
    schemes = {"https", "http"};
  }
  if (forced_scheme_ == "http" && !plain_http_allowed) {
    co_return Error::make(ErrorKind::Invalid,
                          fmt::format("plain HTTP to {} is refused: pass --insecure to allow it", host_));
  }
  CallContext ctx{host_, {}, "GET /v2/", false, false};
  std::optional<Error> first_error;
  for (const auto& scheme : schemes) {
    if (scheme == "http" && !plain_http_allowed) break;
    std::string base = fmt::format("{}://{}", scheme, host_);
    auto request = request_for(base + "/v2/");
    if (!request) co_return request.error();
    request->max_memory_body = 64 * 1024;
    Response resp = co_await perform_retrying(std::move(*request), CallKind::Ping);
    if (!resp.transport_ok()) {
      Error e = error_from_response(resp, ctx);
      // An HTTPS hello answered in plain HTTP fails the handshake: try http next.
      if (resp.transport == TransportError::TlsHandshake && scheme == "https") {
        first_error = e;
        continue;
      }
      if (first_error && scheme == "http") co_return *first_error;
      if (resp.transport == TransportError::Connect) {
        e.message = fmt::format("registry {} is unreachable: {}", host_, resp.transport_message);
      }
      co_return e;
    }
    if (resp.status == 200 || resp.status == 401) {
      std::vector<Challenge> challenges;
      if (auto header = resp.header("www-authenticate")) challenges = parse_www_authenticate(*header);
      logging::debug("{}: speaks {}, auth {}", host_, scheme,
                     challenges.empty() ? std::string("none") : challenges.front().scheme);
      auth_.set_challenges(std::move(challenges));
      co_return base;
    }
    co_return Error::make(
        resp.status >= 500 ? ErrorKind::Server : ErrorKind::Protocol,
        fmt::format("{} does not answer like a registry: GET {}/v2/ gave HTTP {}", host_, base, resp.status),
        resp.status);
  }
  co_return first_error.value_or(Error::make(ErrorKind::Network, fmt::format("cannot reach {}", host_)));
}

Task<Status> Registry::check_access(const std::string& repository, bool push) {
  auto ready = co_await ping();
  if (!ready) co_return ready.error();
  AccessScope scope{repository, push, {}};
  auto grant = co_await auth_.authorize(scope);
  if (!grant) co_return grant.error();
  co_return Status{};
}

Task<Result<Response>> Registry::send(Call call) {
  auto ready = co_await ping();
  if (!ready) co_return ready.error();
  const std::string base = base_url();
  if (base.empty()) co_return Error::make(ErrorKind::Network, fmt::format("{} is not reachable", host_));
  const std::string url = call.target.rfind('/', 0) == 0 ? base + call.target : call.target;
  const std::string origin = url_origin(base);
  const std::string scheme = url_scheme(base);
  const CallContext ctx = context(call);
  counters_.by_kind[static_cast<int>(call.kind)]++;
  auto activity = board_.begin(ctx.where());

  int retries_used = 0;
  int refusals = 0;
  int expired_refusals = 0;
  int expired_while_queued = 0;
  while (true) {
    if (engine_.cancelled()) co_return Error::make(ErrorKind::Cancelled, fmt::format("{}: cancelled", ctx.where()));
    activity.waiting_for_token();
    auto grant = co_await auth_.authorize(call.scope);
    if (!grant) co_return grant.error();

    // Set by the engine thread when the transfer leaves the queue: from then on
    // a streamed body has been (or is being) read.
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto started_at = std::make_shared<std::atomic<Clock::rep>>(0);
    auto make_request = [&](const std::string& target) -> Result<Request> {
      auto base_request = request_for(target);
      if (!base_request) return base_request.error();
      Request req = call.request;
      req.url = target;
      req.tls = std::move(base_request->tls);
      req.http2 = base_request->http2;
      req.stall_limit = base_request->stall_limit;
      // Credentials only ever go to this registry's own origin, never to a CDN or
      // an upload host it points us to.
      if (grant->header && url_origin(target) == origin && url_scheme(target) == scheme) {
        req.headers.push_back(*grant->header);
        if (expired_while_queued < kMaxExpiredWhileQueued) req.send_before = grant->send_before;
        req.queue_first = expired_while_queued > 0;
      }
      req.on_queued = [&activity](TransferId id) { activity.in_request(id); };
      req.on_started = [started, started_at, user = call.request.on_started](TransferId id) {
        if (!started->exchange(true)) started_at->store(Clock::now().time_since_epoch().count());
        if (user) user(id);
      };
      return req;
    };

    auto first = make_request(url);
    if (!first) co_return first.error();
    Response resp = co_await engine_.perform(std::move(*first));
    for (int hops = 0; call.follow_redirects && resp.transport_ok() && is_redirect(resp.status) && hops < 5; ++hops) {
      auto location = resp.header("location");
      if (!location) break;
      auto next = resolve_url(resp.url, *location);
      if (!next) co_return next.error();
      logging::debug("{}: redirected to {}", ctx.where(), url_for_log(*next));
      auto hop = make_request(*next);
      if (!hop) co_return hop.error();
      resp = co_await engine_.perform(std::move(*hop));
    }

    if (resp.transport == TransportError::CredentialExpired) {
      // Never sent: fetch a fresh token and queue it again.
      auth_.refused(*grant);
      ++expired_while_queued;
      continue;
    }
    if (resp.transport_ok() && resp.status == 401) {
      // How old the token was when the request went out: old enough, and the
      // refusal is a token that expired (perhaps sooner than it claimed).
      std::optional<std::chrono::milliseconds> age;
      if (grant->token && started_at->load() != 0) {
        age = std::chrono::duration_cast<std::chrono::milliseconds>(
            Clock::time_point(Clock::duration(started_at->load())) - grant->issued);
      }
      bool plausibly_expired = age && *age >= Authenticator::kPlausibleExpiry;
      logging::debug("{}: HTTP 401{}", ctx.where(),
                     age ? fmt::format(" for a token {} ms old when sent", age->count()) : std::string());
      auth_.refused(*grant, age);
      if (grant->header) counters_.token_refreshes++;
      if (!grant->header) {
        // /v2/ let us in anonymously but this repository wants credentials: learn its challenge.
        auto header = resp.header("www-authenticate");
        if (!header) co_return error_from_response(resp, ctx);
        auth_.set_challenges(parse_www_authenticate(*header));
      }
      if (call.request.body_source && started->load()) {
        // Its body is gone down the wire: the caller redoes the whole upload,
        // which then gets a fresh token.
        co_return Error::make(ErrorKind::AuthExpired,
                              fmt::format("{}: HTTP 401 (the token expired while the body was sent)", ctx.where()),
                              401);
      }
      if (plausibly_expired ? ++expired_refusals <= kMaxExpiredRefusals : ++refusals <= kMaxRefusals) continue;
      co_return error_from_response(resp, ctx);
    }
    if (resp.ok()) co_return resp;

    Error error = error_from_response(resp, ctx);
    if (!can_replay(call, resp, started->load())) co_return error;
    auto delay = options_.retry.next_delay(error, retries_used);
    if (!delay) co_return error;
    ++retries_used;
    counters_.retries++;
    logging::debug("{}: {} — retry {}/{} in {} ms", ctx.where(), short_reason(resp), retries_used,
                   options_.retry.retries, delay->count());
    activity.sleeping(*delay, retries_used, options_.retry.retries, short_reason(resp));
    co_await engine_.sleep_for(*delay);
  }
}

Task<Result<ManifestHead>> Registry::head_manifest(const std::string& repository, const std::string& reference) {
  Call call;
  call.kind = CallKind::ManifestHead;
  call.request.method = "HEAD";
  call.target = fmt::format("/v2/{}/manifests/{}", repository, reference);
  call.request.headers.push_back(fmt::format("Accept: {}", media_type::kAcceptAll));
  call.scope.repository = repository;
  call.what = fmt::format("HEAD manifest {}", reference);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  ManifestHead head;
  head.digest = resp->header("docker-content-digest").value_or("");
  head.media_type = strip_parameters(resp->header("content-type").value_or(""));
  if (auto len = resp->header("content-length")) head.size = std::strtoull(len->c_str(), nullptr, 10);
  if (!is_sha256_digest(head.digest)) {
    // Not every registry sends the digest on HEAD: compute it from the bytes.
    auto full = co_await get_manifest(repository, reference);
    if (!full) co_return full.error();
    head = ManifestHead{full->digest, full->media_type, full->bytes.size()};
  }
  co_return head;
}

Task<Result<ManifestData>> Registry::get_manifest(const std::string& repository, const std::string& reference) {
  Call call;
  call.kind = CallKind::ManifestGet;
  call.target = fmt::format("/v2/{}/manifests/{}", repository, reference);
  call.request.headers.push_back(fmt::format("Accept: {}", media_type::kAcceptAll));
  call.scope.repository = repository;
  call.what = fmt::format("GET manifest {}", reference);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  ManifestData m;
  m.bytes = std::move(resp->body);
  m.digest = sha256_digest(m.bytes);
  m.media_type = strip_parameters(resp->header("content-type").value_or(""));
  if (is_sha256_digest(reference) && m.digest != reference) {
    co_return Error::make(ErrorKind::DigestMismatch, fmt::format("manifest {}/{}@{}: content hashes to {}", host_,
                                                                 repository, reference, m.digest));
  }
  if (!is_list_media_type(m.media_type) && !is_image_media_type(m.media_type)) {
    // A generic Content-Type (application/json): the body says what it is.
    auto parsed = parse_manifest(m.bytes, m.media_type);
    if (!parsed) {
      co_return Error::make(ErrorKind::Invalid,
                            fmt::format("manifest {}/{}:{}: {}", host_, repository, reference, parsed.error().message));
    }
    m.media_type = parsed->media_type;
  }
  co_return m;
}

namespace {

// distribution rewrites a blob's link file (truncating it first) when a mount
// or an upload of a blob the repository already links completes; a manifest
// PUT reading that link meanwhile is refused with MANIFEST_BLOB_UNKNOWN. Our
// own mounts keep clear of our PUTs (LinkGate), but not another writer's: a
// shard of the Job, or the requests of a run just interrupted that a slow link
// still delivers. The manifest's blobs were all placed before its PUT, so
// the refusal passes once the link is written: the PUT is tried again.
constexpr int kLinkRaceRetries = 2;

bool blob_unknown_to_registry(const Error& error) {
  return error.http_status == 400 && (error.registry_code == "MANIFEST_BLOB_UNKNOWN" ||
                                      error.message.find("MANIFEST_BLOB_UNKNOWN") != std::string::npos);
}

}  // namespace

Task<Status> Registry::put_manifest(const std::string& repository, const std::string& reference,
                                    const ManifestData& manifest) {
  Result<Response> resp = Error::make(ErrorKind::Protocol, "not sent");
  for (int retries_used = 0;; ++retries_used) {
    Call call;
    call.kind = CallKind::ManifestPut;
    call.request.method = "PUT";
    call.target = fmt::format("/v2/{}/manifests/{}", repository, reference);
    call.request.headers.push_back("Content-Type: " + manifest.media_type);
    call.request.set_body(manifest.bytes);
    call.scope = AccessScope{repository, true, {}};
    call.what = fmt::format("PUT manifest {}", reference);
    resp = co_await send(std::move(call));
    if (resp || !blob_unknown_to_registry(resp.error()) || retries_used == kLinkRaceRetries || engine_.cancelled()) {
      break;
    }
    // The policy's first delays (--retry-delay-ms); cancellation fires the timer at once.
    auto delay = retry_policy()
                     .next_delay(Error::make(ErrorKind::Server, "link rewritten"), retries_used)
                     .value_or(std::chrono::milliseconds(100));
    logging::debug("{}/{}:{}: {}; the blob's link may be being rewritten, trying again in {} ms", host_, repository,
                   reference, resp.error().message, delay.count());
    counters_.retries++;
    co_await engine_.sleep_for(delay);
  }
  if (!resp) co_return resp.error();
  auto stored = resp->header("docker-content-digest");
  if (stored && is_sha256_digest(*stored) && *stored != manifest.digest) {
    co_return Error::make(ErrorKind::DigestMismatch,
                          fmt::format("{}/{}:{}: registry stored the manifest as {}, expected {}", host_, repository,
                                      reference, *stored, manifest.digest));
  }
  co_return Status{};
}

Task<Result<std::vector<std::string>>> Registry::referrers(const std::string& repository, const std::string& digest) {
  if (no_referrers_api_.load()) co_return std::vector<std::string>{};
  Call call;
  call.kind = CallKind::ManifestGet;
  call.target = fmt::format("/v2/{}/referrers/{}", repository, digest);
  call.request.headers.push_back(fmt::format("Accept: {}", media_type::kOciIndex));
  call.scope.repository = repository;
  call.what = fmt::format("GET referrers of {}", digest);
  auto resp = co_await send(std::move(call));
  std::vector<std::string> found;
  if (!resp) {
    // Registries without the API answer 404 (distribution 2.x), 405 or 501; a 400
    // is about this request (OCI 1.1: an invalid digest), so the API is asked again.
    long status = resp.error().http_status;
    bool no_api = resp.error().kind == ErrorKind::NotFound || status == 405 || status == 501;
    if (no_api) no_referrers_api_.store(true);
    if (no_api || status == 400) co_return found;
    co_return resp.error();
  }
  auto parsed = parse_manifest(resp->body, std::string(media_type::kOciIndex));
  if (!parsed || !parsed->is_list) {
    co_return Error::make(ErrorKind::Protocol,
                          fmt::format("{}/{}: the referrers of {} are not an OCI index", host_, repository, digest));
  }
  for (const auto& child : parsed->children) found.push_back(child.digest);
  co_return found;
}

Task<Result<bool>> Registry::has_tags(const std::string& repository) {
  auto page = co_await first_tag_page(repository, 1);
  if (!page) {
    if (page.error().kind == ErrorKind::NotFound) co_return false;  // NAME_UNKNOWN: no such repository yet
    co_return page.error();
  }
  co_return !page->tags.empty();
}

Task<Result<Registry::TagPage>> Registry::first_tag_page(const std::string& repository, std::size_t page_size) {
  Call call;
  call.kind = CallKind::TagList;
  call.target = fmt::format("/v2/{}/tags/list?n={}", repository, page_size);
  call.scope.repository = repository;
  call.request.max_memory_body = 4u << 20;
  call.what = "GET tags/list";
  auto resp = co_await send(std::move(call));
  if (!resp) {
    // distribution's answer for a repository that has no tag (its images pushed
    // by digest only, as art-dev's are) or does not exist: either way, no tags.
    if (resp.error().registry_code == "NAME_UNKNOWN") co_return TagPage{};
    co_return resp.error();
  }
  rapidjson::Document doc;
  doc.Parse(resp->body.data(), resp->body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    co_return Error::make(ErrorKind::Protocol, fmt::format("{}/{}: tags/list is not JSON", host_, repository));
  }
  TagPage page;
  if (auto tags = doc.FindMember("tags"); tags != doc.MemberEnd() && tags->value.IsArray()) {
    for (const auto& t : tags->value.GetArray()) {
      if (t.IsString()) page.tags.emplace_back(t.GetString(), t.GetStringLength());
    }
  }
  // A full page may be a registry capping `n` without saying so: never taken as all.
  page.more = resp->header("link").has_value() || page.tags.size() >= page_size;
  co_return page;
}

Task<Result<std::uint64_t>> Registry::head_blob(const std::string& repository, const std::string& digest) {
  Call call;
  call.kind = CallKind::BlobHead;
  call.request.method = "HEAD";
  call.target = fmt::format("/v2/{}/blobs/{}", repository, digest);
  call.scope.repository = repository;
  call.follow_redirects = true;
  call.what = fmt::format("HEAD blob {}", digest);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  std::uint64_t size = 0;
  if (auto len = resp->header("content-length")) size = std::strtoull(len->c_str(), nullptr, 10);
  co_return size;
}

}  // namespace fastsync
