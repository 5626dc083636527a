// The run's registries as one endpoint, both an image source and an image
// destination: one Registry per host, created on first use, all sharing one
// HTTP engine, one pull secret, one trust store and one set of options; one
// activity board for SIGUSR1 diagnostics.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "registry/client/link_gate.h"
#include "registry/core/blocking_pool.h"
#include "registry/core/endpoint.h"
#include "registry/distribution/activity.h"
#include "registry/distribution/auth_file.h"
#include "registry/distribution/registry.h"
#include "registry/net/http_engine.h"
#include "registry/net/trust.h"
#include "registry/transfer/blob_copy.h"

namespace fastsync {

class RegistryClient : public ImageSource, public ImageDestination {
 public:
  RegistryClient(HttpEngine& engine, AuthFile auth, RegistryOptions options);

  // Forces a scheme for one host ("http" or "https"), e.g. from "http://host:port" on the command line.
  void set_scheme(const std::string& host, const std::string& scheme);
  Registry& registry(const std::string& host);
  HttpEngine& engine() { return engine_; }

  std::atomic<std::uint64_t>& bytes_moved() { return bytes_moved_; }
  // Sum of request counters over all registries.
  std::map<std::string, std::uint64_t> request_counts();
  // Every operation in flight with its state and age (SIGUSR1).
  std::string describe_activity();

  Task<Result<ManifestData>> get_manifest(const Repository& repo, const std::string& reference) override;
  Task<Result<std::string>> manifest_digest(const Repository& repo, const std::string& reference) override;
  Task<Status> put_manifest(const Repository& repo, const std::string& reference,
                            const ManifestData& manifest) override;
  Task<Status> blob_exists(const Repository& repo, const std::string& digest) override;
  Task<Result<MountOutcome>> mount_blob(const Repository& to, const std::string& digest,
                                        const Repository& from) override;
  // From another registry of this client: one streamed GET -> PUT. From another
  // kind of source (an archive): its bytes through the source's open_blob.
  Task<Result<std::uint64_t>> receive_blob(ImageSource& source, const Repository& from, const Repository& to,
                                           const Descriptor& blob, std::string upload_session) override;
  std::unique_ptr<BlobReader> open_blob(const Repository& repo, const Descriptor& blob) override;
  Task<Status> upload_blob(const Repository& repo, const std::string& digest, std::shared_ptr<const std::string> bytes,
                           std::string upload_session) override;
  Task<Status> check_access(const Repository& repo, bool push) override;
  // The cosign tag, and the OCI referrers API where the registry answers it.
  Task<Result<std::vector<Attachment>>> attachments(const Repository& repo, const std::string& digest) override;
  // In a repository with no tags yet (nothing mirrored there), a blob is
  // asked for with one mount from the repository itself (or `mount_from`):
  // 201 = there, 202 = not there and the upload session is open. Saves a HEAD
  // per blob; elsewhere HEAD first, as most blobs will be there. Such mounts
  // and the PUTs of images found present never overlap (LinkGate).
  Task<Result<BlobProbe>> probe_blob(Repository to, std::string digest, std::optional<Repository> mount_from) override;
  // Where the repository has tags (a rerun, an upgrade), the tag is asked
  // first: when it names the digest, one request says present and tagged.
  // In a fresh repository a tagged image is missing without asking (its tag
  // is); one without a tag is asked by digest.
  Task<Result<ManifestStanding>> find_manifest(Repository repo, std::string digest, std::string tag,
                                               bool with_bytes) override;

 private:
  Task<Result<std::uint64_t>> copy_blob(const Repository& from, const Repository& to, const Descriptor& blob,
                                        std::string upload_session);
  Task<Result<std::uint64_t>> store_blob(const Repository& to, const Descriptor& blob, std::string upload_session,
                                         BlobOpener open_source);
  Task<Result<std::vector<Attachment>>> referrer_attachments(Repository repo, std::string digest);
  Task<Result<ManifestStanding>> ask_manifest(Repository repo, std::string digest, std::string tag, bool with_bytes);
  // Whether `repo` had no tags when first asked in this run (asked once per repository).
  Task<bool> fresh_repository(const Repository& repo);
  // Every tag `repo` had when first asked in this run, when one tags/list page
  // holds them all; null when it does not or the registry failed to answer.
  using TagSet = std::shared_ptr<const std::set<std::string>>;
  Task<TagSet> listed_tags(const Repository& repo);
  std::shared_ptr<LinkGate> link_gate(const Repository& repo);
  // Whether find_manifest found `digest` in `repo` in this run.
  bool found_present(const Repository& repo, const std::string& digest);

  HttpEngine& engine_;
  AuthFile auth_;
  RegistryOptions options_;
  TrustStore trust_;
  ActivityBoard board_;
  std::mutex mutex_;
  std::map<std::string, std::string> schemes_;
  std::map<std::string, std::unique_ptr<Registry>> registries_;
  std::map<std::string, std::shared_ptr<AsyncValue<bool>>> fresh_;
  std::map<std::string, std::shared_ptr<AsyncValue<TagSet>>> listed_;
  std::map<std::string, std::shared_ptr<LinkGate>> link_gates_;
  std::set<std::string> found_present_;  // repository@digest
  std::atomic<std::uint64_t> bytes_moved_{0};
  std::shared_ptr<SegmentBudget> segment_budget_;
  std::atomic<bool> test_unwakeable_copy_{false};
  // Read blobs from blocking sources (an archive's volumes). Last: its
  // threads end before what their jobs use.
  BlockingPool file_readers_;
};

}  // namespace fastsync
