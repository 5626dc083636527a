#include "stages/resolve_release.h"

#include <mutex>

#include "stages/fetch_manifests.h"

namespace fastsync::stages {

Task<ResolveResult> ResolveRelease::operator()() const {
  if (run_.cancelled()) co_return ResolveResult{std::nullopt, run_.cancelled_error()};
  if (known_) co_return ResolveResult{*known_, std::nullopt};
  // A named argument, not a braced temporary: GCC 12 destroys a braced aggregate
  // argument of a coroutine twice (see docs/ARCHITECTURE.md).
  release::ReleaseRequest request{spec_.version, spec_.arch, spec_.platform, spec_.source, std::nullopt};
  if (spec_.check_destination) request.local_copy = spec_.dest;  // a dry run never touches the destination
  auto rel = co_await release::resolve_release(api_, request);
  if (!rel) co_return ResolveResult{std::nullopt, rel.error()};
  if (spec_.check_destination) {
    auto access = co_await api_.check_access(spec_.dest, /*push=*/true);
    if (!access) co_return ResolveResult{std::nullopt, access.error()};
  }
  Plan plan;
  plan.release = std::move(*rel);
  // Before anything is pushed: --require-signatures stops here.
  plan.signatures = co_await verify_release_signatures(spec_.signatures, plan.release);
  if (spec_.signatures.required && plan.signatures.verified.empty()) {
    co_return ResolveResult{std::nullopt,
                            Error::make(ErrorKind::Unverified, plan.signatures.warning(plan.release) +
                                                                   "; --require-signatures: nothing was pushed")};
  }
  for (const auto& c : plan.release.components) {
    ImageJob job;
    job.id = plan.images.size();
    job.name = c.name;
    job.source = c.repository;
    job.digest = c.digest;
    job.dest = spec_.dest;
    job.tag = release::component_tag(plan.release.version, plan.release.arch, c.name);
    plan.images.push_back(std::move(job));
  }
  ImageJob rj;
  rj.id = plan.images.size();
  rj.is_release = true;
  rj.source = plan.release.repository;
  rj.digest = plan.release.manifest.digest;
  rj.dest = spec_.dest;
  rj.tag = plan.release.tag;
  plan.images.push_back(std::move(rj));
  co_return ResolveResult{std::move(plan), std::nullopt};
}

Task<Result<std::map<std::string, std::uint64_t>>> plan_blob_sizes(RegistryApi& api, RunControl& run,
                                                                   const Plan& plan) {
  struct Join {
    std::mutex mutex;
    std::size_t left = 0;
    std::map<std::string, std::uint64_t> sizes;
    AsyncValue<bool> done;
  };
  auto join = std::make_shared<Join>();
  join->left = plan.images.size();
  FetchManifests fetch(api, run);
  auto finished = [join](const FetchResult& r) {
    bool last = false;
    {
      std::lock_guard lock(join->mutex);
      // An image whose manifests cannot be read fails in the graph, with its reason; here it just adds nothing.
      for (const auto& b : r.job.blobs) join->sizes[b.digest] = b.size;
      for (const auto& m : r.job.manifests) join->sizes[m.digest] = m.bytes.size();
      last = --join->left == 0;
    }
    if (last) join->done.set(true);
  };
  if (plan.images.empty()) co_return join->sizes;
  for (const auto& job : plan.images) {
    spawn(fetch(job), finished, [finished, job](std::exception_ptr) {
      finished(FetchResult{job, Error::make(ErrorKind::Protocol, "internal error while fetching manifests")});
    });
  }
  co_await join->done.wait();
  co_return join->sizes;
}

}  // namespace fastsync::stages
