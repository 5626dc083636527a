// Reads chosen files out of an image's layers the way a container runtime
// merges them: a later layer overrides an earlier one, ".wh.<name>" deletes
// <name> below it, ".wh..wh..opq" hides a directory's lower contents.
// Every tar byte fastsync touches goes through here (libarchive).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/endpoint.h"
#include "registry/core/result.h"

namespace fastsync::release {

// Opens one layer's (possibly compressed) tar stream. Called lazily, so lower
// layers are never downloaded once the wanted files are known.
using LayerOpener = std::function<std::unique_ptr<BlobReader>()>;

struct Layer {
  std::string name;  // for messages: the layer digest
  LayerOpener open;
};

// Path -> content for each wanted path present in the merged filesystem;
// absent (deleted or never there) paths are missing from the map.
using LayerFiles = std::map<std::string, std::string>;

// Besides the wanted paths: every regular file under `dir` (up to `max_size`)
// whose content `keep` accepts, among the layers read for the wanted paths
// (the release's ConfigMaps sit beside image-references, in its layer).
struct FileSearch {
  std::string dir;
  std::size_t max_size = 1u << 20;
  std::function<bool(std::string_view content)> keep;
};

// `layers` in image order (base first). Reads from the top layer down and stops
// after the first layer at which every wanted path is decided. Each layer read is
// read to its end so its digest is verified before its content is trusted.
// Blocking: run it off the HTTP engine's thread.
Result<LayerFiles> read_layer_files(const std::vector<Layer>& layers, const std::vector<std::string>& wanted,
                                    std::size_t max_file_size = 64u << 20, const FileSearch* search = nullptr);

}  // namespace fastsync::release
