// The run's two ends as the stages see them: an image source and an image
// destination. The real ones are the registry client (HTTP through the engine)
// and the archive endpoints; unit tests use an in-memory fake. Nothing here
// includes curl.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "registry/core/manifest.h"
#include "registry/core/result.h"
#include "registry/core/task.h"

namespace fastsync {

struct Repository {
  std::string registry;  // host[:port]
  std::string path;      // e.g. openshift/release
  std::string str() const { return registry + "/" + path; }
  // "registry/path@digest": the image or blob by digest, and the key it is known by.
  std::string at(const std::string& digest) const { return str() + "@" + digest; }
  bool operator==(const Repository&) const = default;
  bool operator<(const Repository& o) const { return str() < o.str(); }
};

// A blob's bytes, read with blocking calls (never on the engine thread).
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // Bytes read, 0 at the end (size and digest verified), or the error.
  virtual Result<std::size_t> read(char* buffer, std::size_t capacity) = 0;
};

// A cross-repository mount. When the destination would not mount, it may have
// opened an upload session instead: the copy goes into that one.
struct MountOutcome {
  bool mounted = false;
  std::string upload_session;  // opaque; empty = none
};

// Where a blob stands at a destination before it is copied.
struct BlobProbe {
  bool present = false;        // nothing to move
  bool mounted = false;        // present because the probe mounted it from another repository
  std::string upload_session;  // absent, and the endpoint opened the upload the copy is to use (or empty)
};

// Where an image stands at a destination: its manifest there by digest, and
// whether a tag already points at it.
struct ManifestStanding {
  bool present = false;                  // the digest is there
  std::optional<bool> tagged;            // whether the tag asked about names it, if it was asked
  std::optional<ManifestData> manifest;  // its bytes, when they were asked for
};

// An artifact attached to an image: a cosign signature under the tag
// sha256-<hex>.sig, or an OCI 1.1 referrer (a manifest whose subject is the
// image; no tag).
struct Attachment {
  std::string tag;  // "sha256-<hex>.sig", or empty for a referrer
  std::string digest;
};
// cosign's tag for the signatures of `digest`: "sha256-<hex>.sig".
std::string sigstore_tag(const std::string& digest);
// Adds the referrers `digests` to `found`, each once: one already there (as a
// tagged signature, say) is not listed again.
void add_referrers(std::vector<Attachment>& found, const std::vector<std::string>& digests);

// Opens another endpoint's blob for reading, when the receiving endpoint is
// ready for the bytes (and again for each new attempt).
using BlobOpener = std::function<std::unique_ptr<BlobReader>()>;

// Where images come from: registries (any number of hosts, through one
// client) or an archive carried across an air gap. As containers/image splits
// it: a source reads, a destination writes; the registry client is both, an
// archive reader only a source, an archive writer only a destination.
class ImageSource {
 public:
  virtual ~ImageSource() = default;

  virtual Task<Result<ManifestData>> get_manifest(const Repository& repo, const std::string& reference) = 0;
  // Digest of a manifest by tag or digest; ErrorKind::NotFound if absent.
  virtual Task<Result<std::string>> manifest_digest(const Repository& repo, const std::string& reference) = 0;
  // ErrorKind::NotFound if absent.
  virtual Task<Status> blob_exists(const Repository& repo, const std::string& digest) = 0;
  // A blob's bytes, verified as they are read (blocking reads, never on the engine thread).
  virtual std::unique_ptr<BlobReader> open_blob(const Repository& repo, const Descriptor& blob) = 0;
  // What is attached to `digest` in `repo`: its cosign signature tag, and the
  // referrers where the source keeps them. None is an empty list, not an error.
  // The default asks for the tag only (manifest_digest).
  virtual Task<Result<std::vector<Attachment>>> attachments(const Repository& repo, const std::string& digest);
};

// A small blob (an image configuration) read whole, off the engine thread;
// larger than `max_bytes` is an error.
Task<Result<std::string>> read_whole_blob(ImageSource& source, const Repository& repo, const Descriptor& blob,
                                          std::size_t max_bytes = 64u << 20);

class ImageDestination {
 public:
  virtual ~ImageDestination() = default;

  // Makes sure the credentials for `repo` work (push too when asked), so a
  // wrong password is one clear error before any work starts.
  virtual Task<Status> check_access(const Repository& repo, bool push) = 0;
  // Is manifest `digest` in `repo`, and does `tag` name it? With `with_bytes`
  // the manifest comes back too (GETs instead of HEADs). Absent is a value,
  // not an error. The default asks the digest only (tagged stays unknown); a
  // destination may ask the tag first where a rerun will mostly find it, as one
  // request then settles both.
  virtual Task<Result<ManifestStanding>> find_manifest(Repository repo, std::string digest, std::string tag,
                                                       bool with_bytes);
  // What the destination holds already (a tag to check, a manifest to re-tag from its own copy).
  virtual Task<Result<ManifestData>> get_manifest(const Repository& repo, const std::string& reference) = 0;
  virtual Task<Result<std::string>> manifest_digest(const Repository& repo, const std::string& reference) = 0;
  virtual Task<Status> blob_exists(const Repository& repo, const std::string& digest) = 0;
  // A mount from another repository of this destination.
  virtual Task<Result<MountOutcome>> mount_blob(const Repository& to, const std::string& digest,
                                                const Repository& from) = 0;
  // Does `to` hold the blob? With `mount_from` (another repository of this
  // destination) a mount is tried as well. The default asks blob_exists, then
  // mount_blob; a destination may answer with fewer requests (a registry's
  // fresh repository: one mount request that opens the upload if it fails).
  // ErrorKind other than NotFound: the presence is unknown (the copy is still safe).
  virtual Task<Result<BlobProbe>> probe_blob(Repository to, std::string digest, std::optional<Repository> mount_from);
  // The blob from `source` (its repository `from`) into `to`, verified as it
  // streams; `upload_session` is one a probe left open (or empty). Returns the
  // bytes moved. Registry to registry it is one streamed GET -> PUT; from
  // another kind of source, the bytes come through the source's open_blob.
  virtual Task<Result<std::uint64_t>> receive_blob(ImageSource& source, const Repository& from, const Repository& to,
                                                   const Descriptor& blob, std::string upload_session) = 0;
  // Bytes already in memory (and already verified).
  virtual Task<Status> upload_blob(const Repository& repo, const std::string& digest,
                                   std::shared_ptr<const std::string> bytes, std::string upload_session) = 0;
  virtual Task<Status> put_manifest(const Repository& repo, const std::string& reference,
                                    const ManifestData& manifest) = 0;
};

}  // namespace fastsync
