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

// The file read and checked against the command line: everything that is the
// user's to fix (exit 2) is found here, before any request.
struct ImageSetInput {
  imageset::ImageSet set;
  imageset::BlockedImages blocked;
  std::vector<std::pair<Reference, imageset::NamedImage>> additional;  // parsed, in the file's order
  std::string arch;                                                    // the release architecture (x86_64, …)
};
Result<ImageSetInput> read_image_set(const CliOptions& o);

// Blocking. The releases each channel's graph gives (merged, oldest first),
// the additional images at <dest>/<their repository path>.
Result<RunPlan> plan_from_image_set(const CliOptions& o, const ImageSetInput& input, const SourceEnd& source,
                                    const DestinationEnd& dest, WebFetcher& web, stages::SignatureSettings signatures);

}  // namespace fastsync::cli
