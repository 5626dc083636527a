// Stage 5: manifests to the destination once every blob they reference is
// there: list children by digest first, then the image under its tag. An image
// the destination already had only gets its tag (from the destination's own copy).
#pragma once

#include "registry/api.h"
#include "registry/task.h"
#include "stages/types.h"

namespace fastsync::stages {

class PushManifests {
 public:
  PushManifests(RegistryApi& api, RunControl& run) : api_(api), run_(run) {}
  Task<ImageOutcome> operator()(ImageJob job) const;

 private:
  Task<ImageOutcome> tag_existing(ImageJob job) const;
  RegistryApi& api_;
  RunControl& run_;
};

}  // namespace fastsync::stages
