// The run's endpoints behind one RegistryApi: registries (the network client)
// and archives on disk, told apart by Repository::registry. The graph sees one
// API; a blob moving between two different endpoints is stored by the
// receiving one from a reader the sending one opens (registry -> archive for
// --to-dir, archive -> registry for --from-dir). Curl-free: core library.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "registry/api.h"

namespace fastsync {

class Endpoints : public RegistryApi {
 public:
  // `network`: every repository no other endpoint claims.
  explicit Endpoints(RegistryApi& network) : network_(network) {}
  // Repositories whose registry is `host` belong to `endpoint`.
  void add(const std::string& host, RegistryApi& endpoint) { routes_[host] = &endpoint; }

  Task<Result<ManifestData>> get_manifest(const Repository& repo, const std::string& reference) override;
  Task<Result<std::string>> manifest_digest(const Repository& repo, const std::string& reference) override;
  Task<Status> put_manifest(const Repository& repo, const std::string& reference, const ManifestData& manifest) override;
  Task<Status> blob_exists(const Repository& repo, const std::string& digest) override;
  Task<Result<MountOutcome>> mount_blob(const Repository& to, const std::string& digest,
                                        const Repository& from) override;
  Task<Result<std::uint64_t>> copy_blob(const Repository& from, const Repository& to, const Descriptor& blob,
                                        std::string upload_session) override;
  std::unique_ptr<BlobReader> open_blob(const Repository& repo, const Descriptor& blob) override;
  Task<Result<std::uint64_t>> store_blob(const Repository& to, const Descriptor& blob, std::string upload_session,
                                         BlobOpener open_source) override;
  Task<Status> upload_blob(const Repository& repo, const std::string& digest, std::shared_ptr<const std::string> bytes,
                           std::string upload_session) override;
  Task<Status> check_access(const Repository& repo, bool push) override;
  Task<Result<BlobProbe>> probe_blob(Repository to, std::string digest, std::optional<Repository> mount_from) override;
  Task<Result<std::vector<Attachment>>> attachments(const Repository& repo, const std::string& digest) override;
  Task<Result<ManifestStanding>> find_manifest(Repository repo, std::string digest, std::string tag,
                                               bool with_bytes) override;

 private:
  RegistryApi& route(const Repository& repo);

  RegistryApi& network_;
  std::map<std::string, RegistryApi*> routes_;
  // Manifests by digest never change: a planning pass and the graph ask for
  // the same ones, so each is fetched once.
  std::mutex mutex_;
  std::map<std::string, ManifestData> by_digest_;
};

}  // namespace fastsync
