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
  if (spec_.releases.empty())
    co_return ResolveResult{std::nullopt, Error::make(ErrorKind::Invalid, "no release to mirror")};
  Plan plan;
  for (const auto& wanted : spec_.releases) {
    // A named argument, not a braced temporary: GCC 12 destroys a braced aggregate
    // argument of a coroutine twice (see docs/ARCHITECTURE.md).
    release::ReleaseRequest request{wanted.version, spec_.arch,   spec_.platform,
                                    spec_.source,   std::nullopt, wanted.digest};
    // A dry run never touches the destination.
    if (spec_.check_destination && ends_.dest_readable) request.local_copy = {ends_.dest_readable, spec_.dest};
    auto rel = co_await release::resolve_release(ends_.source, request);
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
    auto access = co_await ends_.dest.check_access(spec_.dest, /*push=*/true);
    if (!access) co_return ResolveResult{std::nullopt, access.error()};
  }
  // One job per image, whichever releases name it; each release's tag for it.
  std::map<std::string, std::size_t> by_image;  // source@digest -> id
  for (auto& planned : plan.releases) {
    const auto& rel = planned.release;
    for (const auto& c : rel.components) {
      std::string tag = release::component_tag(rel.version, rel.arch, c.name);
      auto [it, fresh] = by_image.emplace(c.repository.at(c.digest), plan.images.size());
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
                 job.tag != tag &&
                 std::find(job.extra_tags.begin(), job.extra_tags.end(), tag) == job.extra_tags.end()) {
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
  if (spec_.shard) {
    // Every shard reads the same manifests (digest-pinned), so every shard
    // computes the same assignment. An image whose manifests cannot be read
    // adds no blob here; stage 3 tries it again and reports it. If shards
    // disagree about such an image, a blob may go to two shards or to none:
    // the manifests pass copies whatever is missing, so the mirror is right
    // either way.
    std::size_t unread = co_await read_all_manifests(ends_.source, run_, spec_.sigstore, plan);
    std::vector<Descriptor> blobs;
    for (const auto& job : plan.images) blobs.insert(blobs.end(), job.blobs.begin(), job.blobs.end());
    plan.shard = share_of(blobs, *spec_.shard);
    plan.shard->unread_images = unread;
  }
  co_return ResolveResult{std::move(plan), std::nullopt};
}

Task<std::size_t> read_all_manifests(ImageSource& source, RunControl& run, bool sigstore, Plan& plan) {
  FetchManifests fetch(source, run, sigstore);
  std::vector<Task<FetchResult>> fetches;
  for (const auto& job : plan.images) fetches.push_back(fetch(job));
  std::size_t unread = 0;
  for (auto& r : co_await when_all(std::move(fetches))) {
    if (r.error) {
      ++unread;
      continue;
    }
    plan.images[r.job.id] = std::move(r.job);
  }
  co_return unread;
}

std::map<std::string, std::uint64_t> planned_sizes(const Plan& plan) {
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& job : plan.images) {
    for (const auto& b : job.blobs) sizes[b.digest] = b.size;
    for (const auto& m : job.manifests) sizes[m.digest] = m.bytes.size();
    for (const auto& a : job.attachments) {
      for (const auto& m : a.manifests) sizes[m.digest] = m.bytes.size();
    }
  }
  return sizes;
}

}  // namespace fastsync::stages
