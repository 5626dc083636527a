// What flows between the mirror's stages. Plain values: no TBB, no curl.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/core/endpoint.h"
#include "registry/core/manifest.h"
#include "registry/core/result.h"

namespace fastsync::stages {

// BlobsIn: a --blobs-only run copied the image's blobs (its share of them) and pushed no manifest.
enum class ImageStatus { Planned, Copied, Skipped, Failed, BlobsIn };
const char* to_string(ImageStatus status);

// One image to mirror: a component, the release image itself, or an image the
// image set names (additionalImages).
struct ImageJob {
  std::size_t id = 0;  // index in the plan
  std::string name;    // component name; "" for the release image; the reference as written for an additional image
  bool is_release = false;
  bool is_additional = false;
  bool is_graph = false;    // the update service's graph data image (built in stage 1, or carried by an archive)
  bool is_catalog = false;  // a rebuilt operator catalog (built in stage 1, or carried by an archive)
  std::string section;      // the image set's section that named it, when one did
  Repository source;
  std::string digest;
  Repository dest;
  std::string tag;  // empty: pushed by digest only
  // An additional image: the repository the cluster asks for (the mirror
  // sets' source): its source's, or where an archive's image came from.
  std::string named_as;
  // Stage 1 already knows this image cannot be mirrored (a tag that did not
  // resolve, a release whose component is blocked): the check stage fails it
  // with this reason, so it is counted and reported like any other failure.
  std::optional<Error> known_failure;
  std::vector<std::string> extra_tags;         // the same image in other releases of the run
  bool present = false;                        // the destination already has this digest (set by CheckDestination)
  std::optional<bool> tagged;                  // whether `tag` already names it, when CheckDestination asked
  std::optional<ManifestData> found_manifest;  // its bytes at the destination, when CheckDestination read them
  // Set by FetchManifests (by stage 1 already, for a shard's assignment):
  bool fetched = false;
  std::vector<ManifestData> manifests;  // push order: list children first, the image itself last
  std::vector<Descriptor> blobs;        // unique blobs of the image, its children and its attachments
  // Cosign signatures and referrers of the image and its children, pushed after it.
  struct Attached {
    std::string tag;                      // sha256-<hex>.sig, or empty (a referrer, pushed by digest)
    std::vector<ManifestData> manifests;  // push order, the attachment itself last
  };
  std::vector<Attached> attachments;
  std::uint64_t size() const;  // bytes of `blobs`
  std::string source_ref() const { return source.at(digest); }
  std::string dest_ref() const { return tag.empty() ? dest.at(digest) : dest.str() + ":" + tag; }
};

struct ImageOutcome {
  std::size_t id = 0;
  ImageStatus status = ImageStatus::Planned;
  std::uint64_t bytes = 0;  // size of the image's blobs when copied
  std::string error;        // why, when Failed
  bool fatal = false;       // the whole run cannot succeed (see is_run_fatal)
  bool cancelled = false;   // Failed only because the run was stopped

  static ImageOutcome failed(const ImageJob& job, const Error& e);
};

struct BlobJob {
  Descriptor blob;
  Repository source;
  Repository dest;
  std::shared_ptr<const std::string> fetched;  // verified bytes already in memory (read while resolving)
  std::optional<Repository> mount_from;        // another repository of the destination that holds it
};

enum class BlobHow { AlreadyPresent, Mounted, Copied };

struct BlobOutcome {
  std::string digest;
  Repository dest;
  std::uint64_t size = 0;
  BlobHow how = BlobHow::Copied;
  std::optional<Error> error;
  bool fatal = false;

  static BlobOutcome failed(const BlobJob& job, const Error& e);
};

// Counters the progress display and the summary read. Updated by the stages.
struct Progress {
  std::atomic<std::uint64_t> images_total{0};
  std::atomic<std::uint64_t> images_copied{0};
  std::atomic<std::uint64_t> images_skipped{0};
  std::atomic<std::uint64_t> images_failed{0};
  std::atomic<std::uint64_t> images_not_attempted{0};  // the run stopped before they were done
  std::atomic<std::uint64_t> blobs_total{0};
  std::atomic<std::uint64_t> blobs_copied{0};
  std::atomic<std::uint64_t> blobs_mounted{0};
  std::atomic<std::uint64_t> blobs_present{0};
  std::atomic<std::uint64_t> blobs_failed{0};
  std::atomic<std::uint64_t> blobs_not_attempted{0};  // cancelled: the run stopped
  std::atomic<std::uint64_t> bytes_planned{0};        // sum of unique blob sizes seen so far
  std::atomic<std::uint64_t> bytes_done{0};           // of those, copied, mounted or present
  // Cosign signatures and referrers travelling with the images.
  std::atomic<std::uint64_t> attachments_found{0};
  std::atomic<std::uint64_t> attachments_copied{0};
  std::atomic<std::uint64_t> attachments_present{0};
  std::uint64_t images_finished() const {
    return images_copied + images_skipped + images_failed + images_not_attempted;
  }
};

// The run's two ends as the stages use them. The destination may also be
// read back where it can (a registry: release layers a rerun finds there need
// no download); an archive being written cannot.
struct Ends {
  ImageSource& source;
  ImageDestination& dest;
  ImageSource* dest_readable = nullptr;
};

// Shared by every stage of one run: whether to stop, and why.
class RunControl {
 public:
  bool cancelled() const { return cancelled_.load(); }
  // First reason wins; `on_cancel` runs once (it aborts transfers in flight).
  void cancel(std::string reason);
  std::string reason() const;
  // Runs `hook` at once if the run is already cancelled (a signal that came first).
  void set_on_cancel(std::function<void()> hook);
  Error cancelled_error() const { return Error::make(ErrorKind::Cancelled, reason()); }
  Progress progress;

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::string reason_;
  std::function<void()> on_cancel_;
};

// Failures no other image can escape either (credentials refused, pushes
// forbidden, TLS untrusted): they stop the run rather than fail one image.
bool is_run_fatal(const Error& e);

}  // namespace fastsync::stages
