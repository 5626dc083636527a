// Images fastsync makes itself rather than copies: a base image plus one
// layer, as a container build would leave them (the update graph's data image;
// a filtered operator catalog next). Byte-stable: the same base and the same
// files give the same digests, so a rerun finds the image already there.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/manifest.h"
#include "registry/core/result.h"

namespace fastsync::imageset {

struct BuiltLayer {
  std::shared_ptr<const std::string> compressed;  // gzip, no timestamp in its header
  std::string digest;                             // of `compressed`
  std::string diff_id;                            // of the uncompressed tar
};

// Every entry of the tar archive `tarball` (gzip or not, as libarchive reads
// it) moved under `prefix` ("var/lib/cincinnati-graph-data"), with the
// directories above it, owned by root. `origin` names the tarball in errors.
Result<BuiltLayer> layer_under(std::string_view tarball, const std::string& prefix, const std::string& origin);

// One entry of a layer fastsync writes itself.
struct LayerEntry {
  std::string path;  // "configs/db/catalog.json", "configs/.wh..wh..opq", "configs/" (a directory)
  std::string content;
  bool directory = false;
};
// A layer of exactly these entries (owned by root, time 0), in this order.
Result<BuiltLayer> layer_of(const std::vector<LayerEntry>& entries);

// What the new layer changes in the image's configuration.
struct ConfigChange {
  std::vector<std::string> cmd;               // replaces config.Cmd when given
  std::map<std::string, std::string> labels;  // added to config.Labels
  std::string created_by;                     // the history entry of the new layer
};

struct BuiltImage {
  ManifestData manifest;
  std::vector<Descriptor> blobs;  // the new config, the base's layers and the new layer
  // The bytes only fastsync has (the config and the new layer), by digest.
  std::map<std::string, std::shared_ptr<const std::string>> new_blobs;
};

// `base` (an image manifest, Docker or OCI, and its configuration's bytes)
// with `layer` on top and `change` applied. Everything else in the manifest
// and the configuration is kept as it was.
Result<BuiltImage> add_layer(const ManifestData& base, std::string_view base_config, const BuiltLayer& layer,
                             const ConfigChange& change);

}  // namespace fastsync::imageset
