// Stage 4's work: one blob to the destination: already there, mounted, or
// streamed from the source with its digest checked on the way.
#pragma once

#include "registry/core/endpoint.h"
#include "registry/core/task.h"
#include "stages/types.h"

namespace fastsync::stages {

class CopyBlob {
 public:
  CopyBlob(ImageSource& source, ImageDestination& dest, const RunControl& run)
      : source_(source), dest_(dest), run_(run) {}
  Task<BlobOutcome> operator()(BlobJob job) const;

 private:
  Task<Status> copy_from_source(const BlobJob& job, std::string upload_session) const;
  ImageSource& source_;
  ImageDestination& dest_;
  const RunControl& run_;
};

}  // namespace fastsync::stages
