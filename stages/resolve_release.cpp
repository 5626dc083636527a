#include "stages/resolve_release.h"

#include <algorithm>

#include "stages/fetch_manifests.h"

namespace fastsync::stages {

std::vector<ReleaseGate> Plan::gates() const {
  std::vector<ReleaseGate> gates;
  for (const auto& r : releases) gates.push_back(ReleaseGate{r.job, r.components});
  return gates;
}

release::FetchedBlobs Plan::fetched_layers() const {
  release::FetchedBlobs all;
  for (const auto& r : releases) all.insert(r.release.fetched_layers.begin(), r.release.fetched_layers.end());
  return all;
}

Task<ResolveResult> ResolveRelease::operator()() const {
  if (run_.cancelled()) co_return ResolveResult{std::nullopt, run_.cancelled_error()};
  if (known_) co_return ResolveResult{*known_, std::nullopt};
  if (spec_.releases.empty()) co_return ResolveResult{std::nullopt, Error::make(ErrorKind::Invalid, "no release to mirror")};
  Plan plan;
  for (const auto& wanted : spec_.releases) {
    // A named argument, not a braced temporary: GCC 12 destroys a braced aggregate
    // argument of a coroutine twice (see docs/ARCHITECTURE.md).
    release::ReleaseRequest request{wanted.version, spec_.arch, spec_.platform, spec_.source, std::nullopt, wanted.digest};
    if (spec_.check_destination) request.local_copy = spec_.dest;  // a dry run never touches the destination
    auto rel = co_await release::resolve_release(api_, request);
    if (!rel) co_return ResolveResult{std::nullopt, rel.error()};
    PlannedRelease planned;
    planned.release = std::move(*rel);
    // Before anything is pushed: --require-signatures stops here.
    planned.signatures = co_await verify_release_signatures(spec_.signatures, planned.release);
    if (spec_.signatures.required && planned.signatures.verified.empty()) {
      co_return ResolveResult{std::nullopt,
                              Error::make(ErrorKind::Unverified, planned.signatures.warning(planned.release) +
                                                                     "; --require-signatures: nothing was pushed")};
    }
    plan.releases.push_back(std::move(planned));
  }
  if (spec_.check_destination) {
    auto access = co_await api_.check_access(spec_.dest, /*push=*/true);
    if (!access) co_return ResolveResult{std::nullopt, access.error()};
  }
  // One job per image, whichever releases name it; each release's tag for it.
  std::map<std::string, std::size_t> by_image;  // source@digest -> id
  for (auto& planned : plan.releases) {
    const auto& rel = planned.release;
    for (const auto& c : rel.components) {
      std::string tag = release::component_tag(rel.version, rel.arch, c.name);
      auto [it, fresh] = by_image.emplace(c.repository.str() + "@" + c.digest, plan.images.size());
      if (fresh) {
        ImageJob job;
        job.id = plan.images.size();
        job.name = c.name;
        job.source = c.repository;
        job.digest = c.digest;
        job.dest = spec_.dest;
        job.tag = tag;
        plan.images.push_back(std::move(job));
      } else if (auto& job = plan.images[it->second];
                 job.tag != tag && std::find(job.extra_tags.begin(), job.extra_tags.end(), tag) == job.extra_tags.end()) {
        job.extra_tags.push_back(tag);
      }
      if (std::find(planned.components.begin(), planned.components.end(), it->second) == planned.components.end()) {
        planned.components.push_back(it->second);
      }
    }
  }
  for (auto& planned : plan.releases) {
    ImageJob rj;
    rj.id = plan.images.size();
    rj.is_release = true;
    rj.source = planned.release.repository;
    rj.digest = planned.release.manifest.digest;
    rj.dest = spec_.dest;
    rj.tag = planned.release.tag;
    planned.job = rj.id;
    plan.images.push_back(std::move(rj));
  }
  if (spec_.shard) co_await share_out(plan);
  co_return ResolveResult{std::move(plan), std::nullopt};
}

// Every shard reads the same manifests (digest-pinned), so every shard computes
// the same assignment. An image whose manifests cannot be read adds no blob
// here; stage 3 tries it again and reports it. If shards disagree about such an
// image, a blob may go to two shards or to none: the manifests pass copies
// whatever is missing, so the mirror is right either way.
Task<void> ResolveRelease::share_out(Plan& plan) const {
  FetchManifests fetch(api_, run_, spec_.sigstore);
  std::vector<Task<FetchResult>> fetches;
  for (const auto& job : plan.images) fetches.push_back(fetch(job));
  auto fetched = co_await when_all(std::move(fetches));
  std::vector<Descriptor> blobs;
  std::size_t unread = 0;
  for (auto& r : fetched) {
    if (r.error) {
      ++unread;
      continue;
    }
    blobs.insert(blobs.end(), r.job.blobs.begin(), r.job.blobs.end());
    plan.images[r.job.id] = std::move(r.job);
  }
  plan.shard = share_of(blobs, *spec_.shard);
  plan.shard->unread_images = unread;
}

Task<Result<std::map<std::string, std::uint64_t>>> plan_blob_sizes(RegistryApi& api, RunControl& run,
                                                                   const Plan& plan) {
  FetchManifests fetch(api, run);
  std::vector<Task<FetchResult>> fetches;
  for (const auto& job : plan.images) fetches.push_back(fetch(job));
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& r : co_await when_all(std::move(fetches))) {
    // An image whose manifests cannot be read fails in the graph, with its reason; here it just adds nothing.
    for (const auto& b : r.job.blobs) sizes[b.digest] = b.size;
    for (const auto& m : r.job.manifests) sizes[m.digest] = m.bytes.size();
  }
  co_return sizes;
}

}  // namespace fastsync::stages
