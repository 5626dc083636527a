// fastsync archives: releases on disk, to carry across an air gap.
//
// DIR/fastsync-000001.tar, fastsync-000002.tar, … are tar volumes of at most
// --archive-size. Every entry is blobs/sha256/<hex> — layers, configs and
// manifests alike — and the volume written last also holds oci-layout and
// index.json, so extracting every volume of a complete archive into one
// directory gives an OCI image layout skopeo and podman read
// (oci:DIR:4.20.8-x86_64). DIR/fastsync-archive.json (archive_index.h) says
// where each blob's bytes are, so they are read in place: no extraction.
//
// Both sides are endpoints, like a registry: the mirror's graph runs unchanged
// with an ArchiveWriter as its destination (--to-dir) or an ArchiveReader as
// its source (--from-dir).
//
// Writing: several volumes are filled at once ("writers"), each blob streamed
// from the source into one of them and hashed on the way; a blob counts only
// once its entry is complete and verified. A failed blob is cut off its volume
// (truncated), so no volume ever holds a wrong blob. The index is rewritten
// (atomically) as blobs land; an interrupted run leaves volumes whose tails the
// index does not vouch for, and a rerun into the same DIR truncates them to
// what it does, then carries on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "registry/core/blocking_pool.h"
#include "registry/core/endpoint.h"
#include "registry/core/signature_source.h"
#include "release/archive/archive_index.h"

namespace fastsync::release {

struct ArchiveOptions {
  // 4000 MiB: the largest round size a FAT32 stick (files < 4 GiB) and a
  // single-layer DVD (4.7 GB) both take.
  std::uint64_t volume_size = 4000ull << 20;
  int writers = 4;                 // volumes filled at once
  std::vector<std::string> since;  // earlier archives (directories or index files): their blobs are not written
};

// The pseudo registry host an archive answers to in Repository::registry.
std::string archive_host(const std::string& dir);

class ArchiveWriter : public ImageDestination {
 public:
  static Result<std::unique_ptr<ArchiveWriter>> open(const std::string& dir, ArchiveOptions options);
  ~ArchiveWriter() override;

  const std::string& host() const { return host_; }
  const std::string& dir() const { return dir_; }
  // Bytes this run still has to write for `planned` blobs (digest -> size),
  // entry overhead included, for the free-space check.
  std::uint64_t bytes_to_write(const std::map<std::string, std::uint64_t>& planned) const;
  // Writes oci-layout and index.json naming `refs` (ref name -> manifest
  // digest), closes every volume and saves the index, complete or not. The
  // releases and images join those an earlier run into DIR recorded.
  Status finish(const std::vector<ArchiveRelease>& releases, const std::vector<ArchiveImage>& images,
                const std::map<std::string, std::string>& refs, bool complete);
  ArchiveIndex index() const;

  // --- ImageDestination ---
  Task<Result<ManifestData>> get_manifest(const Repository& repo, const std::string& reference) override;
  Task<Result<std::string>> manifest_digest(const Repository& repo, const std::string& reference) override;
  Task<Status> put_manifest(const Repository& repo, const std::string& reference,
                            const ManifestData& manifest) override;
  Task<Status> blob_exists(const Repository& repo, const std::string& digest) override;
  Task<Result<MountOutcome>> mount_blob(const Repository& to, const std::string& digest,
                                        const Repository& from) override;
  Task<Result<std::uint64_t>> receive_blob(ImageSource& source, const Repository& from, const Repository& to,
                                           const Descriptor& blob, std::string upload_session) override;
  Task<Status> upload_blob(const Repository& repo, const std::string& digest, std::shared_ptr<const std::string> bytes,
                           std::string upload_session) override;
  Task<Status> check_access(const Repository& repo, bool push) override;

  struct Volume;  // a tar volume being written (archive.cpp)

 private:
  ArchiveWriter(std::string dir, ArchiveOptions options);
  Status resume();
  Status load_since();
  // Writes one entry from `reader` (`size` bytes that must hash to `digest`)
  // into a volume; blocking, on a thread of blob_writers_.
  Status write_blob(const std::string& digest, std::uint64_t size, BlobReader& reader);
  Status write_named(const std::string& path, const std::string& bytes, Volume& volume);
  // A volume with room for an entry of this many bytes, reserved for the caller
  // (waits while every writer is busy).
  Result<Volume*> take_volume(std::uint64_t entry_bytes);
  void give_back(Volume* volume);
  Status close_volume(Volume& volume);
  Result<std::unique_ptr<Volume>> open_volume(int number, std::uint64_t keep_bytes);
  // Rewrites the index (atomically) — at most once a second unless `force` —
  // after flushing the bytes it vouches for. Never called with mutex_ held.
  void save_index(bool force);

  const std::string dir_;
  const std::string host_;
  const ArchiveOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable free_volume_;
  ArchiveIndex index_;
  std::map<std::string, ReliedBlob> earlier_;     // blobs earlier archives carried (--since)
  std::vector<std::unique_ptr<Volume>> volumes_;  // open volumes (lanes), busy or free
  std::set<Volume*> busy_;
  std::mutex save_mutex_;  // taken before mutex_, never after
  std::chrono::steady_clock::time_point last_save_{};
  bool save_due_ = false;  // a volume closed: save soon
  // Last: its threads (each writing a blob into a volume) end before what they use.
  BlockingPool blob_writers_;
};

class ArchiveReader : public ImageSource, public SignatureSource {
 public:
  // Reads the index and checks every volume it names is there with its size:
  // one error naming every missing or wrong volume.
  static Result<std::unique_ptr<ArchiveReader>> open(const std::string& dir);

  const std::string& host() const { return host_; }
  const ArchiveIndex& index() const { return index_; }

  // --- ImageSource ---
  Task<Result<ManifestData>> get_manifest(const Repository& repo, const std::string& reference) override;
  Task<Result<std::string>> manifest_digest(const Repository& repo, const std::string& reference) override;
  Task<Status> blob_exists(const Repository& repo, const std::string& digest) override;
  std::unique_ptr<BlobReader> open_blob(const Repository& repo, const Descriptor& blob) override;

  // The cosign tags and the referrers (manifests recorded with their subject) the archive carries.
  Task<Result<std::vector<Attachment>>> attachments(const Repository& repo, const std::string& digest) override;

  // --- SignatureSource: the signatures the archive carries (checked again by the caller) ---
  Task<FetchedSignatures> release_signatures(const std::string& digest) override;

 private:
  ArchiveReader(std::string dir, ArchiveIndex index);
  Result<ManifestData> manifest_for(const Repository& repo, const std::string& reference) const;

  const std::string dir_;
  const std::string host_;
  const ArchiveIndex index_;
};

// Reads `size` bytes at `offset` of `path`, hashing them: the last read
// fails with DigestMismatch unless they hash to `digest`.
std::unique_ptr<BlobReader> open_file_range(std::string path, std::uint64_t offset, std::uint64_t size,
                                            std::string digest);

}  // namespace fastsync::release
