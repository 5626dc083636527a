// Stage 2: does the destination already hold this image's digest? Then only
// its tag may be missing and nothing is pulled.
#pragma once

#include "registry/core/endpoint.h"
#include "registry/core/task.h"
#include "stages/types.h"

namespace fastsync::stages {

struct CheckResult {
  ImageJob job;  // job.present says what was found
  std::optional<Error> error;
};

class CheckDestination {
 public:
  CheckDestination(ImageSource& source, ImageDestination& dest, RunControl& run, bool sigstore = false)
      : source_(source), dest_(dest), run_(run), sigstore_(sigstore) {}
  Task<CheckResult> operator()(ImageJob job) const;

 private:
  // A present image whose source has signatures the destination lacks is copied
  // again (its blobs and manifests are found present): false then.
  Task<Result<bool>> attachments_present(const ImageJob& job, const ManifestData& manifest) const;
  // The image is to be copied; `why` the check failed, if it did (fatal ones end it).
  CheckResult absent(ImageJob job, std::optional<Error> why) const;
  ImageSource& source_;
  ImageDestination& dest_;
  RunControl& run_;
  bool sigstore_;
};

}  // namespace fastsync::stages
