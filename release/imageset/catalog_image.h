// An operator catalog image: read (its file-based catalog from the layers, as
// they stream, under the directory its configs label names) and rebuilt (the
// same image with one more layer holding only the kept catalog, for every
// platform, under a new index).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "registry/core/endpoint.h"
#include "registry/core/task.h"
#include "release/imageset/catalog.h"

namespace fastsync::imageset {

inline constexpr const char* kConfigsLabel = "operators.operatorframework.io.index.configs.v1";

struct CatalogImage {
  std::string name;  // for messages: registry/path:tag (or @digest)
  Repository repository;
  ManifestData top;                  // the index, or the one image
  std::vector<ManifestData> images;  // its platform images (`top` itself when it is an image)
  std::vector<std::string> configs;  // each image's configuration
  std::string configs_dir;           // the label's directory, without the leading '/'
  std::string cache_dir;             // opm serve's --cache-dir, without the leading '/' ("" without one)
  Catalog catalog;
  // The layers read to plan that are small enough to keep (uploaded from memory, not fetched again).
  std::map<std::string, std::shared_ptr<const std::string>> kept_layers;
};

// Blocking work runs off the engine thread. Every platform image must carry
// the same configs label; the catalog is read from the first image. With
// `packages`, only their documents are kept (each file is parsed as it is
// read and dropped, so memory follows what is kept, not the catalog's size).
Task<Result<CatalogImage>> read_catalog_image(ImageSource& source, Repository repository, std::string reference,
                                              std::string name, std::set<std::string> packages = {});

struct RebuiltCatalog {
  std::string digest;                   // of the new top manifest
  std::vector<ManifestData> manifests;  // push order: the platform images, the index last
  std::vector<Descriptor> blobs;        // every blob they need, each once
  std::map<std::string, std::shared_ptr<const std::string>> new_blobs;  // configs and the new layer, by digest
};

// What a rebuilt catalog's configuration says it was made from (labels), so a
// rerun can tell from the destination alone that it is up to date.
inline constexpr const char* kSourceLabel = "io.fastsync.catalog.source";        // the catalog's digest
inline constexpr const char* kSelectionLabel = "io.fastsync.catalog.selection";  // selection_key() of the filter
// A digest of the selection (full, packages, channels, ranges, default channels).
std::string selection_key(const CatalogFilter& filter);

// Every platform image plus one layer: the configs directory made opaque
// (".wh..wh..opq") and holding `kept` as opm lays it out
// (<dir>/<package>/catalog.json), and the serve cache whited out (it no longer
// matches; opm serve rebuilds it). Entrypoint, command and labels are kept. The
// same catalog and selection give the same bytes.
Result<RebuiltCatalog> rebuild_catalog(const CatalogImage& image, const Catalog& kept, const std::string& selection);

// The catalog a destination already holds at `repository`:`tag`, when it was
// rebuilt from `source_digest` with `selection`: its digest and the kept
// catalog, read from its top layer alone. nullopt when it is absent, was made
// from something else, or cannot be read (the catalog is then rebuilt).
struct CatalogThere {
  std::string digest;
  Catalog kept;
};
Task<std::optional<CatalogThere>> catalog_at_destination(ImageSource& dest, Repository repository, std::string tag,
                                                         std::string source_digest, std::string selection);

}  // namespace fastsync::imageset
