// The run's plan from an image set file (--config): releases by channel from
// the update graph, additional images, blocked images. The second plan
// builder beside the release flags' (cli/release_plan.h); the graph and
// everything after it are the same.
#pragma once

#include <string>
#include <vector>

#include "cli/ends.h"
#include "cli/options.h"
#include "cli/release_plan.h"
#include "registry/core/reference.h"
#include "release/imageset/blocked_images.h"
#include "release/imageset/image_set.h"

namespace fastsync::cli {

// Where the graph data image lands, as oc-mirror v2 puts it: <dest>/openshift/graph-image:latest.
inline constexpr const char* kGraphImageRepository = "openshift/graph-image";

// The file read and checked against the command line: everything that is the
// user's to fix (exit 2) is found here, before any request.
struct ImageSetInput {
  imageset::ImageSet set;
  imageset::BlockedImages blocked;
  std::vector<std::pair<Reference, imageset::NamedImage>> additional;  // parsed, in the file's order
  std::vector<std::pair<Reference, imageset::OperatorCatalog>> catalogs;
  std::vector<std::string>
      arches;  // the releases' architectures as their tags spell them (x86_64, …), the first the run's
};
Result<ImageSetInput> read_image_set(const CliOptions& o);

// Blocking. The releases each channel's graph gives for each architecture
// (merged, oldest first), the additional images at <dest>/<their repository
// path>. With --from-dir: what the archive carries (the file checked against it).
Result<RunPlan> plan_from_image_set(const CliOptions& o, const ImageSetInput& input, const SourceEnd& source,
                                    const DestinationEnd& dest, WebFetcher& web, stages::SignatureSettings signatures);

}  // namespace fastsync::cli
