#include "registry/client.h"

namespace fastsync {

RegistryClient::RegistryClient(HttpEngine& engine, AuthFile auth, RegistryOptions options)
    : engine_(engine), auth_(std::move(auth)), options_(std::move(options)) {}

void RegistryClient::set_scheme(const std::string& host, const std::string& scheme) {
  std::lock_guard lock(mutex_);
  schemes_[host] = scheme;
}

Registry& RegistryClient::registry(const std::string& host) {
  std::lock_guard lock(mutex_);
  auto& slot = registries_[host];
  if (!slot) {
    auto scheme = schemes_.find(host);
    slot = std::make_unique<Registry>(engine_, host, auth_, options_,
                                      scheme == schemes_.end() ? std::string() : scheme->second);
  }
  return *slot;
}

std::map<std::string, std::uint64_t> RegistryClient::request_counts() {
  std::map<std::string, std::uint64_t> totals;
  std::lock_guard lock(mutex_);
  for (auto& [host, reg] : registries_) {
    for (int k = 0; k < static_cast<int>(CallKind::Count_); ++k) {
      totals[to_string(static_cast<CallKind>(k))] += reg->counters().count(static_cast<CallKind>(k));
    }
    totals["retries"] += reg->counters().retries.load();
    totals["token_refreshes"] += reg->counters().token_refreshes.load();
  }
  return totals;
}

Task<Result<ManifestData>> RegistryClient::get_manifest(const Repository& repo, const std::string& reference) {
  co_return co_await registry(repo.registry).get_manifest(repo.path, reference);
}

Task<Result<std::string>> RegistryClient::manifest_digest(const Repository& repo, const std::string& reference) {
  auto head = co_await registry(repo.registry).head_manifest(repo.path, reference);
  if (!head) co_return head.error();
  co_return head->digest;
}

Task<Status> RegistryClient::put_manifest(const Repository& repo, const std::string& reference,
                                          const ManifestData& manifest) {
  co_return co_await registry(repo.registry).put_manifest(repo.path, reference, manifest);
}

Task<Status> RegistryClient::blob_exists(const Repository& repo, const std::string& digest) {
  auto size = co_await registry(repo.registry).head_blob(repo.path, digest);
  if (!size) co_return size.error();
  co_return Status{};
}

Task<Result<bool>> RegistryClient::mount_blob(const Repository& to, const std::string& digest,
                                              const Repository& from) {
  Registry& dest = registry(to.registry);
  auto result = co_await dest.mount_blob(to.path, digest, from.path);
  if (!result) co_return result.error();
  // A 202 opened an upload session we will not use: close it.
  if (!result->mounted && !result->upload_location.empty()) co_await dest.cancel_upload(to.path, result->upload_location);
  co_return result->mounted;
}

Task<Result<std::uint64_t>> RegistryClient::copy_blob(const Repository& from, const Repository& to,
                                                      const Descriptor& blob) {
  BlobCopyOptions options;
  options.bytes_moved = &bytes_moved_;
  co_return co_await fastsync::copy_blob(registry(from.registry), from.path, registry(to.registry), to.path, blob,
                                         options);
}

std::unique_ptr<BlobReader> RegistryClient::open_blob(const Repository& repo, const Descriptor& blob) {
  return open_blob_reader(registry(repo.registry), repo.path, blob, &bytes_moved_);
}

Task<Status> RegistryClient::upload_blob(const Repository& repo, const std::string& digest, std::string bytes) {
  Registry& dest = registry(repo.registry);
  auto location = co_await dest.start_upload(repo.path);
  if (!location) co_return location.error();
  co_return co_await dest.finish_upload(repo.path, *location, digest, std::move(bytes));
}

Task<Status> RegistryClient::check_access(const Repository& repo, bool push) {
  co_return co_await registry(repo.registry).check_access(repo.path, push);
}

}  // namespace fastsync
