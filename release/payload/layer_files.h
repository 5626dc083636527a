// Reads chosen files out of an image's layers the way a container runtime
// merges them: a later layer overrides an earlier one, ".wh.<name>" deletes
// <name> below it, ".wh..wh..opq" hides a directory's lower contents.
// Every tar byte fastsync touches goes through here (libarchive).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

// Verified blob bytes already in memory, by digest: a layer read to plan is
// uploaded from memory rather than fetched again.
using FetchedBlobs = std::map<std::string, std::shared_ptr<const std::string>>;

// Passes a blob's bytes through and, if it is at most kLimit bytes, keeps
// them in `kept` once read to its verified end.
class KeepingReader : public BlobReader {
 public:
  static constexpr std::size_t kLimit = 32u << 20;
  KeepingReader(std::unique_ptr<BlobReader> inner, std::string digest, FetchedBlobs& kept, std::mutex& mutex)
      : inner_(std::move(inner)), digest_(std::move(digest)), kept_(kept), mutex_(mutex) {}
  Result<std::size_t> read(char* buffer, std::size_t capacity) override;

 private:
  std::unique_ptr<BlobReader> inner_;
  std::string digest_;
  FetchedBlobs& kept_;
  std::mutex& mutex_;
  std::string bytes_;
  bool keeping_ = true;
};

// Path -> content for each wanted path present in the merged filesystem;
// absent (deleted or never there) paths are missing from the map.
using LayerFiles = std::map<std::string, std::string>;

// Besides the wanted paths: every regular file under `dir` (up to `max_size`)
// whose content `keep` accepts, among the layers read for the wanted paths
// (the release's ConfigMaps sit beside image-references, in its layer). `keep`
// may also take what it needs from the file and return false, so that large
// searches (a catalog's configs) never hold every file at once.
struct FileSearch {
  std::string dir;
  std::size_t max_size = 1u << 20;
  std::function<bool(const std::string& path, std::string_view content)> keep;
};

// `layers` in image order (base first). Reads from the top layer down and stops
// after the first layer at which every wanted path is decided (a search with no
// wanted path reads every layer). Each layer read is
// read to its end so its digest is verified before its content is trusted.
// Blocking: run it off the HTTP engine's thread.
Result<LayerFiles> read_layer_files(const std::vector<Layer>& layers, const std::vector<std::string>& wanted,
                                    std::size_t max_file_size = 64u << 20, const FileSearch* search = nullptr);

}  // namespace fastsync::release
