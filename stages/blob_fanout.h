// Stage 4's bookkeeping: every unique blob of the run is started once, and
// each image waits until all of its blobs are at the destination. A blob that
// two repositories of one destination registry need (a release component and
// an additional image sharing a base layer) is fetched once: the second
// repository waits for the first copy and mounts it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "stages/types.h"

namespace fastsync::stages {

class BlobFanout {
 public:
  explicit BlobFanout(Progress& progress) : progress_(progress) {}
  // Blobs already downloaded (while resolving the release): uploaded from memory.
  void set_fetched(std::map<std::string, std::shared_ptr<const std::string>> fetched) { fetched_ = std::move(fetched); }
  // A shard's run: only these blobs are copied; an image waits for no other.
  void set_owned(std::set<std::string> owned) { owned_ = std::move(owned); }

  struct Added {
    std::vector<BlobJob> start;          // blobs no one has started yet
    std::optional<ImageJob> ready;       // the image, if none of its blobs is missing
    std::optional<ImageOutcome> failed;  // one of its blobs already failed
  };
  // Takes an image whose manifests are fetched; keeps it until its blobs are in.
  Added add(ImageJob job);

  struct Completed {
    std::vector<BlobJob> start;  // blobs that waited for this one, to mount it (or copy it, if it failed)
    std::vector<ImageJob> ready;
    std::vector<ImageOutcome> failed;
  };
  Completed complete(const BlobOutcome& outcome);

 private:
  enum class State { InFlight, Done, Failed };
  struct Blob {
    State state = State::InFlight;
    std::optional<Error> error;
    std::vector<std::size_t> waiting;
  };
  struct Waiting {
    ImageJob job;
    std::size_t missing = 0;
  };
  static std::string key(const Repository& dest, const std::string& digest) { return dest.at(digest); }
  static std::string registry_key(const Repository& dest, const std::string& digest) {
    return dest.registry + "@" + digest;
  }
  void start_locked(BlobJob job, std::vector<BlobJob>& start);

  Progress& progress_;
  std::map<std::string, std::shared_ptr<const std::string>> fetched_;
  std::optional<std::set<std::string>> owned_;
  std::mutex mutex_;
  std::map<std::string, Blob> blobs_;
  std::map<std::size_t, Waiting> images_;
  std::map<std::string, Repository> first_repository_;         // registry@digest -> where it is copied first
  std::map<std::string, std::vector<BlobJob>> mount_waiting_;  // key -> copies into other repositories
};

}  // namespace fastsync::stages
