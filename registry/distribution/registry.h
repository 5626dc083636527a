// One registry host: how to reach it (scheme, TLS), how requests are
// authorised (registry/distribution/auth.h), and the distribution API calls, each going
// through send(): credentials, retries with the one policy, redirects handled
// once, here. Uploads (monolithic, or chunked once the registry refuses a large
// body) are in registry/distribution/upload.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/core/manifest.h"
#include "registry/core/result.h"
#include "registry/core/retry.h"
#include "registry/core/task.h"
#include "registry/distribution/activity.h"
#include "registry/distribution/auth.h"
#include "registry/distribution/auth_file.h"
#include "registry/distribution/errors.h"
#include "registry/distribution/upload_chunks.h"
#include "registry/net/http_engine.h"
#include "registry/net/trust.h"

namespace fastsync {

struct RegistryOptions {
  bool insecure = false;  // skip TLS verification and allow plain HTTP to any host
  bool http2 = false;
  RetryPolicy retry;
  std::chrono::milliseconds stall_limit{std::chrono::seconds(60)};
  TrustSettings trust;
  // Upload in chunks of this size from the start (0: monolithic PUTs until a
  // registry answers 413, then chunks for that registry).
  std::uint64_t upload_chunk_size = 0;
  // Blobs of at least 2 x this may be fetched as parallel Range segments of
  // this size (0: never; when they pay, see segmented_download.h), with at
  // most `segment_memory` bytes held out of order in all, and extra
  // connections only from free slots of `blob_pool`.
  std::uint64_t segment_size = 2u << 20;
  bool segments_always = false;  // split every large blob at once, rather than when it pays
  std::uint64_t segment_memory = 12u << 20;
  // What segment_memory may grow to once lanes pay (0: no growth).
  std::uint64_t segment_memory_ceiling = 0;
  std::size_t blob_pool = 64;
  // A source repository whose tags fit in one tags/list page of this size is
  // listed once, instead of asked per image for its sigstore signature tag.
  std::size_t tag_page_size = 1000;
};

// What kind of request, for counters and messages.
enum class CallKind {
  Ping,
  Token,
  ManifestHead,
  ManifestGet,
  ManifestPut,
  BlobHead,
  TagList,
  BlobGet,
  UploadStart,
  BlobMount,
  BlobPatch,
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
  // Method, headers, body (in memory, or streamed: a streamed body is never sent
  // twice), sink, limits. send() fills in the URL, credentials, TLS and stall limit.
  Request request;
  std::string target;  // "/v2/..." path (+query), or an absolute URL (upload locations)
  bool follow_redirects = false;
  AccessScope scope;  // what the credentials must allow
  std::string what;   // "HEAD manifest sha256:…", for messages
};

struct ManifestHead {
  std::string digest;
  std::string media_type;
  std::uint64_t size = 0;
};

// An upload the registry opened: POST /blobs/uploads/, or a mount answered 202.
struct UploadSession {
  std::string location;  // absolute URL
};

struct MountResult {
  bool mounted = false;
  std::optional<UploadSession> session;  // not mounted, and the registry opened an upload instead
};

// A blob's bytes for an upload: in memory (can be sent again), or streamed
// (read once, in order). `window(offset, length)` is the body of one request.
struct UploadBody {
  std::uint64_t size = 0;
  std::shared_ptr<const std::string> memory;  // set for in-memory bodies
  std::function<std::shared_ptr<BodySource>(std::uint64_t offset, std::uint64_t length)> stream;
  std::function<void(TransferId)> on_started;  // the first request carrying body bytes started
};

class Registry {
 public:
  Registry(HttpEngine& engine, std::string host, const AuthFile& auth, RegistryOptions options, TrustStore& trust,
           ActivityBoard& board, std::string forced_scheme = {});

  const std::string& host() const { return host_; }
  HttpEngine& engine() { return engine_; }
  const RegistryOptions& options() const { return options_; }
  const RetryPolicy& retry_policy() const { return options_.retry; }
  RequestCounters& counters() { return counters_; }

  // GET /v2/ once: decides the scheme and learns the auth challenge. Later calls reuse it.
  Task<Status> ping();
  // Makes sure credentials work for `repository` (with push when asked): fetches
  // a token, or checks Basic credentials. For a clear early error.
  Task<Status> check_access(const std::string& repository, bool push);

  // The core: credentials, retries (registry/core/retry.h), a fresh token when one is
  // refused, redirects without credentials to other hosts. Returns the response
  // when it is 2xx; everything else is an Error naming host, repository and
  // operation.
  Task<Result<Response>> send(Call call);

  Task<Result<ManifestHead>> head_manifest(const std::string& repository, const std::string& reference);
  // Exact bytes; when `reference` is a digest the bytes are checked against it.
  Task<Result<ManifestData>> get_manifest(const std::string& repository, const std::string& reference);
  Task<Status> put_manifest(const std::string& repository, const std::string& reference, const ManifestData& manifest);

  // Digests of the manifests whose subject is `digest` (OCI 1.1 referrers API);
  // empty when there are none or the registry does not offer the API (asked
  // once: after the first such answer the registry is not asked again).
  Task<Result<std::vector<std::string>>> referrers(const std::string& repository, const std::string& digest);

  // Whether the repository has any tag (GET tags/list?n=1; a 404 is none).
  Task<Result<bool>> has_tags(const std::string& repository);

  // The first page of the repository's tags (GET tags/list?n=`page_size`; a
  // 404 NAME_UNKNOWN is none, any other 404 an error).
  // `more` when the registry says there is a next page (a Link header) or the
  // page is full.
  struct TagPage {
    std::vector<std::string> tags;
    bool more = false;
  };
  Task<Result<TagPage>> first_tag_page(const std::string& repository, std::size_t page_size);

  // Size of the blob if present.
  Task<Result<std::uint64_t>> head_blob(const std::string& repository, const std::string& digest);

  // --- uploads (registry/distribution/upload.cpp) ---
  Task<Result<UploadSession>> start_upload(const std::string& repository);
  // Cross-repository mount; a 202 leaves an upload session to use instead of a new POST.
  Task<Result<MountResult>> mount_blob(const std::string& repository, const std::string& digest,
                                       const std::string& from_repository);
  // The blob's bytes into `session`, committed as `digest`: one PUT, or PATCH
  // chunks then the PUT once this registry refused a large body. One attempt;
  // a 413 makes the next attempt use (smaller) chunks and fails with TooLarge.
  Task<Status> upload(std::string repository, UploadSession session, std::string digest, UploadBody body);
  // Best effort: tells the registry to drop an abandoned upload session.
  Task<void> cancel_upload(const std::string& repository, const UploadSession& session);
  // A blob already in memory (verified): POST (unless `session`) + upload,
  // retried with a new session on transient failures.
  Task<Status> upload_blob(const std::string& repository, const std::string& digest,
                           std::shared_ptr<const std::string> bytes, std::optional<UploadSession> session = {});
  // Runs `attempt` (one upload into a session) until the blob is in: on a
  // failure it drops the session, asks whether the blob arrived anyway (a
  // parallel writer), and tries again in a new session as the retry policy
  // allows; a 413 only switches to (smaller) chunks. `first` is a session
  // already open (a mount answered 202).
  Task<Status> upload_retrying(const std::string& repository, const std::string& digest,
                               std::optional<UploadSession> first, std::function<Task<Status>(UploadSession)> attempt);

 private:
  Task<Result<std::string>> do_ping();
  // Retried on transient failures, no registry credentials (ping, token requests).
  Task<Response> perform_retrying(Request request, CallKind kind);
  // A request for `url` with the TLS of the URL's host, HTTP version and stall limit.
  Result<Request> request_for(const std::string& url);
  CallContext context(const Call& call) const;
  std::string base_url();
  // After a 413 on a body of `refused_size` bytes: smaller chunks from now on,
  // and `error` stays retryable (TooLarge) only if the next attempt can send less.
  void note_refused_body(std::uint64_t refused_size, Error& error);
  Task<Status> upload_chunked(std::string repository, UploadSession session, std::string digest, UploadBody body,
                              std::uint64_t chunk);

  HttpEngine& engine_;
  std::string host_;
  RegistryOptions options_;
  TrustStore& trust_;
  ActivityBoard& board_;
  std::string forced_scheme_;
  RequestCounters counters_;
  Authenticator auth_;

  std::mutex mutex_;
  std::shared_ptr<AsyncValue<Result<std::string>>> ping_;  // the base URL, "https://host:port"
  UploadChunks chunks_;
  // Set once the registry has shown it has no referrers API (OCI 1.1: such a
  // registry answers 404; one with the API never does): later subjects skip it.
  std::atomic<bool> no_referrers_api_{false};
};

}  // namespace fastsync
