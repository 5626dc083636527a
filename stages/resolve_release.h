// Stage 1: the release -> the plan (every component, then the release image).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "registry/api.h"
#include "registry/task.h"
#include "release/release.h"
#include "stages/types.h"
#include "stages/verify_release.h"

namespace fastsync::stages {

struct MirrorSpec {
  std::string version;
  std::string arch = "x86_64";
  std::string platform;  // list child that holds the payload (multi)
  Repository source;     // --source-registry
  Repository dest;       // --dest-registry / --dest-repo
  bool check_destination = true;  // fail early if the destination refuses our credentials
  SignatureSettings signatures;    // the release's GPG signatures
  bool sigstore = true;            // cosign signatures (sha256-<hex>.sig tags, referrers) travel with images
};

struct Plan {
  release::Release release;
  std::vector<ImageJob> images;  // components in image-references order, the release image last
  SignatureCheck signatures;     // the release's GPG signatures, verified
  const ImageJob& release_job() const { return images.back(); }
};

struct ResolveResult {
  std::optional<Plan> plan;
  std::optional<Error> error;
};

class ResolveRelease {
 public:
  // `known`: a plan resolved before the graph ran (to size an archive), handed on as is.
  ResolveRelease(RegistryApi& api, const RunControl& run, MirrorSpec spec, std::optional<Plan> known = std::nullopt)
      : api_(api), run_(run), spec_(std::move(spec)), known_(std::move(known)) {}
  Task<ResolveResult> operator()() const;

 private:
  RegistryApi& api_;
  const RunControl& run_;
  MirrorSpec spec_;
  std::optional<Plan> known_;
};

// Every unique blob (and manifest) the plan's images need, with its size:
// fetches their manifests (at most `concurrency` at once). For sizing an archive.
Task<Result<std::map<std::string, std::uint64_t>>> plan_blob_sizes(RegistryApi& api, RunControl& run,
                                                                   const Plan& plan);

}  // namespace fastsync::stages
