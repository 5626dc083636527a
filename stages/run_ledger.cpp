#include "stages/run_ledger.h"

#include <fmt/format.h>

namespace fastsync::stages {

RunLedger::RunLedger(std::size_t images, RunControl& run)
    : run_(run), outcomes_(images), release_id_(images - 1) {
  run_.progress.images_total = images;
}

void RunLedger::store_locked(const ImageOutcome& o) {
  if (outcomes_[o.id]) return;  // first outcome wins
  outcomes_[o.id] = o;
  switch (o.status) {
    case ImageStatus::Copied: run_.progress.images_copied++; break;
    case ImageStatus::Skipped: run_.progress.images_skipped++; break;
    default: run_.progress.images_failed++; break;
  }
  if (o.id != release_id_) {
    ++components_finished_;
    if (o.status == ImageStatus::Failed) ++components_failed_;
  }
}

std::optional<ImageJob> RunLedger::release_if_due_locked() {
  if (!held_release_ || components_finished_ < release_id_) return std::nullopt;
  ImageJob job = std::move(*held_release_);
  held_release_.reset();
  if (components_failed_ == 0 && !run_.cancelled()) return job;
  std::string why = run_.cancelled()
                        ? run_.reason()
                        : fmt::format("release image not pushed: {} of {} components failed", components_failed_,
                                      release_id_);
  store_locked(ImageOutcome::failed(job, Error::make(ErrorKind::Cancelled, why)));
  return std::nullopt;
}

std::optional<ImageJob> RunLedger::record(const ImageOutcome& outcome) {
  if (outcome.fatal) run_.cancel(outcome.error);
  std::lock_guard lock(mutex_);
  store_locked(outcome);
  return release_if_due_locked();
}

std::optional<ImageJob> RunLedger::release_ready(ImageJob job) {
  std::lock_guard lock(mutex_);
  held_release_ = std::move(job);
  return release_if_due_locked();
}

std::vector<std::optional<ImageOutcome>> RunLedger::outcomes() const {
  std::lock_guard lock(mutex_);
  return outcomes_;
}

}  // namespace fastsync::stages
