// Stage 3: the image's manifest from the source (and, for a list, every
// child's), verified against their digests, and the blobs they reference.
#pragma once

#include "registry/api.h"
#include "registry/task.h"
#include "stages/types.h"

namespace fastsync::stages {

struct FetchResult {
  ImageJob job;  // with manifests and blobs filled in
  std::optional<Error> error;
};

class FetchManifests {
 public:
  FetchManifests(RegistryApi& api, const RunControl& run) : api_(api), run_(run) {}
  Task<FetchResult> operator()(ImageJob job) const;

 private:
  Task<Status> collect(ImageJob& job, const std::string& digest, int depth) const;
  RegistryApi& api_;
  const RunControl& run_;
};

}  // namespace fastsync::stages
