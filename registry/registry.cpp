#include "registry/registry.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "registry/digest.h"
#include "registry/error_body.h"
#include "registry/reference.h"
#include "registry/url.h"

namespace fastsync {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::NotFound: return "not found";
    case ErrorKind::AuthDenied: return "authentication denied";
    case ErrorKind::NoCredentials: return "no credentials";
    case ErrorKind::Forbidden: return "forbidden";
    case ErrorKind::DigestMismatch: return "digest mismatch";
    case ErrorKind::Tls: return "TLS";
    case ErrorKind::Network: return "network";
    case ErrorKind::Stalled: return "stalled";
    case ErrorKind::RateLimited: return "rate limited";
    case ErrorKind::Server: return "server error";
    case ErrorKind::Protocol: return "protocol";
    case ErrorKind::Invalid: return "invalid";
    case ErrorKind::Cancelled: return "cancelled";
  }
  return "error";
}

const char* to_string(CallKind kind) {
  switch (kind) {
    case CallKind::Ping: return "ping";
    case CallKind::Token: return "token";
    case CallKind::ManifestHead: return "manifest_head";
    case CallKind::ManifestGet: return "manifest_get";
    case CallKind::ManifestPut: return "manifest_put";
    case CallKind::BlobHead: return "blob_head";
    case CallKind::BlobGet: return "blob_get";
    case CallKind::UploadStart: return "upload_start";
    case CallKind::BlobMount: return "blob_mount";
    case CallKind::BlobPut: return "blob_put";
    case CallKind::UploadCancel: return "upload_cancel";
    case CallKind::Other:
    case CallKind::Count_: break;
  }
  return "other";
}

namespace {

using Clock = std::chrono::steady_clock;

std::string strip_parameters(std::string_view content_type) {
  std::string_view mt = content_type.substr(0, content_type.find(';'));
  while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
  return std::string(mt);
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool retryable_status(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool retryable_transport(TransportError e) {
  return e == TransportError::Connect || e == TransportError::Network || e == TransportError::Stalled;
}

// A failure another attempt may fix: a dropped or stalled connection, 408/429/5xx.
bool is_transient(const Response& resp) {
  return resp.transport_ok() ? retryable_status(resp.status) : retryable_transport(resp.transport);
}

// A streamed upload cannot be sent twice; a streamed download can be retried
// only if nothing reached its sink (the response was not a 2xx).
bool can_replay(const Call& call, const Response& resp) {
  if (call.source) return false;
  if (call.sink) return resp.status < 200 || resp.status >= 300;
  return true;
}

const Challenge* pick_challenge(const std::vector<Challenge>& challenges) {
  for (const auto& c : challenges) {
    if (c.scheme == "bearer") return &c;
  }
  for (const auto& c : challenges) {
    if (c.scheme == "basic") return &c;
  }
  return nullptr;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::hours(24);
    return std::chrono::seconds(std::stol(value));
  }
  time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  auto delta = std::chrono::system_clock::from_time_t(when) - std::chrono::system_clock::now();
  return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(delta));
}

Registry::Registry(HttpEngine& engine, std::string host, const AuthFile& auth, RegistryOptions options,
                   std::string forced_scheme)
    : engine_(engine), host_(std::move(host)), auth_(auth), options_(std::move(options)),
      forced_scheme_(std::move(forced_scheme)) {}

std::chrono::milliseconds Registry::backoff_delay(int attempt) const {
  thread_local std::mt19937 rng{std::random_device{}()};
  double base = static_cast<double>(options_.retry_base_delay.count()) * std::pow(2.0, std::max(0, attempt - 1));
  base = std::min(base, static_cast<double>(options_.retry_max_delay.count()));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);  // spread clients that failed together
  return std::chrono::milliseconds(static_cast<long>(base * jitter(rng)));
}

std::string Registry::context(const Call& call) const {
  std::string where = call.repository.empty() ? host_ : host_ + "/" + call.repository;
  return call.what.empty() ? where : fmt::format("{} at {}", call.what, where);
}

std::string Registry::scope_for(const Call& call) const {
  if (call.repository.empty()) return {};
  std::string scope = fmt::format("repository:{}:{}", call.repository, call.push ? "pull,push" : "pull");
  if (!call.mount_from.empty()) scope += fmt::format(" repository:{}:pull", call.mount_from);
  return scope;
}

Error Registry::status_error(const Response& resp, const Call& call) const {
  std::string detail = describe_error_body(resp.body);
  std::string base = fmt::format("{}: HTTP {}{}", context(call), resp.status, detail.empty() ? "" : " " + detail);
  bool have_credentials = auth_.lookup(host_, call.repository).has_value();
  switch (resp.status) {
    case 404:
      return Error::make(ErrorKind::NotFound, base, resp.status);
    case 401:
      if (resp.header("www-authenticate").value_or("").find("insufficient_scope") != std::string::npos) {
        return Error::make(ErrorKind::Forbidden,
                           base + fmt::format(" (the credentials for {} do not allow {} {})", host_,
                                              call.push ? "pushing to" : "pulling from", call.repository),
                           resp.status);
      }
      if (!have_credentials) {
        return Error::make(ErrorKind::NoCredentials,
                           base + fmt::format(" (the pull secret has no credentials for {})", host_), resp.status);
      }
      return Error::make(ErrorKind::AuthDenied, base + fmt::format(" (credentials for {} were refused)", host_),
                         resp.status);
    case 403:
      return Error::make(ErrorKind::Forbidden, base, resp.status);
    case 405:
      if (call.push) {
        return Error::make(ErrorKind::Forbidden, base + fmt::format(" ({} refuses writes: is it read-only?)", host_),
                           resp.status);
      }
      return Error::make(ErrorKind::Protocol, base, resp.status);
    case 429:
      return Error::make(ErrorKind::RateLimited, base, resp.status);
    default:
      return Error::make(resp.status >= 500 ? ErrorKind::Server : ErrorKind::Protocol, base, resp.status);
  }
}

Error Registry::transport_error(const Response& resp, const Call& call) const {
  const std::string& why = resp.transport_message;
  switch (resp.transport) {
    case TransportError::Connect:
      return Error::make(ErrorKind::Network, fmt::format("{}: cannot connect: {}", context(call), why));
    case TransportError::TlsVerify:
      return Error::make(ErrorKind::Tls,
                         fmt::format("TLS certificate of {} is not trusted ({}); pass --ca-file with the CA that "
                                     "signed it, or --insecure to skip verification",
                                     host_, why));
    case TransportError::TlsHandshake:
      return Error::make(ErrorKind::Tls,
                         fmt::format("TLS handshake with {} failed ({}); if it serves plain HTTP, pass --insecure",
                                     host_, why));
    case TransportError::Network:
      return Error::make(ErrorKind::Network, fmt::format("{}: connection failed: {}", context(call), why));
    case TransportError::Stalled:
      return Error::make(ErrorKind::Stalled, fmt::format("{}: {}", context(call), why));
    case TransportError::Cancelled:
      return Error::make(ErrorKind::Cancelled, fmt::format("{}: cancelled", context(call)));
    default:
      return Error::make(ErrorKind::Protocol, fmt::format("{}: {}", context(call), why));
  }
}

Request Registry::base_request(std::string url) const {
  Request req;
  req.url = std::move(url);
  req.tls = options_.tls;
  req.tls.verify = options_.tls.verify && !options_.insecure;
  req.http2 = options_.http2;
  req.stall_limit = options_.stall_limit;
  return req;
}

Task<Response> Registry::perform_retrying(Request request, CallKind kind) {
  for (int attempt = 0;; ++attempt) {
    if (engine_.cancelled()) {
      Response cancelled;
      cancelled.transport = TransportError::Cancelled;
      cancelled.transport_message = "cancelled";
      co_return cancelled;
    }
    counters_.by_kind[static_cast<int>(kind)]++;
    Response resp = co_await engine_.perform(request);
    if (!is_transient(resp) || attempt >= options_.retries) co_return resp;
    counters_.retries++;
    auto delay = backoff_delay(attempt + 1);
    spdlog::debug("{}: {} failed ({}), retry {}/{} in {} ms", host_, to_string(kind),
                  resp.transport_ok() ? "HTTP " + std::to_string(resp.status) : resp.transport_message, attempt + 1,
                  options_.retries, delay.count());
    co_await engine_.sleep_for(delay);
  }
}

Task<Status> Registry::ping() {
  std::shared_ptr<AsyncValue<Result<PingState>>> slot;
  bool mine = false;
  {
    std::lock_guard lock(mutex_);
    if (!ping_) {
      ping_ = std::make_shared<AsyncValue<Result<PingState>>>();
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
  auto state = co_await slot->wait();
  if (!state) co_return state.error();
  co_return Status{};
}

Task<Result<Registry::PingState>> Registry::do_ping() {
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
  Call call;
  call.kind = CallKind::Ping;
  call.what = "GET /v2/";
  std::optional<Error> first_error;
  for (const auto& scheme : schemes) {
    if (scheme == "http" && !plain_http_allowed) break;
    std::string base = fmt::format("{}://{}", scheme, host_);
    Request req = base_request(base + "/v2/");
    req.max_memory_body = 64 * 1024;
    Response resp = co_await perform_retrying(req, CallKind::Ping);
    if (!resp.transport_ok()) {
      Error e = transport_error(resp, call);
      // An HTTPS hello answered in plain HTTP fails the handshake: try http next.
      if (resp.transport == TransportError::TlsHandshake && scheme == "https") {
        first_error = e;
        continue;
      }
      if (first_error && scheme == "http") {
        co_return *first_error;
      }
      if (resp.transport == TransportError::Connect) {
        e.message = fmt::format("registry {} is unreachable: {}", host_, resp.transport_message);
      }
      co_return e;
    }
    if (resp.status == 200 || resp.status == 401) {
      PingState state;
      state.base_url = base;
      if (auto header = resp.header("www-authenticate")) state.challenges = parse_www_authenticate(*header);
      spdlog::debug("{}: speaks {}, auth {}", host_, scheme,
                    pick_challenge(state.challenges) ? pick_challenge(state.challenges)->scheme : "none");
      co_return state;
    }
    co_return Error::make(resp.status >= 500 ? ErrorKind::Server : ErrorKind::Protocol,
                          fmt::format("{} does not answer like a registry: GET {}/v2/ gave HTTP {}", host_, base,
                                      resp.status),
                          resp.status);
  }
  co_return first_error.value_or(Error::make(ErrorKind::Network, fmt::format("cannot reach {}", host_)));
}

Task<Result<std::optional<std::string>>> Registry::authorization(const Call& call,
                                                                 const std::shared_ptr<TokenSlot>& stale,
                                                                 std::shared_ptr<TokenSlot>& used) {
  std::vector<Challenge> challenges;
  {
    std::lock_guard lock(mutex_);
    if (ping_) {
      if (auto state = ping_->try_get(); state && state->ok()) challenges = (*state)->challenges;
    }
  }
  const Challenge* challenge = pick_challenge(challenges);
  if (!challenge) co_return std::optional<std::string>();
  auto credentials = auth_.lookup(host_, call.repository);
  if (challenge->scheme == "basic") {
    if (!credentials) co_return std::optional<std::string>();
    co_return std::optional<std::string>(
        "Authorization: Basic " + base64_encode(credentials->username + ":" + credentials->password));
  }
  std::string scope = scope_for(call);
  std::shared_ptr<TokenSlot> slot;
  bool mine = false;
  {
    std::lock_guard lock(mutex_);
    auto& entry = tokens_[scope];
    bool usable = entry && entry != stale;
    if (usable) {
      if (auto tok = entry->value.try_get(); tok && tok->ok() && (*tok)->refresh_after <= Clock::now()) usable = false;
    }
    if (!usable) {
      entry = std::make_shared<TokenSlot>();
      mine = true;
    }
    slot = entry;
  }
  if (mine) {
    std::string query;
    if (!scope.empty()) {
      size_t start = 0;
      while (start <= scope.size()) {
        auto space = scope.find(' ', start);
        query += "&scope=" + url_encode(scope.substr(start, space - start));
        if (space == std::string::npos) break;
        start = space + 1;
      }
    }
    auto token = co_await fetch_token(*challenge, query, call.repository);
    if (!token) {
      std::lock_guard lock(mutex_);
      auto it = tokens_.find(scope);
      if (it != tokens_.end() && it->second == slot) tokens_.erase(it);
    }
    slot->value.set(std::move(token));
  }
  auto token = co_await slot->value.wait();
  if (!token) co_return token.error();
  used = slot;
  co_return std::optional<std::string>("Authorization: Bearer " + token->value);
}

Task<Result<Registry::Token>> Registry::fetch_token(Challenge challenge, std::string scope_query,
                                                    std::string repository) {
  std::string realm = challenge.param("realm");
  if (realm.empty()) {
    co_return Error::make(ErrorKind::Protocol, fmt::format("{} asks for a Bearer token but names no realm", host_));
  }
  std::string realm_scheme = url_scheme(realm);
  if (realm_scheme != "https" && realm_scheme != "http") {
    co_return Error::make(ErrorKind::Protocol, fmt::format("{} names an unusable token realm \"{}\"", host_, realm));
  }
  std::string realm_origin = url_origin(realm);
  if (realm_scheme == "http" && !options_.insecure && !is_loopback_host(realm_origin)) {
    co_return Error::make(ErrorKind::Tls,
                          fmt::format("{} wants credentials sent to a plain-HTTP token server ({}); pass --insecure "
                                      "to allow it",
                                      host_, url_for_log(realm)));
  }
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&") +
                    "service=" + url_encode(challenge.param("service")) + scope_query;
  auto credentials = auth_.lookup(host_, repository);
  Call call;
  call.kind = CallKind::Token;
  call.repository = repository;
  call.what = fmt::format("token request to {}", realm_origin);
  Request req = base_request(url);
  req.max_memory_body = 1 << 20;
  if (credentials) {
    req.headers.push_back("Authorization: Basic " + base64_encode(credentials->username + ":" + credentials->password));
  }
  Response resp = co_await perform_retrying(req, CallKind::Token);
  if (!resp.transport_ok()) co_return transport_error(resp, call);
  if (resp.status == 401 || resp.status == 403) {
    if (!credentials) {
      co_return Error::make(ErrorKind::NoCredentials,
                            fmt::format("{} requires credentials and the pull secret has none for it", host_),
                            resp.status);
    }
    co_return Error::make(ErrorKind::AuthDenied,
                          fmt::format("{} refused the pull secret's credentials (token server {} answered HTTP {}{})",
                                      host_, realm_origin, resp.status,
                                      describe_error_body(resp.body).empty() ? "" : ": " + describe_error_body(resp.body)),
                          resp.status);
  }
  if (resp.status != 200) co_return status_error(resp, call);
  rapidjson::Document doc;
  doc.Parse(resp.body.data(), resp.body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    co_return Error::make(ErrorKind::Protocol, fmt::format("token server {} sent a body that is not JSON", realm_origin));
  }
  Token token;
  for (const char* key : {"token", "access_token"}) {
    if (doc.HasMember(key) && doc[key].IsString() && doc[key].GetStringLength() > 0) {
      token.value = doc[key].GetString();
      break;
    }
  }
  if (token.value.empty()) {
    co_return Error::make(ErrorKind::Protocol, fmt::format("token server {} sent no token", realm_origin));
  }
  long expires_in = 60;  // the distribution spec's default
  if (doc.HasMember("expires_in") && doc["expires_in"].IsInt64() && doc["expires_in"].GetInt64() > 0) {
    expires_in = static_cast<long>(doc["expires_in"].GetInt64());
  }
  // Refresh before expiry so a long transfer's next request never carries a dead token.
  long margin = std::min<long>(30, expires_in / 5);
  token.refresh_after = Clock::now() + std::chrono::seconds(expires_in - margin);
  co_return token;
}

Task<Status> Registry::check_access(const std::string& repository, bool push) {
  auto ready = co_await ping();
  if (!ready) co_return ready.error();
  Call call;
  call.kind = CallKind::Token;
  call.repository = repository;
  call.push = push;
  std::shared_ptr<TokenSlot> used;
  auto auth = co_await authorization(call, nullptr, used);
  if (!auth) co_return auth.error();
  co_return Status{};
}

Task<Result<Response>> Registry::send(Call call) {
  auto ready = co_await ping();
  if (!ready) co_return ready.error();
  std::string base_url;
  {
    std::lock_guard lock(mutex_);
    if (ping_) {
      if (auto state = ping_->try_get(); state && state->ok()) base_url = (*state)->base_url;
    }
  }
  if (base_url.empty()) co_return Error::make(ErrorKind::Network, fmt::format("{} is not reachable", host_));
  const std::string url = call.target.rfind('/', 0) == 0 ? base_url + call.target : call.target;
  const std::string origin = url_origin(base_url);
  const std::string scheme = url_scheme(base_url);
  counters_.by_kind[static_cast<int>(call.kind)]++;

  auto make_request = [&](const std::string& target, const std::optional<std::string>& auth_header) {
    Request req = base_request(target);
    req.method = call.method;
    req.headers = call.headers;
    // Credentials only ever go to this registry's own origin, never to a CDN or
    // an upload host it points us to.
    if (auth_header && url_origin(target) == origin && url_scheme(target) == scheme) {
      req.headers.push_back(*auth_header);
    }
    req.body = call.body;
    req.body_sink = call.sink;
    req.body_source = call.source;
    req.max_memory_body = call.max_memory_body;
    req.on_started = call.on_started;
    return req;
  };

  std::shared_ptr<TokenSlot> stale;
  std::shared_ptr<TokenSlot> used;
  bool refreshed = false;
  int attempt = 0;
  while (true) {
    if (engine_.cancelled()) co_return Error::make(ErrorKind::Cancelled, fmt::format("{}: cancelled", context(call)));
    auto auth = co_await authorization(call, stale, used);
    if (!auth) co_return auth.error();

    Response resp = co_await engine_.perform(make_request(url, *auth));
    for (int hops = 0; call.follow_redirects && resp.transport_ok() && is_redirect(resp.status) && hops < 5; ++hops) {
      auto location = resp.header("location");
      if (!location) break;
      auto next = resolve_url(resp.url, *location);
      if (!next) co_return next.error();
      spdlog::debug("{}: redirected to {}", context(call), url_for_log(*next));
      resp = co_await engine_.perform(make_request(*next, *auth));
    }

    if (resp.transport_ok() && resp.status == 401 && !refreshed) {
      // The token may have expired or lack a scope: fetch a fresh one, once.
      refreshed = true;
      stale = used;
      if (auth->has_value()) counters_.token_refreshes++;
      if (!auth->has_value()) {
        // /v2/ let us in anonymously but this repository wants credentials:
        // learn its challenge now.
        auto header = resp.header("www-authenticate");
        if (!header) co_return status_error(resp, call);
        std::lock_guard lock(mutex_);
        PingState learned{base_url, parse_www_authenticate(*header)};
        auto slot = std::make_shared<AsyncValue<Result<PingState>>>();
        slot->set(Result<PingState>(std::move(learned)));
        ping_ = slot;
      }
      continue;
    }

    std::optional<std::chrono::milliseconds> delay;
    if (attempt < options_.retries && can_replay(call, resp) && is_transient(resp)) {
      delay = backoff_delay(attempt + 1);
      if (auto after = resp.header("retry-after")) {
        if (auto wait = parse_retry_after(*after)) delay = std::min(*wait, options_.max_retry_after);
      }
    }
    if (delay) {
      ++attempt;
      counters_.retries++;
      spdlog::debug("{}: {} — retry {}/{} in {} ms", context(call),
                    resp.transport_ok() ? fmt::format("HTTP {}", resp.status) : resp.transport_message, attempt,
                    options_.retries, delay->count());
      co_await engine_.sleep_for(*delay);
      continue;
    }
    if (!resp.transport_ok()) co_return transport_error(resp, call);
    if (resp.status >= 200 && resp.status < 300) co_return resp;
    co_return status_error(resp, call);
  }
}

Task<Result<ManifestHead>> Registry::head_manifest(const std::string& repository, const std::string& reference) {
  Call call;
  call.kind = CallKind::ManifestHead;
  call.method = "HEAD";
  call.target = fmt::format("/v2/{}/manifests/{}", repository, reference);
  call.headers.push_back(fmt::format("Accept: {}", media_type::kAcceptAll));
  call.repository = repository;
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
  call.headers.push_back(fmt::format("Accept: {}", media_type::kAcceptAll));
  call.repository = repository;
  call.what = fmt::format("GET manifest {}", reference);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  ManifestData m;
  m.bytes = std::move(resp->body);
  m.digest = sha256_digest(m.bytes);
  m.media_type = strip_parameters(resp->header("content-type").value_or(""));
  if (is_sha256_digest(reference) && m.digest != reference) {
    co_return Error::make(ErrorKind::DigestMismatch,
                          fmt::format("manifest {}/{}@{}: content hashes to {}", host_, repository, reference, m.digest));
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

Task<Status> Registry::put_manifest(const std::string& repository, const std::string& reference,
                                    const ManifestData& manifest) {
  Call call;
  call.kind = CallKind::ManifestPut;
  call.method = "PUT";
  call.target = fmt::format("/v2/{}/manifests/{}", repository, reference);
  call.headers.push_back("Content-Type: " + manifest.media_type);
  call.body = manifest.bytes;
  call.repository = repository;
  call.push = true;
  call.what = fmt::format("PUT manifest {}", reference);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  auto stored = resp->header("docker-content-digest");
  if (stored && is_sha256_digest(*stored) && *stored != manifest.digest) {
    co_return Error::make(ErrorKind::DigestMismatch,
                          fmt::format("{}/{}:{}: registry stored the manifest as {}, expected {}", host_, repository,
                                      reference, *stored, manifest.digest));
  }
  co_return Status{};
}

Task<Result<std::uint64_t>> Registry::head_blob(const std::string& repository, const std::string& digest) {
  Call call;
  call.kind = CallKind::BlobHead;
  call.method = "HEAD";
  call.target = fmt::format("/v2/{}/blobs/{}", repository, digest);
  call.repository = repository;
  call.follow_redirects = true;
  call.what = fmt::format("HEAD blob {}", digest);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  std::uint64_t size = 0;
  if (auto len = resp->header("content-length")) size = std::strtoull(len->c_str(), nullptr, 10);
  co_return size;
}

Task<Result<std::string>> Registry::get_blob(const std::string& repository, const std::string& digest,
                                             std::size_t max_size) {
  Call call;
  call.kind = CallKind::BlobGet;
  call.target = fmt::format("/v2/{}/blobs/{}", repository, digest);
  call.repository = repository;
  call.follow_redirects = true;
  call.max_memory_body = max_size;
  call.what = fmt::format("GET blob {}", digest);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  std::string actual = sha256_digest(resp->body);
  if (actual != digest) {
    co_return Error::make(ErrorKind::DigestMismatch,
                          fmt::format("blob {}/{}@{}: content hashes to {}", host_, repository, digest, actual));
  }
  co_return std::move(resp->body);
}

Task<Result<std::string>> Registry::start_upload(const std::string& repository) {
  Call call;
  call.kind = CallKind::UploadStart;
  call.method = "POST";
  call.target = fmt::format("/v2/{}/blobs/uploads/", repository);
  call.repository = repository;
  call.push = true;
  call.what = "POST blob upload";
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  auto location = resp->header("location");
  if (!location || location->empty()) {
    co_return Error::make(ErrorKind::Protocol, fmt::format("{}/{}: upload started without a Location", host_, repository));
  }
  co_return resolve_url(resp->url, *location);
}

Task<Result<MountResult>> Registry::mount_blob(const std::string& repository, const std::string& digest,
                                               const std::string& from_repository) {
  Call call;
  call.kind = CallKind::BlobMount;
  call.method = "POST";
  call.target = fmt::format("/v2/{}/blobs/uploads/?mount={}&from={}", repository, url_encode(digest),
                            url_encode(from_repository));
  call.repository = repository;
  call.push = true;
  call.mount_from = from_repository;
  call.what = fmt::format("mount blob {} from {}", digest, from_repository);
  auto resp = co_await send(std::move(call));
  if (!resp) {
    // Some registries answer an impossible mount with 401/403/404 rather than 202: upload instead.
    auto kind = resp.error().kind;
    if (kind == ErrorKind::AuthDenied || kind == ErrorKind::Forbidden || kind == ErrorKind::NotFound ||
        kind == ErrorKind::NoCredentials) {
      co_return MountResult{};
    }
    co_return resp.error();
  }
  MountResult result;
  result.mounted = resp->status == 201;
  if (!result.mounted) {
    if (auto location = resp->header("location"); location && !location->empty()) {
      auto resolved = resolve_url(resp->url, *location);
      if (resolved) result.upload_location = *resolved;
    }
  }
  co_return result;
}

Task<Status> Registry::put_upload(Call call, const std::string& location, const std::string& digest) {
  auto url = add_query_param(location, "digest", digest);
  if (!url) co_return url.error();
  call.kind = CallKind::BlobPut;
  call.method = "PUT";
  call.target = *url;
  call.headers.push_back("Content-Type: application/octet-stream");
  call.push = true;
  call.what = fmt::format("PUT blob {}", digest);
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  co_return Status{};
}

Task<Status> Registry::finish_upload(const std::string& repository, const std::string& location,
                                     const std::string& digest, std::string body) {
  Call call;
  call.repository = repository;
  call.body = std::move(body);
  co_return co_await put_upload(std::move(call), location, digest);
}

Task<Status> Registry::finish_upload_streamed(const std::string& repository, const std::string& location,
                                              const std::string& digest, std::shared_ptr<BodySource> body,
                                              std::function<void(TransferId)> on_started) {
  Call call;
  call.repository = repository;
  call.source = std::move(body);
  call.on_started = std::move(on_started);
  co_return co_await put_upload(std::move(call), location, digest);
}

Task<void> Registry::cancel_upload(const std::string& repository, const std::string& location) {
  if (engine_.cancelled()) co_return;
  Call call;
  call.kind = CallKind::UploadCancel;
  call.method = "DELETE";
  call.target = location;
  call.repository = repository;
  call.push = true;
  call.what = "DELETE blob upload";
  auto ignored = co_await send(std::move(call));
  (void)ignored;
}

Task<Status> Registry::upload_blob(const std::string& repository, const std::string& digest, std::string bytes) {
  auto present = co_await head_blob(repository, digest);
  if (present) co_return Status{};
  if (present.error().kind != ErrorKind::NotFound) co_return present.error();
  auto location = co_await start_upload(repository);
  if (!location) co_return location.error();
  co_return co_await finish_upload(repository, *location, digest, std::move(bytes));
}

Task<Result<std::vector<std::string>>> Registry::list_tags(const std::string& repository) {
  Call call;
  call.kind = CallKind::Other;
  call.target = fmt::format("/v2/{}/tags/list?n=10000", repository);
  call.repository = repository;
  call.what = "list tags";
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  rapidjson::Document doc;
  doc.Parse(resp->body.data(), resp->body.size());
  std::vector<std::string> tags;
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("tags") && doc["tags"].IsArray()) {
    for (const auto& t : doc["tags"].GetArray()) {
      if (t.IsString()) tags.emplace_back(t.GetString());
    }
  }
  co_return tags;
}

}  // namespace fastsync
