// Stage 4's work: one blob to the destination: already there, mounted, or
// streamed from the source with its digest checked on the way.
#pragma once

#include "registry/api.h"
#include "registry/task.h"
#include "stages/types.h"

namespace fastsync::stages {

class CopyBlob {
 public:
  CopyBlob(RegistryApi& api, const RunControl& run) : api_(api), run_(run) {}
  Task<BlobOutcome> operator()(BlobJob job) const;

 private:
  Task<Status> copy_from_source(const BlobJob& job, std::string upload_session) const;
  RegistryApi& api_;
  const RunControl& run_;
};

}  // namespace fastsync::stages
