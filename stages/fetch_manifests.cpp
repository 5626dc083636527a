#include "stages/fetch_manifests.h"

#include <fmt/format.h>

#include <set>

namespace fastsync::stages {

Task<FetchResult> FetchManifests::operator()(ImageJob job) const {
  if (run_.cancelled()) co_return FetchResult{std::move(job), run_.cancelled_error()};
  job.manifests.clear();
  job.blobs.clear();
  auto status = co_await collect(job, job.digest, 0);
  if (!status) co_return FetchResult{std::move(job), status.error()};
  // One entry per digest: an image shares layers with its siblings in a list.
  std::set<std::string> seen;
  std::vector<Descriptor> unique;
  for (auto& b : job.blobs) {
    if (seen.insert(b.digest).second) unique.push_back(std::move(b));
  }
  job.blobs = std::move(unique);
  co_return FetchResult{std::move(job), std::nullopt};
}

// Depth-first so children land in `manifests` before their list.
Task<Status> FetchManifests::collect(ImageJob& job, const std::string& digest, int depth) const {
  auto manifest = co_await api_.get_manifest(job.source, digest);
  if (!manifest) co_return manifest.error();
  auto parsed = parse_manifest(manifest->bytes, manifest->media_type);
  if (!parsed) {
    co_return Error::make(ErrorKind::Invalid,
                          fmt::format("{}@{}: {}", job.source.str(), digest, parsed.error().message));
  }
  if (parsed->is_list) {
    if (depth >= 2) {
      co_return Error::make(ErrorKind::Invalid, fmt::format("{}@{}: manifest lists nested too deep", job.source.str(), digest));
    }
    for (const auto& child : parsed->children) {
      // A child already collected (two platforms, one image) is pushed once.
      bool known = false;
      for (const auto& m : job.manifests) known = known || m.digest == child.digest;
      if (known) continue;
      auto s = co_await collect(job, child.digest, depth + 1);
      if (!s) co_return s;
    }
  } else {
    job.blobs.push_back(parsed->config);
    for (const auto& layer : parsed->layers) job.blobs.push_back(layer);
  }
  job.manifests.push_back(std::move(*manifest));
  co_return Status{};
}

}  // namespace fastsync::stages
