// How requests to one registry are authorised: the challenge the registry
// sent (from GET /v2/, or a 401 on a repository), Basic credentials from the
// pull secret, or Bearer tokens — one per scope, fetched once for all
// concurrent callers, refreshed ahead of expiry, dropped when refused.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/core/result.h"
#include "registry/core/task.h"
#include "registry/distribution/auth_file.h"
#include "registry/distribution/www_authenticate.h"
#include "registry/net/http_engine.h"

namespace fastsync {

// What a request needs access to.
struct AccessScope {
  std::string repository;  // empty: registry-wide (GET /v2/)
  bool push = false;
  std::string mount_from;  // a second repository to pull from (cross-repository mount)
  // "repository:<name>:pull[,push]" (+ " repository:<from>:pull"); empty if no repository.
  std::string str() const;
};

// An Authorization header to send, and until when it may leave the queue.
struct Grant {
  std::optional<std::string> header;  // "Authorization: …"; none = anonymous
  std::chrono::steady_clock::time_point send_before = std::chrono::steady_clock::time_point::max();
  std::shared_ptr<const void> token;               // which cached token this is (for refused()); null unless Bearer
  std::chrono::steady_clock::time_point issued{};  // when the token was asked for (Bearer)
};

class Authenticator {
 public:
  // How token servers are reached: the owning registry's TLS and retries.
  struct Transport {
    std::function<Result<Request>(const std::string& url)> request_for;
    std::function<Task<Response>(Request)> perform;  // retried on transient failures
  };

  Authenticator(std::string host, const AuthFile& auth, bool plain_http_allowed, Transport transport);

  // The registry's challenges (from GET /v2/ or a 401 on an anonymous request).
  void set_challenges(std::vector<Challenge> challenges);
  bool has_credentials(const std::string& repository) const;

  Task<Result<Grant>> authorize(const AccessScope& scope);
  // The server refused `grant` (401), or it expired unsent: the next
  // authorize() for that scope fetches a fresh token. `age` is how old the
  // token was when the refused request went out: a registry that refuses
  // tokens younger than they claim to live teaches us their real lifetime.
  void refused(const Grant& grant, std::optional<std::chrono::milliseconds> age = std::nullopt);
  // Tokens refused at this age or older were plausibly expired, not refused.
  static constexpr std::chrono::milliseconds kPlausibleExpiry{1000};

  // Token margin: a token is refreshed after 80% of its life (at most 30 s
  // before it ends) and never leaves the queue in its last 10% (at most 5 s).
  static std::chrono::milliseconds refresh_margin(std::chrono::milliseconds lifetime);
  static std::chrono::milliseconds send_margin(std::chrono::milliseconds lifetime);

 private:
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point asked;  // its life counts from before we asked
    std::chrono::milliseconds lifetime{0};        // as the token server states it
  };
  // The lifetime to plan with: the stated one, or less if tokens died younger.
  std::chrono::milliseconds effective_lifetime(const Token& token) const;
  struct TokenSlot {
    AsyncValue<Result<Token>> value;
  };

  Task<Result<Token>> fetch_token(Challenge challenge, AccessScope scope);

  const std::string host_;
  const AuthFile& auth_;
  const bool plain_http_allowed_;
  Transport transport_;

  mutable std::mutex mutex_;
  std::vector<Challenge> challenges_;
  std::map<std::string, std::shared_ptr<TokenSlot>> tokens_;  // by scope
  std::chrono::milliseconds learned_lifetime_ = std::chrono::milliseconds::max();
};

}  // namespace fastsync
