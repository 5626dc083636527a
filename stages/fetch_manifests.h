// Stage 3: the image's manifest from the source (and, for a list, every
// child's), verified against their digests, and the blobs they reference;
// with sigstore on, also what is attached to each of those digests (cosign
// .sig tags, referrers), whose blobs join the image's.
#pragma once

#include "registry/core/endpoint.h"
#include "registry/core/task.h"
#include "stages/types.h"

namespace fastsync::stages {

struct FetchResult {
  ImageJob job;  // with manifests and blobs filled in
  std::optional<Error> error;
};

class FetchManifests {
 public:
  FetchManifests(ImageSource& source, RunControl& run, bool sigstore = false)
      : source_(source), run_(run), sigstore_(sigstore) {}
  Task<FetchResult> operator()(ImageJob job) const;

 private:
  Task<Status> collect(const Repository& source, const std::string& digest, int depth,
                       std::vector<ManifestData>& manifests, std::vector<Descriptor>& blobs) const;
  Task<Status> collect_attachments(ImageJob& job) const;
  ImageSource& source_;
  RunControl& run_;
  bool sigstore_;
};

}  // namespace fastsync::stages
