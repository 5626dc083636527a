// Stage 2: does the destination already hold this image's digest? Then only
// its tag may be missing and nothing is pulled.
#pragma once

#include "registry/api.h"
#include "registry/task.h"
#include "stages/types.h"

namespace fastsync::stages {

struct CheckResult {
  ImageJob job;  // job.present says what was found
  std::optional<Error> error;
};

class CheckDestination {
 public:
  CheckDestination(RegistryApi& api, const RunControl& run) : api_(api), run_(run) {}
  Task<CheckResult> operator()(ImageJob job) const;

 private:
  RegistryApi& api_;
  const RunControl& run_;
};

}  // namespace fastsync::stages
