// Stage 5: manifests to the destination once every blob they reference is
// there: list children by digest first, then the image under its tag. An image
// the destination already had only gets its tag (from the destination's own copy).
// A --blobs-only run pushes nothing here: the image is recorded as having its blobs in.
#pragma once

#include "registry/core/endpoint.h"
#include "registry/core/task.h"
#include "stages/types.h"

namespace fastsync::stages {

class PushManifests {
 public:
  PushManifests(ImageDestination& dest, RunControl& run, bool blobs_only = false)
      : dest_(dest), run_(run), blobs_only_(blobs_only) {}
  Task<ImageOutcome> operator()(ImageJob job) const;

 private:
  Task<ImageOutcome> tag_existing(ImageJob job) const;
  ImageDestination& dest_;
  RunControl& run_;
  bool blobs_only_;
};

}  // namespace fastsync::stages
