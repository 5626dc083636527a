// Where every image's outcome lands. Also the release gate: the release image
// is pushed last, and only when every component made it, so a destination that
// has the release tag has everything it names.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

#include "stages/types.h"

namespace fastsync::stages {

class RunLedger {
 public:
  // `images` counts components plus the release image (the last id).
  RunLedger(std::size_t images, RunControl& run);

  // Records a finished image; returns the release job if it just became due.
  std::optional<ImageJob> record(const ImageOutcome& outcome);
  // The release image's blobs are in (or it is present): push it now or hold it.
  std::optional<ImageJob> release_ready(ImageJob job);

  std::vector<std::optional<ImageOutcome>> outcomes() const;

 private:
  std::optional<ImageJob> release_if_due_locked();
  void store_locked(const ImageOutcome& outcome);

  RunControl& run_;
  mutable std::mutex mutex_;
  std::vector<std::optional<ImageOutcome>> outcomes_;
  std::size_t release_id_;
  std::size_t components_finished_ = 0;
  std::size_t components_failed_ = 0;
  std::optional<ImageJob> held_release_;
};

}  // namespace fastsync::stages
