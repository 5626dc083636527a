#include "registry/distribution/auth.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

#include "registry/core/digest.h"
#include "registry/core/reference.h"
#include "registry/distribution/error_body.h"
#include "registry/distribution/errors.h"
#include "registry/net/url.h"

namespace fastsync {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const Challenge* pick_challenge(const std::vector<Challenge>& challenges) {
  for (const auto& c : challenges) {
    if (c.scheme == "bearer") return &c;
  }
  for (const auto& c : challenges) {
    if (c.scheme == "basic") return &c;
  }
  return nullptr;
}

// "registry.example.com" of "registry.example.com:5000", "::1" of "[::1]:5000".
std::string hostname_of(std::string_view host_port) {
  if (!host_port.empty() && host_port.front() == '[') {
    auto end = host_port.find(']');
    return std::string(host_port.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1));
  }
  auto colon = host_port.rfind(':');
  std::string name(colon == std::string_view::npos ? host_port : host_port.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

std::string basic_header(const Credentials& c) {
  return "Authorization: Basic " + base64_encode(c.username + ":" + c.password);
}

}  // namespace

std::string AccessScope::str() const {
  if (repository.empty()) return {};
  std::string scope = fmt::format("repository:{}:{}", repository, push ? "pull,push" : "pull");
  // A mount from the repository itself (asking whether a blob is there) needs nothing more.
  if (!mount_from.empty() && mount_from != repository) scope += fmt::format(" repository:{}:pull", mount_from);
  return scope;
}

milliseconds Authenticator::refresh_margin(milliseconds lifetime) {
  return std::min<milliseconds>(std::chrono::seconds(30), lifetime / 5);
}

milliseconds Authenticator::send_margin(milliseconds lifetime) {
  return std::min<milliseconds>(std::chrono::seconds(5), lifetime / 10);
}

Authenticator::Authenticator(std::string host, const AuthFile& auth, bool plain_http_allowed, Transport transport)
    : host_(std::move(host)), auth_(auth), plain_http_allowed_(plain_http_allowed), transport_(std::move(transport)) {}

void Authenticator::set_challenges(std::vector<Challenge> challenges) {
  std::lock_guard lock(mutex_);
  challenges_ = std::move(challenges);
}

bool Authenticator::has_credentials(const std::string& repository) const {
  return auth_.lookup(host_, repository).has_value();
}

std::chrono::milliseconds Authenticator::effective_lifetime(const Token& token) const {
  return std::min(token.lifetime, learned_lifetime_);
}

void Authenticator::refused(const Grant& grant, std::optional<std::chrono::milliseconds> age) {
  if (!grant.token) return;
  std::lock_guard lock(mutex_);
  if (age && *age >= kPlausibleExpiry && *age < learned_lifetime_) learned_lifetime_ = *age;
  for (auto it = tokens_.begin(); it != tokens_.end(); ++it) {
    if (it->second == grant.token) {
      tokens_.erase(it);  // the next caller fetches a fresh one; callers holding this one keep their copy
      return;
    }
  }
}

Task<Result<Grant>> Authenticator::authorize(const AccessScope& scope) {
  std::optional<Challenge> challenge;
  {
    std::lock_guard lock(mutex_);
    if (const Challenge* c = pick_challenge(challenges_)) challenge = *c;
  }
  if (!challenge) co_return Grant{};
  auto credentials = auth_.lookup(host_, scope.repository);
  if (challenge->scheme == "basic") {
    if (!credentials) co_return Grant{};
    co_return Grant{basic_header(*credentials), Clock::time_point::max(), nullptr, {}};
  }

  const std::string key = scope.str();
  std::shared_ptr<TokenSlot> slot;
  bool mine = false;
  {
    std::lock_guard lock(mutex_);
    auto& entry = tokens_[key];
    bool usable = entry != nullptr;
    if (usable) {
      if (auto tok = entry->value.try_get(); tok && tok->ok()) {
        auto life = effective_lifetime(**tok);
        if ((*tok)->asked + life - refresh_margin(life) <= Clock::now()) usable = false;
      }
    }
    if (!usable) {
      entry = std::make_shared<TokenSlot>();
      mine = true;
    }
    slot = entry;
  }
  if (mine) {
    auto token = co_await fetch_token(*challenge, scope);
    if (!token) {
      // Do not remember a failure: the next caller asks again.
      std::lock_guard lock(mutex_);
      auto it = tokens_.find(key);
      if (it != tokens_.end() && it->second == slot) tokens_.erase(it);
    }
    slot->value.set(std::move(token));
  }
  // Liveness: the token request ends it (stall limit, cancellation; a failure is not remembered).
  auto token = co_await slot->value.wait();
  if (!token) co_return token.error();
  milliseconds life;
  {
    std::lock_guard lock(mutex_);
    life = effective_lifetime(*token);
  }
  co_return Grant{"Authorization: Bearer " + token->value, token->asked + life - send_margin(life), slot, token->asked};
}

Task<Result<Authenticator::Token>> Authenticator::fetch_token(Challenge challenge, AccessScope scope) {
  std::string realm = challenge.param("realm");
  if (realm.empty()) {
    co_return Error::make(ErrorKind::Protocol, fmt::format("{} asks for a Bearer token but names no realm", host_));
  }
  std::string realm_scheme = url_scheme(realm);
  if (realm_scheme != "https" && realm_scheme != "http") {
    co_return Error::make(ErrorKind::Protocol, fmt::format("{} names an unusable token realm \"{}\"", host_, realm));
  }
  std::string realm_origin = url_origin(realm);
  auto credentials = auth_.lookup(host_, scope.repository);
  if (realm_scheme == "http") {
    // A token server on plain HTTP only where the registry itself may be plain
    // HTTP, and never with our credentials when it is another host.
    if (!plain_http_allowed_) {
      co_return Error::make(ErrorKind::Tls,
                            fmt::format("{} sends us to a plain-HTTP token server ({}); refused, as credentials and "
                                        "tokens would cross the network unencrypted (--insecure allows it)",
                                        host_, url_for_log(realm)));
    }
    if (credentials && hostname_of(realm_origin) != hostname_of(host_)) {
      co_return Error::make(ErrorKind::Tls,
                            fmt::format("{} sends us to a token server on another host over plain HTTP ({}); refused "
                                        "to send it the pull secret's credentials for {}",
                                        host_, url_for_log(realm), host_));
    }
  }
  std::string url =
      realm + (realm.find('?') == std::string::npos ? "?" : "&") + "service=" + url_encode(challenge.param("service"));
  std::string scope_text = scope.str();
  for (std::size_t start = 0; !scope_text.empty() && start <= scope_text.size();) {
    auto space = scope_text.find(' ', start);
    url += "&scope=" + url_encode(scope_text.substr(start, space - start));
    if (space == std::string::npos) break;
    start = space + 1;
  }
  auto request = transport_.request_for(url);
  if (!request) co_return request.error();
  Request req = std::move(*request);
  req.max_memory_body = 1 << 20;
  if (credentials) req.headers.push_back(basic_header(*credentials));

  // The token's life is counted from before we asked: never later than the server's count.
  auto asked = Clock::now();
  Response resp = co_await transport_.perform(std::move(req));
  CallContext ctx{host_, scope.repository, fmt::format("token request to {}", realm_origin), scope.push,
                  credentials.has_value()};
  if (!resp.transport_ok()) co_return error_from_response(resp, ctx);
  if (resp.status == 401 || resp.status == 403) {
    if (!credentials) {
      co_return Error::make(ErrorKind::NoCredentials,
                            fmt::format("{} requires credentials and the pull secret has none for it", host_),
                            resp.status);
    }
    std::string detail = describe_error_body(resp.body);
    co_return Error::make(ErrorKind::AuthDenied,
                          fmt::format("{} refused the pull secret's credentials (token server {} answered HTTP {}{})",
                                      host_, realm_origin, resp.status, detail.empty() ? "" : ": " + detail),
                          resp.status);
  }
  if (resp.status != 200) co_return error_from_response(resp, ctx);
  rapidjson::Document doc;
  doc.Parse(resp.body.data(), resp.body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    co_return Error::make(ErrorKind::Protocol,
                          fmt::format("token server {} sent a body that is not JSON", realm_origin));
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
  milliseconds lifetime = std::chrono::seconds(60);  // the distribution spec's default
  if (doc.HasMember("expires_in") && doc["expires_in"].IsNumber() && doc["expires_in"].GetDouble() > 0) {
    lifetime = milliseconds(static_cast<long>(std::min(doc["expires_in"].GetDouble(), 1e9) * 1000));
  }
  token.asked = asked;
  token.lifetime = lifetime;
  co_return token;
}

}  // namespace fastsync
