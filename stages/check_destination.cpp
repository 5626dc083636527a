#include "stages/check_destination.h"

#include "registry/core/log.h"

namespace fastsync::stages {

Task<CheckResult> CheckDestination::operator()(ImageJob job) const {
  if (run_.cancelled()) co_return CheckResult{std::move(job), run_.cancelled_error()};
  if (job.known_failure) {
    auto why = *job.known_failure;
    co_return CheckResult{std::move(job), std::move(why)};
  }
  // With sigstore the bytes are needed to see which children may be signed:
  // one GET answers both questions (a HEAD would be a second request).
  auto standing = co_await dest_.find_manifest(job.dest, job.digest, job.tag, sigstore_);
  if (!standing) co_return absent(std::move(job), standing.error());
  if (!standing->present) co_return absent(std::move(job), std::nullopt);
  job.tagged = standing->tagged;
  // Kept for re-tagging: the push stage puts these bytes under the missing tags.
  job.found_manifest = standing->manifest;
  if (sigstore_) {
    auto signed_too = co_await attachments_present(job, *standing->manifest);
    if (!signed_too) co_return CheckResult{std::move(job), signed_too.error()};
    job.present = *signed_too;
    co_return CheckResult{std::move(job), std::nullopt};
  }
  job.present = true;
  co_return CheckResult{std::move(job), std::nullopt};
}

CheckResult CheckDestination::absent(ImageJob job, std::optional<Error> why) const {
  if (why && (is_run_fatal(*why) || why->kind == ErrorKind::Cancelled)) return CheckResult{std::move(job), why};
  if (why && why->kind != ErrorKind::NotFound) {
    // A failing check never stops a copy: copying is always safe, just slower.
    logging::debug("{}: destination check failed ({}), copying", job.dest_ref(), why->message);
  }
  job.present = false;
  return CheckResult{std::move(job), std::nullopt};
}

Task<Result<bool>> CheckDestination::attachments_present(const ImageJob& job, const ManifestData& manifest) const {
  // The image and, for a list, each child may be signed: the destination's
  // copy (the same bytes as the source's) says which children there are.
  std::vector<std::string> subjects{job.digest};
  if (auto parsed = parse_manifest(manifest.bytes, manifest.media_type); parsed && parsed->is_list) {
    for (const auto& child : parsed->children) subjects.push_back(child.digest);
  }
  std::uint64_t found_here = 0;
  for (const auto& subject : subjects) {
    auto found = co_await source_.attachments(job.source, subject);
    if (!found) co_return found.error();
    for (const auto& a : *found) {
      auto there = co_await dest_.manifest_digest(job.dest, a.tag.empty() ? a.digest : a.tag);
      if (!there || *there != a.digest) co_return false;
    }
    found_here += found->size();
  }
  run_.progress.attachments_found += found_here;
  run_.progress.attachments_present += found_here;
  co_return true;
}

}  // namespace fastsync::stages
