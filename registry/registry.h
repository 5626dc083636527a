// One registry host: how to reach it (scheme, TLS), how to authenticate
// (Basic, or Bearer tokens cached per scope), and the distribution API calls,
// each with retries, backoff and redirects handled once, here.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/auth_file.h"
#include "registry/http_engine.h"
#include "registry/manifest.h"
#include "registry/result.h"
#include "registry/task.h"
#include "registry/www_authenticate.h"

namespace fastsync {

struct RegistryOptions {
  TlsOptions tls;
  bool insecure = false;  // skip TLS verification and allow plain HTTP to any host
  bool http2 = false;
  int retries = 3;  // extra attempts after the first
  std::chrono::milliseconds retry_base_delay{500};
  std::chrono::milliseconds retry_max_delay{std::chrono::seconds(30)};
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(5)};
  std::chrono::milliseconds stall_limit{std::chrono::seconds(60)};
};

// What kind of request, for counters and messages.
enum class CallKind {
  Ping,
  Token,
  ManifestHead,
  ManifestGet,
  ManifestPut,
  BlobHead,
  BlobGet,
  UploadStart,
  BlobMount,
  BlobPut,
  UploadCancel,
  Other,
  Count_
};
const char* to_string(CallKind kind);

struct RequestCounters {
  std::atomic<std::uint64_t> by_kind[static_cast<int>(CallKind::Count_)] = {};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> token_refreshes{0};
  std::uint64_t count(CallKind k) const { return by_kind[static_cast<int>(k)].load(); }
};

// One logical request to this registry; send() turns it into one or more HTTP requests.
struct Call {
  CallKind kind = CallKind::Other;
  std::string method = "GET";
  std::string target;  // "/v2/..." path (+query), or an absolute URL (upload locations)
  std::vector<std::string> headers;
  std::string body;
  std::shared_ptr<BodySink> sink;
  std::shared_ptr<BodySource> source;  // streamed uploads are never replayed
  std::size_t max_memory_body = 4u << 20;
  bool follow_redirects = false;
  // Scope: repository:<repository>:pull[,push] (+ repository:<mount_from>:pull)
  std::string repository;
  bool push = false;
  std::string mount_from;
  std::function<void(TransferId)> on_started;
  std::string what;  // "HEAD manifest sha256:…", for messages
};

struct ManifestHead {
  std::string digest;
  std::string media_type;
  std::uint64_t size = 0;
};

struct MountResult {
  bool mounted = false;
  std::string upload_location;  // when not mounted and the registry opened an upload
};

class Registry {
 public:
  Registry(HttpEngine& engine, std::string host, const AuthFile& auth, RegistryOptions options,
           std::string forced_scheme = {});

  const std::string& host() const { return host_; }
  HttpEngine& engine() { return engine_; }
  const RegistryOptions& options() const { return options_; }
  RequestCounters& counters() { return counters_; }

  // GET /v2/ once: decides the scheme and learns the auth challenge. Later calls reuse it.
  Task<Status> ping();
  // Makes sure credentials work for `repository` (with push when asked): fetches
  // a token, or checks Basic credentials. For a clear early error.
  Task<Status> check_access(const std::string& repository, bool push);

  // The core: auth, retries with backoff (Retry-After honoured), one token
  // refresh on 401, redirects without credentials to other hosts. Returns the
  // response when it is 2xx; everything else is an Error naming host, repository
  // and operation.
  Task<Result<Response>> send(Call call);

  Task<Result<ManifestHead>> head_manifest(const std::string& repository, const std::string& reference);
  // Exact bytes; when `reference` is a digest the bytes are checked against it.
  Task<Result<ManifestData>> get_manifest(const std::string& repository, const std::string& reference);
  Task<Status> put_manifest(const std::string& repository, const std::string& reference, const ManifestData& manifest);

  // Size of the blob if present.
  Task<Result<std::uint64_t>> head_blob(const std::string& repository, const std::string& digest);
  // Whole blob into memory, digest verified (configs, test fixtures).
  Task<Result<std::string>> get_blob(const std::string& repository, const std::string& digest,
                                     std::size_t max_size = 16u << 20);
  // POST /blobs/uploads/ -> absolute upload URL.
  Task<Result<std::string>> start_upload(const std::string& repository);
  Task<Result<MountResult>> mount_blob(const std::string& repository, const std::string& digest,
                                       const std::string& from_repository);
  // PUT <location>&digest=… with the whole body (monolithic upload).
  Task<Status> finish_upload(const std::string& repository, const std::string& location, const std::string& digest,
                             std::string body);
  Task<Status> finish_upload_streamed(const std::string& repository, const std::string& location,
                                      const std::string& digest, std::shared_ptr<BodySource> body,
                                      std::function<void(TransferId)> on_started);
  // Best effort: tells the registry to drop an abandoned upload session.
  Task<void> cancel_upload(const std::string& repository, const std::string& location);
  // POST + PUT of an in-memory blob (skips the upload if the blob is present).
  Task<Status> upload_blob(const std::string& repository, const std::string& digest, std::string bytes);

  // Tags of a repository (test and tooling use).
  Task<Result<std::vector<std::string>>> list_tags(const std::string& repository);

  std::chrono::milliseconds backoff_delay(int attempt) const;

 private:
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point refresh_after;
  };
  struct TokenSlot {
    AsyncValue<Result<Token>> value;
  };
  struct PingState {
    std::string base_url;  // "https://host:port"
    std::vector<Challenge> challenges;
  };

  Task<Result<PingState>> do_ping();
  Task<Result<std::optional<std::string>>> authorization(const Call& call, const std::shared_ptr<TokenSlot>& stale,
                                                         std::shared_ptr<TokenSlot>& used);
  Task<Result<Token>> fetch_token(Challenge challenge, std::string scope_query, std::string repository);
  // A request with this registry's TLS, HTTP version and stall limit.
  Request base_request(std::string url) const;
  // For requests outside send() (ping, token): retried on transient failures, no auth.
  Task<Response> perform_retrying(Request request, CallKind kind);
  // PUT <location>&digest=… with the body `call` carries (in memory or streamed).
  Task<Status> put_upload(Call call, const std::string& location, const std::string& digest);
  Error status_error(const Response& resp, const Call& call) const;
  Error transport_error(const Response& resp, const Call& call) const;
  std::string scope_for(const Call& call) const;
  std::string context(const Call& call) const;

  HttpEngine& engine_;
  std::string host_;
  const AuthFile& auth_;
  RegistryOptions options_;
  std::string forced_scheme_;
  RequestCounters counters_;

  std::mutex mutex_;
  std::shared_ptr<AsyncValue<Result<PingState>>> ping_;
  std::map<std::string, std::shared_ptr<TokenSlot>> tokens_;  // by scope
};

// Milliseconds to wait for a Retry-After value (delta-seconds or HTTP-date); nullopt if absent/bad.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value);

}  // namespace fastsync
