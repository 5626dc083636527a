#include "stages/fetch_manifests.h"

#include <fmt/format.h>

#include <set>

namespace fastsync::stages {

Task<FetchResult> FetchManifests::operator()(ImageJob job) const {
  if (run_.cancelled()) co_return FetchResult{std::move(job), run_.cancelled_error()};
  if (job.fetched) co_return FetchResult{std::move(job), std::nullopt};
  job.manifests.clear();
  job.blobs.clear();
  job.attachments.clear();
  auto status = co_await collect(job.source, job.digest, 0, job.manifests, job.blobs);
  if (!status) co_return FetchResult{std::move(job), status.error()};
  if (sigstore_) {
    auto attached = co_await collect_attachments(job);
    if (!attached) co_return FetchResult{std::move(job), attached.error()};
  }
  // One entry per digest: an image shares layers with its siblings in a list.
  std::set<std::string> seen;
  std::vector<Descriptor> unique;
  for (auto& b : job.blobs) {
    if (seen.insert(b.digest).second) unique.push_back(std::move(b));
  }
  job.blobs = std::move(unique);
  job.fetched = true;
  co_return FetchResult{std::move(job), std::nullopt};
}

// Depth-first so children land in `manifests` before their list.
Task<Status> FetchManifests::collect(const Repository& source, const std::string& digest, int depth,
                                     std::vector<ManifestData>& manifests, std::vector<Descriptor>& blobs) const {
  auto manifest = co_await source_.get_manifest(source, digest);
  if (!manifest) co_return manifest.error();
  auto parsed = parse_manifest(manifest->bytes, manifest->media_type);
  if (!parsed) {
    co_return Error::make(ErrorKind::Invalid, fmt::format("{}@{}: {}", source.str(), digest, parsed.error().message));
  }
  if (parsed->is_list) {
    if (depth >= 2) {
      co_return Error::make(ErrorKind::Invalid,
                            fmt::format("{}@{}: manifest lists nested too deep", source.str(), digest));
    }
    for (const auto& child : parsed->children) {
      // A child already collected (two platforms, one image) is pushed once.
      bool known = false;
      for (const auto& m : manifests) known = known || m.digest == child.digest;
      if (known) continue;
      auto s = co_await collect(source, child.digest, depth + 1, manifests, blobs);
      if (!s) co_return s;
    }
  } else {
    blobs.push_back(parsed->config);
    for (const auto& layer : parsed->layers) blobs.push_back(layer);
  }
  manifests.push_back(std::move(*manifest));
  co_return Status{};
}

// The image and each list child may have signatures: each digest is asked.
Task<Status> FetchManifests::collect_attachments(ImageJob& job) const {
  std::vector<std::string> subjects;
  for (const auto& m : job.manifests) subjects.push_back(m.digest);
  for (const auto& subject : subjects) {
    auto found = co_await source_.attachments(job.source, subject);
    if (!found) co_return found.error();
    for (const auto& a : *found) {
      ImageJob::Attached attached;
      attached.tag = a.tag;
      // Attachments are images (or lists of them) but never carry attachments of their own here.
      auto s = co_await collect(job.source, a.digest, 1, attached.manifests, job.blobs);
      if (!s) co_return s;
      job.attachments.push_back(std::move(attached));
      run_.progress.attachments_found++;
    }
  }
  co_return Status{};
}

}  // namespace fastsync::stages
