#include "registry/endpoints.h"

#include "registry/digest.h"

namespace fastsync {

RegistryApi& Endpoints::route(const Repository& repo) {
  auto it = routes_.find(repo.registry);
  return it == routes_.end() ? network_ : *it->second;
}

Task<Result<ManifestData>> Endpoints::get_manifest(const Repository& repo, const std::string& reference) {
  const bool by_digest = is_sha256_digest(reference);
  const std::string key = repo.registry + "@" + reference;
  if (by_digest) {
    std::lock_guard lock(mutex_);
    if (auto it = by_digest_.find(key); it != by_digest_.end()) co_return it->second;
  }
  auto got = co_await route(repo).get_manifest(repo, reference);
  if (got && by_digest) {
    std::lock_guard lock(mutex_);
    by_digest_.emplace(key, *got);
  }
  co_return got;
}

Task<Result<std::vector<Attachment>>> Endpoints::attachments(const Repository& repo, const std::string& digest) {
  co_return co_await route(repo).attachments(repo, digest);
}

Task<Result<ManifestStanding>> Endpoints::find_manifest(Repository repo, std::string digest, std::string tag,
                                                        bool with_bytes) {
  RegistryApi& endpoint = route(repo);  // before `repo` is moved into the call
  const std::string key = repo.registry + "@" + digest;
  auto standing = co_await endpoint.find_manifest(std::move(repo), std::move(digest), std::move(tag), with_bytes);
  if (standing && standing->manifest) {
    // The bytes read to find it are the ones re-tagging pushes: kept as get_manifest keeps them.
    std::lock_guard lock(mutex_);
    by_digest_.emplace(key, *standing->manifest);
  }
  co_return standing;
}

Task<Result<std::string>> Endpoints::manifest_digest(const Repository& repo, const std::string& reference) {
  co_return co_await route(repo).manifest_digest(repo, reference);
}

Task<Status> Endpoints::put_manifest(const Repository& repo, const std::string& reference,
                                     const ManifestData& manifest) {
  co_return co_await route(repo).put_manifest(repo, reference, manifest);
}

Task<Status> Endpoints::blob_exists(const Repository& repo, const std::string& digest) {
  co_return co_await route(repo).blob_exists(repo, digest);
}

Task<Result<MountOutcome>> Endpoints::mount_blob(const Repository& to, const std::string& digest,
                                                 const Repository& from) {
  if (&route(to) != &route(from)) co_return MountOutcome{};
  co_return co_await route(to).mount_blob(to, digest, from);
}

Task<Result<BlobProbe>> Endpoints::probe_blob(Repository to, std::string digest,
                                              std::optional<Repository> mount_from) {
  RegistryApi& endpoint = route(to);  // before `to` is moved into the call
  if (mount_from && &endpoint != &route(*mount_from)) mount_from.reset();
  co_return co_await endpoint.probe_blob(std::move(to), std::move(digest), std::move(mount_from));
}

Task<Result<std::uint64_t>> Endpoints::copy_blob(const Repository& from, const Repository& to, const Descriptor& blob,
                                                 std::string upload_session) {
  RegistryApi& source = route(from);
  RegistryApi& dest = route(to);
  if (&source == &dest) co_return co_await dest.copy_blob(from, to, blob, std::move(upload_session));
  BlobOpener opener = [&source, from, blob] { return source.open_blob(from, blob); };
  co_return co_await dest.store_blob(to, blob, std::move(upload_session), std::move(opener));
}

std::unique_ptr<BlobReader> Endpoints::open_blob(const Repository& repo, const Descriptor& blob) {
  return route(repo).open_blob(repo, blob);
}

Task<Result<std::uint64_t>> Endpoints::store_blob(const Repository& to, const Descriptor& blob,
                                                  std::string upload_session, BlobOpener open_source) {
  co_return co_await route(to).store_blob(to, blob, std::move(upload_session), std::move(open_source));
}

Task<Status> Endpoints::upload_blob(const Repository& repo, const std::string& digest,
                                    std::shared_ptr<const std::string> bytes, std::string upload_session) {
  co_return co_await route(repo).upload_blob(repo, digest, std::move(bytes), std::move(upload_session));
}

Task<Status> Endpoints::check_access(const Repository& repo, bool push) {
  co_return co_await route(repo).check_access(repo, push);
}

}  // namespace fastsync
