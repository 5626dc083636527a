#include "stages/check_destination.h"

#include <spdlog/spdlog.h>

namespace fastsync::stages {

Task<CheckResult> CheckDestination::operator()(ImageJob job) const {
  if (run_.cancelled()) co_return CheckResult{std::move(job), run_.cancelled_error()};
  auto digest = co_await api_.manifest_digest(job.dest, job.digest);
  if (digest && *digest == job.digest) {
    job.present = true;
    if (sigstore_) {
      auto signed_too = co_await attachments_present(job);
      if (!signed_too) co_return CheckResult{std::move(job), signed_too.error()};
      job.present = *signed_too;
    }
    co_return CheckResult{std::move(job), std::nullopt};
  }
  if (!digest && (is_run_fatal(digest.error()) || digest.error().kind == ErrorKind::Cancelled)) {
    co_return CheckResult{std::move(job), digest.error()};
  }
  if (!digest && digest.error().kind != ErrorKind::NotFound) {
    // A failing HEAD never stops a copy: copying is always safe, just slower.
    spdlog::debug("{}: destination check failed ({}), copying", job.dest_ref(), digest.error().message);
  }
  job.present = false;
  co_return CheckResult{std::move(job), std::nullopt};
}

Task<Result<bool>> CheckDestination::attachments_present(const ImageJob& job) const {
  // The image and, for a list, each child may be signed: the destination's
  // copy (the same bytes as the source's) says which children there are.
  std::vector<std::string> subjects{job.digest};
  auto manifest = co_await api_.get_manifest(job.dest, job.digest);
  if (!manifest) co_return false;
  if (auto parsed = parse_manifest(manifest->bytes, manifest->media_type); parsed && parsed->is_list) {
    for (const auto& child : parsed->children) subjects.push_back(child.digest);
  }
  std::uint64_t found_here = 0;
  for (const auto& subject : subjects) {
    auto found = co_await api_.attachments(job.source, subject);
    if (!found) co_return found.error();
    for (const auto& a : *found) {
      auto there = co_await api_.manifest_digest(job.dest, a.tag.empty() ? a.digest : a.tag);
      if (!there || *there != a.digest) co_return false;
    }
    found_here += found->size();
  }
  run_.progress.attachments_found += found_here;
  run_.progress.attachments_present += found_here;
  co_return true;
}

}  // namespace fastsync::stages
