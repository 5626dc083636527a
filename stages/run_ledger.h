// Where every image's outcome lands. Also the release gates: each release image
// is pushed last, and only when every component it names made it, so a
// destination that has a release tag has everything that release names. With
// several releases in one run, each has its own gate over its own components
// (a component shared by several releases counts for each).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "stages/types.h"

namespace fastsync::stages {

struct ReleaseGate {
  std::size_t release = 0;              // the release image's id
  std::vector<std::size_t> components;  // ids of the images it names
};

class RunLedger {
 public:
  RunLedger(std::size_t images, std::vector<ReleaseGate> gates, RunControl& run);
  // One release: components 0..images-2, the release image last.
  RunLedger(std::size_t images, RunControl& run);

  // Records a finished image; returns the release jobs that just became due.
  std::vector<ImageJob> record(const ImageOutcome& outcome);
  // A release image's blobs are in (or it is present): push it now or hold it.
  std::optional<ImageJob> release_ready(ImageJob job);

  std::vector<std::optional<ImageOutcome>> outcomes() const;

 private:
  std::optional<ImageJob> release_if_due_locked(const ReleaseGate& gate);
  void store_locked(const ImageOutcome& outcome);

  RunControl& run_;
  mutable std::mutex mutex_;
  std::vector<std::optional<ImageOutcome>> outcomes_;
  std::map<std::size_t, ReleaseGate> gates_;  // by release id
  std::map<std::size_t, ImageJob> held_;      // release images waiting at their gate
};

}  // namespace fastsync::stages
