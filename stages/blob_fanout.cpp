#include "stages/blob_fanout.h"

namespace fastsync::stages {

BlobFanout::Added BlobFanout::add(ImageJob job) {
  Added out;
  std::lock_guard lock(mutex_);
  for (const auto& b : job.blobs) {
    auto it = blobs_.find(key(job.dest, b.digest));
    if (it != blobs_.end() && it->second.state == State::Failed) {
      out.failed = ImageOutcome::failed(job, *it->second.error);
      return out;
    }
  }
  Waiting w;
  for (const auto& b : job.blobs) {
    if (owned_ && !owned_->count(b.digest)) continue;  // another shard's
    auto [it, inserted] = blobs_.try_emplace(key(job.dest, b.digest));
    if (inserted) {
      auto fetched = fetched_.find(b.digest);
      start_locked(BlobJob{b, job.source, job.dest, fetched == fetched_.end() ? nullptr : fetched->second}, out.start);
      progress_.blobs_total++;
      progress_.bytes_planned += b.size;
    }
    if (it->second.state == State::InFlight) {
      it->second.waiting.push_back(job.id);
      ++w.missing;
    }
  }
  if (w.missing == 0) {
    out.ready = std::move(job);
  } else {
    std::size_t id = job.id;
    w.job = std::move(job);
    images_.emplace(id, std::move(w));
  }
  return out;
}

// The first repository of a registry to need a blob copies it; another one
// mounts that copy once it is in. Liveness: a waiting copy is started by the
// first one's outcome, which every blob job has (done, failed or cancelled).
void BlobFanout::start_locked(BlobJob job, std::vector<BlobJob>& start) {
  auto [first, fresh] = first_repository_.try_emplace(registry_key(job.dest, job.blob.digest), job.dest);
  if (fresh) {
    start.push_back(std::move(job));
    return;
  }
  const Blob& there = blobs_.at(key(first->second, job.blob.digest));
  if (there.state != State::Failed) job.mount_from = first->second;
  if (there.state == State::InFlight) {
    mount_waiting_[key(first->second, job.blob.digest)].push_back(std::move(job));
  } else {
    start.push_back(std::move(job));
  }
}

BlobFanout::Completed BlobFanout::complete(const BlobOutcome& outcome) {
  Completed out;
  std::lock_guard lock(mutex_);
  auto it = blobs_.find(key(outcome.dest, outcome.digest));
  if (it == blobs_.end()) return out;
  Blob& blob = it->second;
  if (outcome.error) {
    blob.state = State::Failed;
    blob.error = outcome.error;
    if (outcome.error->kind == ErrorKind::Cancelled || outcome.fatal) {
      progress_.blobs_not_attempted++;  // what the run's stop ended is not a failure of its own
    } else {
      progress_.blobs_failed++;
    }
  } else {
    blob.state = State::Done;
    progress_.bytes_done += outcome.size;
    switch (outcome.how) {
      case BlobHow::AlreadyPresent:
        progress_.blobs_present++;
        break;
      case BlobHow::Mounted:
        progress_.blobs_mounted++;
        break;
      case BlobHow::Copied:
        progress_.blobs_copied++;
        break;
    }
  }
  for (std::size_t id : blob.waiting) {
    auto img = images_.find(id);
    if (img == images_.end()) continue;  // already failed through another blob
    if (outcome.error) {
      out.failed.push_back(ImageOutcome::failed(img->second.job, *outcome.error));
      images_.erase(img);
    } else if (--img->second.missing == 0) {
      out.ready.push_back(std::move(img->second.job));
      images_.erase(img);
    }
  }
  blob.waiting.clear();
  if (auto followers = mount_waiting_.find(it->first); followers != mount_waiting_.end()) {
    for (auto& job : followers->second) {
      if (outcome.error) job.mount_from.reset();  // nothing to mount: they copy from the source
      out.start.push_back(std::move(job));
    }
    mount_waiting_.erase(followers);
  }
  return out;
}

}  // namespace fastsync::stages
