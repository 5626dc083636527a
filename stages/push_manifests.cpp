#include "stages/push_manifests.h"

namespace fastsync::stages {

Task<ImageOutcome> PushManifests::operator()(ImageJob job) const {
  if (run_.cancelled()) co_return ImageOutcome::failed(job, run_.cancelled_error());
  if (blobs_only_) {
    ImageOutcome o;
    o.id = job.id;
    o.status = job.present ? ImageStatus::Skipped : ImageStatus::BlobsIn;
    co_return o;
  }
  if (job.present) co_return co_await tag_existing(std::move(job));
  for (std::size_t i = 0; i < job.manifests.size(); ++i) {
    bool top = i + 1 == job.manifests.size();
    const ManifestData& m = job.manifests[i];
    // The top manifest goes up under its tag, which also stores it by digest.
    auto pushed = co_await dest_.put_manifest(job.dest, top && !job.tag.empty() ? job.tag : m.digest, m);
    if (!pushed) co_return ImageOutcome::failed(job, pushed.error());
  }
  for (const auto& tag : job.extra_tags) {
    auto pushed = co_await dest_.put_manifest(job.dest, tag, job.manifests.back());
    if (!pushed) co_return ImageOutcome::failed(job, pushed.error());
  }
  // Signatures after what they sign, under cosign's tag (a referrer by its digest).
  for (const auto& attached : job.attachments) {
    for (std::size_t i = 0; i < attached.manifests.size(); ++i) {
      bool top = i + 1 == attached.manifests.size();
      const ManifestData& m = attached.manifests[i];
      auto pushed = co_await dest_.put_manifest(job.dest, top && !attached.tag.empty() ? attached.tag : m.digest, m);
      if (!pushed) co_return ImageOutcome::failed(job, pushed.error());
    }
    run_.progress.attachments_copied++;
  }
  ImageOutcome o;
  o.id = job.id;
  o.status = ImageStatus::Copied;
  o.bytes = job.size();
  co_return o;
}

Task<ImageOutcome> PushManifests::tag_existing(ImageJob job) const {
  ImageOutcome o;
  o.id = job.id;
  o.status = ImageStatus::Skipped;
  std::vector<std::string> tags;
  if (job.tagged != true && !job.tag.empty()) tags.push_back(job.tag);
  tags.insert(tags.end(), job.extra_tags.begin(), job.extra_tags.end());
  // The bytes the check stage found, when it read them; else the destination's own copy, read once.
  std::optional<ManifestData> manifest = job.found_manifest;
  for (const auto& tag : tags) {
    // The check stage may already know the tag is missing (or names another image).
    bool known_untagged = tag == job.tag && job.tagged == false;
    if (!known_untagged) {
      auto tagged = co_await dest_.manifest_digest(job.dest, tag);
      if (tagged && *tagged == job.digest) continue;
    }
    if (!manifest) {
      auto fetched = co_await dest_.get_manifest(job.dest, job.digest);
      if (!fetched) co_return ImageOutcome::failed(job, fetched.error());
      manifest = std::move(*fetched);
    }
    auto pushed = co_await dest_.put_manifest(job.dest, tag, *manifest);
    if (!pushed) co_return ImageOutcome::failed(job, pushed.error());
  }
  co_return o;
}

}  // namespace fastsync::stages
