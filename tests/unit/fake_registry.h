// An in-memory registry for stage and graph tests, both an image source and
// an image destination (as the registry client is). Every call completes at
// once. It enforces what a careful real registry would: a manifest is refused
// while a blob it names is missing in that repository (and a list while a child
// is missing), and it records every call so tests can check order and counts.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "registry/core/digest.h"
#include "registry/core/endpoint.h"
#include "registry/core/manifest.h"
#include "stages/types.h"

namespace fastsync::testing {

class FakeRegistry : public ImageSource, public ImageDestination {
 public:
  struct Repo {
    std::map<std::string, ManifestData> manifests;  // by digest
    std::map<std::string, std::string> tags;        // tag -> digest
    std::map<std::string, std::string> blobs;       // digest -> bytes
  };

  // --- building content ---
  std::string add_blob(const Repository& repo, const std::string& bytes);
  // Puts a manifest directly (no checks); returns its digest.
  std::string add_manifest(const Repository& repo, const std::string& bytes, const std::string& media_type,
                           const std::string& tag = {});
  // An image with a config and the given layers, all stored in `repo`.
  std::string add_image(const Repository& repo, const std::vector<std::string>& layers, bool oci = false,
                        const std::string& tag = {});
  std::string add_list(const Repository& repo, const std::vector<std::string>& child_digests,
                       const std::string& tag = {});

  // --- failure injection ---
  std::map<std::string, Error> fail_blob_copy;       // digest -> error for copy_blob/upload_blob
  std::map<std::string, Error> fail_manifest_reads;  // repository str -> error for HEADs and GETs of manifests
  std::map<std::string, Error> fail_manifest_put;    // tag/digest -> error
  // A mount that cannot be done opens an upload session (as a registry answering 202 does).
  bool mount_opens_session = false;
  bool refuse_mounts = false;  // mounts fail even where they could work

  // --- what happened ---
  struct Event {
    std::string op;       // "put_manifest", "copy_blob", "upload_blob", "mount", "get_manifest", "open_blob"
    std::string repo;     // repository str
    std::string ref;      // tag or digest
    std::string session;  // the upload session a copy/upload used, or a mount opened
  };
  std::vector<Event> events() const;
  std::size_t count(const std::string& op) const;
  std::vector<std::string> violations() const;  // invariant breaches, empty if none
  Repo snapshot(const Repository& repo) const;
  bool has_blob(const Repository& repo, const std::string& digest) const;

  // The run's ends, both this fake.
  stages::Ends ends() { return stages::Ends{*this, *this, this}; }

  // --- ImageSource, ImageDestination ---
  Task<Result<ManifestData>> get_manifest(const Repository& repo, const std::string& reference) override;
  Task<Result<std::string>> manifest_digest(const Repository& repo, const std::string& reference) override;
  Task<Status> put_manifest(const Repository& repo, const std::string& reference,
                            const ManifestData& manifest) override;
  Task<Status> blob_exists(const Repository& repo, const std::string& digest) override;
  Task<Result<MountOutcome>> mount_blob(const Repository& to, const std::string& digest,
                                        const Repository& from) override;
  // From this fake: "copy_blob" (as registry to registry); from another source: "store_blob".
  Task<Result<std::uint64_t>> receive_blob(ImageSource& source, const Repository& from, const Repository& to,
                                           const Descriptor& blob, std::string upload_session) override;
  std::unique_ptr<BlobReader> open_blob(const Repository& repo, const Descriptor& blob) override;
  Task<Status> upload_blob(const Repository& repo, const std::string& digest, std::shared_ptr<const std::string> bytes,
                           std::string upload_session) override;
  Task<Status> check_access(const Repository& repo, bool push) override;

 private:
  Task<Result<std::uint64_t>> copy_blob(const Repository& from, const Repository& to, const Descriptor& blob,
                                        std::string upload_session);
  Task<Result<std::uint64_t>> store_blob(const Repository& to, const Descriptor& blob, std::string upload_session,
                                         BlobOpener open_source);
  Result<ManifestData> find_manifest(const Repository& repo, const std::string& reference) const;
  void record(std::string op, const Repository& repo, std::string ref, std::string session = {});

  mutable std::mutex mutex_;
  std::map<std::string, Repo> repos_;
  std::vector<Event> events_;
  std::vector<std::string> violations_;
  int sessions_opened_ = 0;
};

}  // namespace fastsync::testing
