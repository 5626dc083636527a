// Blob uploads: sessions (POST, or a mount answered 202), the monolithic PUT,
// and the chunked fallback for registries behind a proxy that caps request
// bodies (nginx client_max_body_size answers 413): PATCH chunks in order with
// Content-Range, then the PUT with the digest. The chunk size a registry
// accepts is learned once and kept for the rest of the run.
#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "registry/core/log.h"
#include "registry/distribution/registry.h"
#include "registry/net/url.h"

namespace fastsync {
namespace {

constexpr int kMaxTooLarge = 8;  // 16 MiB halves to 1 MiB in 4 steps
// An upload whose token died on the way is redone with a fresh one without
// using up the retry budget (that is for failures), but not without end.
constexpr int kMaxAuthExpired = 8;

std::string human(std::uint64_t bytes) {
  if (bytes >= (1u << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1u << 20));
  return fmt::format("{} KiB", bytes / 1024);
}

}  // namespace

Task<Result<UploadSession>> Registry::start_upload(const std::string& repository) {
  Call call;
  call.kind = CallKind::UploadStart;
  call.request.method = "POST";
  call.request.set_body("");
  call.target = fmt::format("/v2/{}/blobs/uploads/", repository);
  call.scope = AccessScope{repository, true, {}};
  call.what = "POST blob upload";
  auto resp = co_await send(std::move(call));
  if (!resp) co_return resp.error();
  auto location = resp->header("location");
  if (!location || location->empty()) {
    co_return Error::make(ErrorKind::Protocol,
                          fmt::format("{}/{}: upload started without a Location", host_, repository));
  }
  if (auto min = resp->header("oci-chunk-min-length")) chunks_.set_minimum(std::strtoull(min->c_str(), nullptr, 10));
  auto url = resolve_url(resp->url, *location);
  if (!url) co_return url.error();
  co_return UploadSession{*url};
}

Task<Result<MountResult>> Registry::mount_blob(const std::string& repository, const std::string& digest,
                                               const std::string& from_repository) {
  Call call;
  call.kind = CallKind::BlobMount;
  call.request.method = "POST";
  call.request.set_body("");
  call.target = fmt::format("/v2/{}/blobs/uploads/?mount={}&from={}", repository, url_encode(digest),
                            url_encode(from_repository));
  call.scope = AccessScope{repository, true, from_repository};
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
    // 202: the registry opened an upload session; use it rather than open another.
    if (auto location = resp->header("location"); location && !location->empty()) {
      if (auto url = resolve_url(resp->url, *location)) result.session = UploadSession{*url};
    }
  }
  co_return result;
}

void Registry::note_refused_body(std::uint64_t refused_size, Error& error) {
  auto verdict = chunks_.refused(refused_size);
  if (verdict.switched) {
    logging::warn("{} refused a {} request body (HTTP 413): uploading larger blobs in chunks of {} from now on", host_,
                  human(refused_size), human(chunks_.chunk()));
  }
  if (!verdict.retry) {
    error.kind = ErrorKind::Protocol;  // smaller requests are not possible
    error.message += fmt::format(" ({} refuses request bodies of {}, and chunks cannot be smaller than {})", host_,
                                 human(refused_size), human(chunks_.chunk()));
  }
}

Task<Status> Registry::upload(std::string repository, UploadSession session, std::string digest, UploadBody body) {
  std::uint64_t chunk = chunks_.chunk();
  if (chunk > 0 && body.size > chunk) co_return co_await upload_chunked(repository, session, digest, body, chunk);

  auto url = add_query_param(session.location, "digest", digest);
  if (!url) co_return url.error();
  Call call;
  call.kind = CallKind::BlobPut;
  call.request.method = "PUT";
  call.request.headers.push_back("Content-Type: application/octet-stream");
  if (body.memory) {
    call.request.body = body.memory;
  } else {
    call.request.body_source = body.stream(0, body.size);
  }
  call.request.on_started = body.on_started;
  call.target = *url;
  call.scope = AccessScope{repository, true, {}};
  call.what = fmt::format("PUT blob {}", digest);
  auto resp = co_await send(std::move(call));
  if (resp) co_return Status{};
  Error error = resp.error();
  if (error.kind == ErrorKind::TooLarge) note_refused_body(body.size, error);
  co_return error;
}

Task<Status> Registry::upload_chunked(std::string repository, UploadSession session, std::string digest,
                                      UploadBody body, std::uint64_t chunk) {
  std::string location = session.location;
  for (std::uint64_t offset = 0; offset < body.size;) {
    std::uint64_t length = std::min(chunk, body.size - offset);
    Call call;
    call.kind = CallKind::BlobPatch;
    call.request.method = "PATCH";
    call.request.headers.push_back("Content-Type: application/octet-stream");
    call.request.headers.push_back(fmt::format("Content-Range: {}-{}", offset, offset + length - 1));
    if (body.memory) {
      call.request.set_body(body.memory->substr(offset, length));
    } else {
      call.request.body_source = body.stream(offset, length);
    }
    if (offset == 0) call.request.on_started = body.on_started;
    call.target = location;
    call.scope = AccessScope{repository, true, {}};
    call.what = fmt::format("PATCH blob {} bytes {}-{}", digest, offset, offset + length - 1);
    auto resp = co_await send(std::move(call));
    if (!resp) {
      Error error = resp.error();
      if (error.kind == ErrorKind::TooLarge) note_refused_body(length, error);
      co_return error;
    }
    if (auto next = resp->header("location"); next && !next->empty()) {
      auto url = resolve_url(resp->url, *next);
      if (!url) co_return url.error();
      location = *url;
    }
    offset += length;
  }
  auto url = add_query_param(location, "digest", digest);
  if (!url) co_return url.error();
  Call commit;
  commit.kind = CallKind::BlobPut;
  commit.request.method = "PUT";
  commit.request.set_body("");
  commit.target = *url;
  commit.scope = AccessScope{repository, true, {}};
  commit.what = fmt::format("PUT blob {} (commit)", digest);
  auto resp = co_await send(std::move(commit));
  if (!resp) co_return resp.error();
  co_return Status{};
}

Task<void> Registry::cancel_upload(const std::string& repository, const UploadSession& session) {
  if (engine_.cancelled()) co_return;
  Call call;
  call.kind = CallKind::UploadCancel;
  call.request.method = "DELETE";
  call.target = session.location;
  call.scope = AccessScope{repository, true, {}};
  call.what = "DELETE blob upload";
  auto ignored = co_await send(std::move(call));
  (void)ignored;
}

Task<Status> Registry::upload_retrying(const std::string& repository, const std::string& digest,
                                       std::optional<UploadSession> first,
                                       std::function<Task<Status>(UploadSession)> attempt) {
  auto activity = board_.begin(fmt::format("upload blob {} to {}/{}", digest, host_, repository));
  int retries_used = 0;
  int too_large = 0;
  int auth_expired = 0;
  while (true) {
    // The first attempt may use a session already open; every other opens its own.
    std::optional<UploadSession> session = std::exchange(first, std::nullopt);
    if (!session) {
      activity.working("opening an upload session");
      auto opened = co_await start_upload(repository);
      if (!opened) co_return opened.error();
      session = std::move(*opened);
    }
    activity.working(fmt::format("attempt {}: uploading", retries_used + too_large + auth_expired + 1));
    auto status = co_await attempt(*session);
    if (status) co_return status;
    Error error = status.error();
    if (engine_.cancelled()) {
      co_return Error::make(ErrorKind::Cancelled, fmt::format("blob {} to {}: cancelled", digest, host_));
    }
    co_await cancel_upload(repository, *session);
    // A parallel writer (or a commit that landed after all) may have put it there.
    auto present = co_await head_blob(repository, digest);
    if (present) co_return Status{};
    if (error.kind == ErrorKind::TooLarge && ++too_large <= kMaxTooLarge) continue;           // now in smaller chunks
    if (error.kind == ErrorKind::AuthExpired && ++auth_expired <= kMaxAuthExpired) continue;  // a fresh token now
    RetryPolicy::Scope scope;
    scope.digest_mismatch = true;  // the bytes are fetched again
    auto delay = options_.retry.next_delay(error, retries_used, scope);
    if (!delay) co_return error;
    ++retries_used;
    counters_.retries++;
    logging::debug("blob {} to {}/{}: {} — new upload {}/{} in {} ms", digest, host_, repository, error.message,
                   retries_used, options_.retry.retries, delay->count());
    activity.sleeping(*delay, retries_used, options_.retry.retries, error.message);
    co_await engine_.sleep_for(*delay);
  }
}

Task<Status> Registry::upload_blob(const std::string& repository, const std::string& digest,
                                   std::shared_ptr<const std::string> bytes, std::optional<UploadSession> session) {
  UploadBody body;
  body.size = bytes->size();
  body.memory = std::move(bytes);
  std::function<Task<Status>(UploadSession)> attempt = [this, repository, digest, body](UploadSession s) {
    return upload(repository, s, digest, body);
  };
  co_return co_await upload_retrying(repository, digest, std::move(session), std::move(attempt));
}

}  // namespace fastsync
