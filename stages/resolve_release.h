// Stage 1: the release -> the plan (every component, then the release image).
#pragma once

#include <optional>
#include <vector>

#include "registry/api.h"
#include "registry/task.h"
#include "release/release.h"
#include "stages/types.h"

namespace fastsync::stages {

struct MirrorSpec {
  std::string version;
  std::string arch = "x86_64";
  std::string platform;  // list child that holds the payload (multi)
  Repository source;     // --source-registry
  Repository dest;       // --dest-registry / --dest-repo
  bool check_destination = true;  // fail early if the destination refuses our credentials
};

struct Plan {
  release::Release release;
  std::vector<ImageJob> images;  // components in image-references order, the release image last
  const ImageJob& release_job() const { return images.back(); }
};

struct ResolveResult {
  std::optional<Plan> plan;
  std::optional<Error> error;
};

class ResolveRelease {
 public:
  ResolveRelease(RegistryApi& api, const RunControl& run, MirrorSpec spec)
      : api_(api), run_(run), spec_(std::move(spec)) {}
  Task<ResolveResult> operator()() const;

 private:
  RegistryApi& api_;
  const RunControl& run_;
  MirrorSpec spec_;
};

}  // namespace fastsync::stages
