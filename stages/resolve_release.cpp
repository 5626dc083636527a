#include "stages/resolve_release.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <set>

#include "release/imageset/built_image.h"
#include "release/imageset/catalog_image.h"
#include "stages/fetch_manifests.h"

namespace fastsync::stages {

std::vector<ReleaseGate> Plan::gates() const {
  std::vector<ReleaseGate> gates;
  for (const auto& r : releases) gates.push_back(ReleaseGate{r.job, r.components});
  return gates;
}

release::FetchedBlobs Plan::fetched_layers() const {
  release::FetchedBlobs all = built_blobs;
  for (const auto& r : releases) all.insert(r.release.fetched_layers.begin(), r.release.fetched_layers.end());
  return all;
}

Task<ResolveResult> ResolveRelease::operator()() const {
  if (run_.cancelled()) co_return ResolveResult{std::nullopt, run_.cancelled_error()};
  if (spec_.releases.empty() && spec_.additional.empty() && !spec_.graph_image && spec_.catalogs.empty()) {
    co_return ResolveResult{std::nullopt, Error::make(ErrorKind::Invalid, "nothing to mirror")};
  }
  auto planned = co_await plan_releases();
  if (!planned) co_return ResolveResult{std::nullopt, planned.error()};
  Plan plan = std::move(*planned);
  if (spec_.check_destination) {
    auto access = co_await ends_.dest.check_access(spec_.dest, /*push=*/true);
    if (!access) co_return ResolveResult{std::nullopt, access.error()};
  }
  std::vector<AdditionalImage> images = spec_.additional;
  co_await add_catalogs(plan, images);
  co_await add_additional_images(plan, std::move(images));
  if (spec_.graph_image) co_await add_graph_image(plan);
  if (run_.cancelled()) co_return ResolveResult{std::nullopt, run_.cancelled_error()};
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

// Every release's components (one job per image, whichever releases name it;
// each release's tag for it), then the release images.
Task<Result<Plan>> ResolveRelease::plan_releases() const {
  Plan plan;
  for (const auto& wanted : spec_.releases) {
    // A named argument, not a braced temporary: GCC 12 destroys a braced aggregate
    // argument of a coroutine twice (see docs/ARCHITECTURE.md).
    const std::string& arch = wanted.arch.empty() ? spec_.arch : wanted.arch;
    release::ReleaseRequest request{wanted.version, arch,         arch == spec_.arch ? spec_.platform : "",
                                    spec_.source,   std::nullopt, wanted.digest};
    // A dry run never touches the destination.
    if (spec_.check_destination && ends_.dest_readable) request.local_copy = {ends_.dest_readable, spec_.dest};
    auto rel = co_await release::resolve_release(ends_.source, request);
    if (!rel) co_return rel.error();
    PlannedRelease planned;
    planned.release = std::move(*rel);
    // Before anything is pushed: --require-signatures stops here.
    planned.signatures = co_await verify_release_signatures(spec_.signatures, planned.release);
    if (spec_.signatures.required && planned.signatures.verified.empty()) {
      co_return Error::make(ErrorKind::Unverified,
                            planned.signatures.warning(planned.release) + "; --require-signatures: nothing was pushed");
    }
    plan.releases.push_back(std::move(planned));
  }
  std::map<std::string, std::size_t> by_image;              // source@digest -> id
  std::vector<std::string> withheld(plan.releases.size());  // why a release's tag stays away
  for (std::size_t r = 0; r < plan.releases.size(); ++r) {
    auto& planned = plan.releases[r];
    const auto& rel = planned.release;
    for (const auto& c : rel.components) {
      Reference source{c.repository.registry, c.repository.path, "", c.digest};
      if (auto blocked = spec_.blocked.match(source)) {
        std::string why = blocked->describe(spec_.blocked.file());
        plan.blocked.push_back(
            BlockedImage{source.str(), fmt::format("release {} (component {})", rel.version, c.name), why});
        if (withheld[r].empty()) {
          withheld[r] = fmt::format("not tagged: its component {} is blocked by {}", c.name, why);
        }
        continue;
      }
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
  for (std::size_t r = 0; r < plan.releases.size(); ++r) {
    auto& planned = plan.releases[r];
    ImageJob rj;
    rj.id = plan.images.size();
    rj.is_release = true;
    rj.source = planned.release.repository;
    rj.digest = planned.release.manifest.digest;
    rj.dest = spec_.dest;
    rj.tag = planned.release.tag;
    // The release would be incomplete: its tag stays away, whatever else lands.
    if (!withheld[r].empty()) rj.known_failure = Error::make(ErrorKind::Invalid, withheld[r]);
    planned.job = rj.id;
    plan.images.push_back(std::move(rj));
  }
  co_return plan;
}

// The image set's additionalImages: a tag resolves to a digest here, once
// (a digest given with it is kept); one that does not fails only its own
// image (in the check stage, with this reason), not the run.
Task<void> ResolveRelease::add_additional_images(Plan& plan, std::vector<AdditionalImage> images) const {
  std::vector<const AdditionalImage*> wanted;
  std::vector<std::optional<std::size_t>> asked;  // per wanted image: its question in `digests`
  // The tasks start in when_all and take their arguments by reference: the
  // repositories live here until then (a deque keeps their addresses).
  std::deque<Repository> repos;
  std::vector<Task<Result<std::string>>> digests;
  std::set<std::string> seen;
  for (const auto& image : images) {
    if (!seen.insert(image.reference.str() + " " + image.dest.str()).second) continue;
    if (auto blocked = spec_.blocked.match(image.reference)) {
      plan.blocked.push_back(
          BlockedImage{image.reference.str(), image.section, blocked->describe(spec_.blocked.file())});
      continue;
    }
    wanted.push_back(&image);
    asked.emplace_back();
    if (!image.reference.digest.empty()) continue;
    asked.back() = digests.size();
    repos.push_back(Repository{image.reference.registry, image.reference.repository});
    digests.push_back(ends_.source.manifest_digest(repos.back(), image.reference.tag));
  }
  auto resolved = co_await when_all(std::move(digests));
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const AdditionalImage& image = *wanted[i];
    ImageJob job;
    job.id = plan.images.size();
    job.name = image.name;
    job.is_graph = image.section == "platform.graph";
    job.is_catalog = image.section == "catalog";
    job.is_additional = !job.is_graph && !job.is_catalog;
    job.section = image.section;
    job.source = Repository{image.reference.registry, image.reference.repository};
    job.named_as = image.origin.empty() ? job.source.str() : image.origin;
    job.dest = image.dest;
    job.tag = image.reference.tag;
    job.digest = image.reference.digest;
    if (asked[i]) {
      auto& digest = resolved[*asked[i]];
      if (digest) {
        job.digest = *digest;
      } else {
        job.known_failure =
            Error::make(digest.error().kind, fmt::format("{}: {}", image.reference.str(), digest.error().message));
      }
    }
    plan.images.push_back(std::move(job));
  }
}

namespace {

// The graph data image: `base` (its child for `platform` when it is a list)
// plus one layer of the tarball's files, its command copying them where the
// update service's graph builder reads them (as oc-mirror's graph image does).
Task<Result<imageset::BuiltImage>> build_graph_image(ImageSource& source, const GraphImageWanted& wanted,
                                                     const std::string& platform) {
  Repository repo{wanted.base.registry, wanted.base.repository};
  auto manifest = co_await source.get_manifest(repo, wanted.base.identifier());
  if (!manifest) co_return manifest.error();
  auto parsed = parse_manifest(manifest->bytes, manifest->media_type);
  if (!parsed) co_return parsed.error();
  if (parsed->is_list) {
    const Descriptor* child = find_platform(*parsed, platform);
    if (!child) {
      co_return Error::make(ErrorKind::NotFound,
                            fmt::format("base image {} has no {} image", wanted.base.str(), platform));
    }
    std::string child_digest = child->digest;
    manifest = co_await source.get_manifest(repo, child_digest);
    if (!manifest) co_return manifest.error();
    parsed = parse_manifest(manifest->bytes, manifest->media_type);
    if (!parsed || parsed->is_list) {
      co_return Error::make(ErrorKind::Invalid,
                            fmt::format("base image {}: its {} entry is not an image", wanted.base.str(), platform));
    }
  }
  Descriptor config_ref = parsed->config;
  auto config = co_await read_whole_blob(source, repo, config_ref);
  if (!config) co_return config.error();
  const ManifestData& base = *manifest;
  auto build = [&]() -> Result<imageset::BuiltImage> {
    auto layer = imageset::layer_under(*wanted.graph_data, "var/lib/cincinnati-graph-data", wanted.origin);
    if (!layer) return layer.error();
    imageset::ConfigChange change;
    change.cmd = {"/bin/bash", "-c", "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data"};
    change.created_by = "fastsync: update graph data from " + wanted.origin;
    return imageset::add_layer(base, *config, *layer, change);
  };
  co_return co_await run_blocking(std::move(build));
}

}  // namespace

// Each catalog read and filtered here (a failure fails only that catalog's
// job, with its reason); its kept bundles' images are mirrored like additional
// images, each once however many bundles and catalogs name it.
Task<void> ResolveRelease::add_catalogs(Plan& plan, std::vector<AdditionalImage>& images) const {
  for (const auto& wanted : spec_.catalogs) {
    ImageJob job;
    job.id = plan.images.size();
    job.name = wanted.catalog.str();
    job.is_catalog = true;
    job.section = "operators";
    job.source = Repository{wanted.catalog.registry, wanted.catalog.repository};
    job.dest = wanted.dest;
    job.tag = wanted.tag;
    std::string reference = wanted.catalog.identifier();
    std::string name = wanted.catalog.str();
    std::string selection = imageset::selection_key(wanted.filter);
    auto keep_images = [&](const imageset::Catalog& kept) {
      std::vector<std::string> lines;
      for (const auto& [package, p] : kept.packages) {
        lines.push_back(fmt::format("package {} (default channel {})", package, p.default_channel));
        for (const auto& c : kept.channels) {
          if (c.package != package) continue;
          std::string entries;
          for (const auto& e : c.entries) entries += (entries.empty() ? "" : ", ") + e.name;
          lines.push_back(fmt::format("  channel {}: {}", c.name, entries));
        }
      }
      plan.catalogs_kept.emplace_back(name, std::move(lines));
      for (const auto& ref_text : imageset::images_of(kept)) {
        auto ref = Reference::parse(ref_text);
        if (!ref) continue;  // a bundle naming no valid image: nothing to mirror for it
        if (ref->tag.empty() && ref->digest.empty()) ref->tag = "latest";
        Repository dest = wanted.dest_for(ref->repository);
        images.push_back(AdditionalImage{*ref, dest, ref_text, {}, "operators"});
      }
    };
    // A rerun: the destination's catalog says it was rebuilt from this very
    // catalog with this selection; its top layer gives the kept catalog, and
    // nothing of the catalog is fetched from the source.
    if (ends_.dest_readable) {
      auto source_digest = co_await ends_.source.manifest_digest(job.source, reference);
      if (source_digest) {
        auto there = co_await imageset::catalog_at_destination(*ends_.dest_readable, job.dest, job.tag, *source_digest,
                                                               selection);
        if (there) {
          job.digest = there->digest;
          keep_images(there->kept);
          plan.images.push_back(std::move(job));
          continue;
        }
      }
    }
    std::set<std::string> packages;  // only what the selection can keep is held in memory
    for (const auto& p : wanted.filter.packages) packages.insert(p.name);
    auto image = co_await imageset::read_catalog_image(ends_.source, job.source, reference, name, packages);
    auto failed = [&](const Error& e) {
      job.known_failure = e;
      plan.images.push_back(std::move(job));
    };
    if (!image) {
      failed(image.error());
      continue;
    }
    auto kept = imageset::select_bundles(image->catalog, wanted.filter, name);
    if (!kept) {
      failed(kept.error());
      continue;
    }
    auto rebuild = [&image, &kept, &selection] { return imageset::rebuild_catalog(*image, *kept, selection); };
    auto rebuilt = co_await run_blocking(std::move(rebuild));
    if (!rebuilt) {
      failed(rebuilt.error());
      continue;
    }
    job.digest = rebuilt->digest;
    job.fetched = true;  // stage 3 has nothing to read: the manifests are made here
    job.manifests = rebuilt->manifests;
    job.blobs = rebuilt->blobs;
    plan.built_blobs.insert(rebuilt->new_blobs.begin(), rebuilt->new_blobs.end());
    plan.built_blobs.insert(image->kept_layers.begin(), image->kept_layers.end());
    plan.images.push_back(std::move(job));
    keep_images(*kept);
  }
}

Task<void> ResolveRelease::add_graph_image(Plan& plan) const {
  const GraphImageWanted& wanted = *spec_.graph_image;
  ImageJob job;
  job.id = plan.images.size();
  job.name = "graph-image";
  job.is_graph = true;
  job.section = "platform.graph";
  job.source = Repository{wanted.base.registry, wanted.base.repository};
  job.dest = wanted.dest;
  job.tag = wanted.tag;
  std::string platform = release::platform_for_arch(spec_.arch);
  if (platform.empty()) platform = "linux/amd64";
  auto built = co_await build_graph_image(ends_.source, wanted, platform);
  if (built) {
    job.digest = built->manifest.digest;
    job.fetched = true;  // stage 3 has nothing to read: the manifest is made here
    job.manifests = {built->manifest};
    job.blobs = built->blobs;
    plan.built_blobs.insert(built->new_blobs.begin(), built->new_blobs.end());
  } else {
    job.known_failure = Error::make(built.error().kind, "graph image: " + built.error().message);
  }
  plan.images.push_back(std::move(job));
}

Task<std::size_t> read_all_manifests(ImageSource& source, RunControl& run, bool sigstore, Plan& plan) {
  FetchManifests fetch(source, run, sigstore);
  std::vector<Task<FetchResult>> fetches;
  std::size_t unread = 0;
  for (const auto& job : plan.images) {
    if (job.known_failure) {
      ++unread;  // fails in the check stage, with its reason
      continue;
    }
    fetches.push_back(fetch(job));
  }
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
