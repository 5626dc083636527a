#include "stages/run_ledger.h"

#include <fmt/format.h>

#include <numeric>

namespace fastsync::stages {

RunLedger::RunLedger(std::size_t images, std::vector<ReleaseGate> gates, RunControl& run)
    : run_(run), outcomes_(images) {
  run_.progress.images_total = images;
  for (auto& g : gates) gates_.emplace(g.release, std::move(g));
}

namespace {
std::vector<ReleaseGate> one_release(std::size_t images) {
  ReleaseGate gate;
  gate.release = images - 1;
  gate.components.resize(images - 1);
  std::iota(gate.components.begin(), gate.components.end(), 0);
  return {gate};
}
}  // namespace

RunLedger::RunLedger(std::size_t images, RunControl& run) : RunLedger(images, one_release(images), run) {}

void RunLedger::store_locked(const ImageOutcome& o) {
  if (outcomes_[o.id]) return;  // first outcome wins
  outcomes_[o.id] = o;
  switch (o.status) {
    case ImageStatus::Copied:
    case ImageStatus::BlobsIn:
      run_.progress.images_copied++;
      break;
    case ImageStatus::Skipped:
      run_.progress.images_skipped++;
      break;
    case ImageStatus::Planned:
      break;  // a dry run's "would copy"
    default:
      // As the summary tells it: what the run's stop ended is not a failure of its own.
      if (o.cancelled || o.fatal) {
        run_.progress.images_not_attempted++;
      } else {
        run_.progress.images_failed++;
      }
      break;
  }
}

std::optional<ImageJob> RunLedger::release_if_due_locked(const ReleaseGate& gate) {
  auto held = held_.find(gate.release);
  if (held == held_.end()) return std::nullopt;
  std::size_t failed = 0;
  for (auto id : gate.components) {
    if (!outcomes_[id]) return std::nullopt;
    if (outcomes_[id]->status == ImageStatus::Failed) ++failed;
  }
  ImageJob job = std::move(held->second);
  held_.erase(held);
  if (failed == 0 && !run_.cancelled()) return job;
  Error why = run_.cancelled()
                  ? run_.cancelled_error()
                  : Error::make(ErrorKind::Invalid, fmt::format("release image not pushed: {} of {} components failed",
                                                                failed, gate.components.size()));
  store_locked(ImageOutcome::failed(job, why));
  return std::nullopt;
}

std::vector<ImageJob> RunLedger::record(const ImageOutcome& outcome) {
  if (outcome.fatal) run_.cancel(outcome.error);
  std::lock_guard lock(mutex_);
  store_locked(outcome);
  std::vector<ImageJob> due;
  for (const auto& [id, gate] : gates_) {
    if (auto job = release_if_due_locked(gate)) due.push_back(std::move(*job));
  }
  return due;
}

std::optional<ImageJob> RunLedger::release_ready(ImageJob job) {
  std::lock_guard lock(mutex_);
  auto gate = gates_.find(job.id);
  if (gate == gates_.end()) return job;  // not gated
  held_[job.id] = std::move(job);
  return release_if_due_locked(gate->second);
}

std::vector<std::optional<ImageOutcome>> RunLedger::outcomes() const {
  std::lock_guard lock(mutex_);
  return outcomes_;
}

}  // namespace fastsync::stages
