// fastsync-archive.json: what an archive directory holds and where.
//
//   {"format": "fastsync-archive/1", "complete": true,
//    "releases":  [{"version", "arch", "tag", "digest", "source", "signatures": [base64, …]}],
//    "images":    [{"section", "name", "source", "repository", "digest", "tag"?}],  // an image set's others
//    "manifests": [{"digest", "media_type", "size", "tags": ["openshift/release:4.20.8-x86_64", …], "subject"?}],
//    "blobs":     [{"digest", "size", "volume", "offset"}],    // manifests are blobs too
//    "volumes":   [{"name", "size", "sha256", "closed"}],
//    "relies_on": [{"digest", "size", "archive"}],             // in earlier archives (--since), not here
//    "since":     ["<earlier archive>", …]}
//
// A blob's bytes are at `offset` in volume number `volume` (1-based,
// fastsync-<volume:06>.tar): random access, no extraction.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/result.h"

namespace fastsync::release {

inline constexpr std::string_view kArchiveIndexName = "fastsync-archive.json";
inline constexpr std::string_view kArchiveFormat = "fastsync-archive/1";

// "fastsync-000001.tar"
std::string volume_name(int number);

struct ArchiveRelease {
  std::string version;
  std::string arch;
  std::string tag;  // where the release image is tagged in the archive ("openshift/release:4.20.8-x86_64")
  std::string digest;
  std::string source;  // the repository the cluster pulls it from (quay.io/openshift-release-dev/ocp-release)
  std::vector<std::string> signatures;  // its GPG signatures, verified when written (and again when read)
};

// An image an image set names besides its releases (additionalImages), as
// the far side needs it: where the cluster pulls it from, and where it is in
// the archive.
struct ArchiveImage {
  std::string section;  // the image set's section: "additionalImages"
  std::string name;     // as the file writes it
  std::string source;   // registry/path the cluster asks for (the mirror sets' source)
  std::string
      repository;  // its repository path inside the archive (and at the destination, before --dest-registry's prefix)
  std::string digest;
  std::string tag;  // empty: named by digest only
};

struct ArchiveManifest {
  std::string digest;
  std::string media_type;
  std::uint64_t size = 0;
  std::vector<std::string> tags;  // "repository:tag"
  std::string subject;            // a referrer: the image digest it is attached to
};

struct ArchiveBlob {
  std::string digest;
  std::uint64_t size = 0;
  int volume = 0;
  std::uint64_t offset = 0;
};

struct ArchiveVolume {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;   // of the whole volume file; set once closed
  bool closed = false;  // false: being written (an interrupted run resumes it)
};

struct ReliedBlob {
  std::string digest;
  std::uint64_t size = 0;
  std::string archive;  // which earlier archive carried it
};

struct ArchiveIndex {
  bool complete = false;  // every image of every release is in (or relied on)
  std::vector<ArchiveRelease> releases;
  std::vector<ArchiveImage> images;
  std::map<std::string, ArchiveManifest> manifests;  // by digest
  std::map<std::string, ArchiveBlob> blobs;          // by digest
  std::vector<ArchiveVolume> volumes;                // volume n at [n-1]
  std::map<std::string, ReliedBlob> relies_on;       // by digest
  std::vector<std::string> since;

  // Errors name `origin` and the field.
  static Result<ArchiveIndex> parse(std::string_view json, const std::string& origin);
  std::string to_json() const;

  // The manifest `reference` names — a digest, or a tag in `repository` (any
  // repository when empty) — or nullptr. An image set's archive holds the same
  // tag in several repositories.
  const ArchiveManifest* find_manifest(const std::string& reference, const std::string& repository = {}) const;
};

}  // namespace fastsync::release
