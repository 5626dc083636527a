// Stage 1: what to mirror -> the plan: every release's components, then the
// release images, then the additional images; blocked images left out.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "registry/core/endpoint.h"
#include "registry/core/task.h"
#include "release/imageset/blocked_images.h"
#include "release/imageset/catalog.h"
#include "release/payload/release.h"
#include "stages/run_ledger.h"
#include "stages/shard.h"
#include "stages/types.h"
#include "stages/verify_release.h"

namespace fastsync::stages {

// One release to mirror: by its tag, or by the payload digest the update graph pins.
struct ReleaseWanted {
  std::string version;
  std::string digest;  // empty: resolve the tag <version>-<arch>
  std::string arch;    // empty: the spec's (an image set may name several architectures)
};

// An image the image set names by itself (additionalImages): by tag (resolved
// once, in stage 1, to a digest; pushed under the same tag), by digest, or by
// both (the digest pinned, pushed under the tag: what an archive carries).
struct AdditionalImage {
  Reference reference;
  Repository dest;     // where it lands: <dest>/<its repository path>
  std::string name;    // as the file writes it
  std::string origin;  // the repository the cluster asks for, when not the reference's (read from an archive)
  // The image set's section that named it: "additionalImages", "operators"
  // (a bundle or related image), or what an archive carries besides:
  // "platform.graph" (the graph image), "catalog" (a rebuilt catalog).
  std::string section = "additionalImages";
};

// operators[]: a catalog, read and filtered in stage 1; its kept bundles'
// images join the additional images, and the rebuilt catalog is pushed to
// `dest`:`tag`.
struct CatalogWanted {
  Reference catalog;
  imageset::CatalogFilter filter;
  Repository dest;
  std::string tag;
  std::function<Repository(const std::string& path)> dest_for;  // where an image of the catalog lands
};

// mirror.platform.graph: the OpenShift Update Service's graph data as an
// image, built in stage 1 on `base` (its child for the run's architecture)
// with the graph-data tarball's files under /var/lib/cincinnati-graph-data,
// and pushed to `dest`:`tag`.
struct GraphImageWanted {
  Reference base;
  std::shared_ptr<const std::string> graph_data;  // the tarball
  std::string origin;                             // where it came from, for messages
  Repository dest;
  std::string tag = "latest";
};

// An image the plan leaves out, and why.
struct BlockedImage {
  std::string reference;  // the image (registry/path[:tag][@digest])
  std::string named_by;   // "release 4.20.8 (component etcd)", "additionalImages"
  std::string why;        // the blockedImages entry that matched
};

struct MirrorSpec {
  std::vector<ReleaseWanted> releases;  // oldest first; may be empty when the image set names other images
  std::vector<AdditionalImage> additional;
  std::optional<GraphImageWanted> graph_image;
  std::vector<CatalogWanted> catalogs;
  imageset::BlockedImages blocked;
  std::string arch = "x86_64";    // of every release that does not name its own
  std::string platform;           // list child that holds the payload (multi), for releases of `arch`
  Repository source;              // --source-registry
  Repository dest;                // --dest-registry / --dest-repo
  bool check_destination = true;  // fail early if the destination refuses our credentials
  SignatureSettings signatures;   // the release's GPG signatures
  bool sigstore = true;           // cosign signatures (sha256-<hex>.sig tags, referrers) travel with images
  // Copy blobs and push no manifest or tag (a manifests pass follows); with a
  // shard, only that shard's blobs.
  bool blobs_only = false;
  std::optional<Shard> shard;
};

struct PlannedRelease {
  release::Release release;
  SignatureCheck signatures;            // its GPG signatures, verified
  std::size_t job = 0;                  // its release image in Plan::images
  std::vector<std::size_t> components;  // the images it names, in image-references order
};

// The union of the releases: an image several releases name is one job (tagged
// for each); the release images come last, one per release.
struct Plan {
  std::vector<PlannedRelease> releases;
  std::vector<ImageJob> images;
  std::vector<BlockedImage> blocked;  // never copied (blockedImages)
  release::FetchedBlobs built_blobs;  // what stage 1 made (the graph image's config and layer), by digest
  // What each catalog keeps, for the dry run: "package P (default channel C)", "  channel X: bundle, …".
  std::vector<std::pair<std::string, std::vector<std::string>>> catalogs_kept;
  // The first release (the only one, in most runs). Only when there is one.
  const release::Release& release() const { return releases.front().release; }
  const ImageJob& release_job(std::size_t i = 0) const { return images[releases[i].job]; }
  std::vector<ReleaseGate> gates() const;
  release::FetchedBlobs fetched_layers() const;
  // With a shard: its share of the plan's blobs. Stage 1 reads every image's
  // manifests to compute it (and hands them on in `images`).
  std::optional<ShardShare> shard;
};

struct ResolveResult {
  std::optional<Plan> plan;
  std::optional<Error> error;
};

class ResolveRelease {
 public:
  ResolveRelease(Ends ends, RunControl& run, MirrorSpec spec) : ends_(ends), run_(run), spec_(std::move(spec)) {}
  Task<ResolveResult> operator()() const;

 private:
  Task<Result<Plan>> plan_releases() const;
  Task<void> add_additional_images(Plan& plan, std::vector<AdditionalImage> images) const;
  // The catalogs' jobs; the images their kept bundles name go into `images`.
  Task<void> add_catalogs(Plan& plan, std::vector<AdditionalImage>& images) const;
  Task<void> add_graph_image(Plan& plan) const;

  Ends ends_;
  RunControl& run_;
  MirrorSpec spec_;
};

// Reads every image's manifests into the plan now (stage 3 then skips them),
// for what must know every blob before the first is moved: a shard's share, an
// archive's size. Returns how many images could not be read (stage 3 tries
// them again and reports why).
Task<std::size_t> read_all_manifests(ImageSource& source, RunControl& run, bool sigstore, Plan& plan);
// Every unique blob (and manifest) of the images read so far, with its size.
std::map<std::string, std::uint64_t> planned_sizes(const Plan& plan);

}  // namespace fastsync::stages
