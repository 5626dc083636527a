// oc-mirror v2's ImageSetConfiguration: the one file administrators keep per
// environment (releases by channel, additional images, blocked images,
// operator catalogs). Read with yaml-cpp; every problem is one line naming the
// file, the line and the field's path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/result.h"
#include "release/imageset/catalog.h"

namespace fastsync::imageset {

struct ReleaseChannel {
  std::string name;         // e.g. stable-4.20
  std::string min_version;  // empty: from the max alone (the channel's head without either)
  std::string max_version;  // empty: the channel's latest
  bool shortest_path = false;
  bool full = false;  // every release of the channel (min/max bound it where given)
  int line = 0;
};

// An entry of additionalImages or blockedImages, as written.
struct NamedImage {
  std::string name;
  int line = 0;
};

// operators[]: a catalog and what of it to keep (catalog.h's selection rules).
struct OperatorCatalog {
  std::string catalog;  // the catalog image, by tag or digest
  CatalogFilter filter;
  std::string target_catalog;  // where the kept catalog lands instead of the catalog's own path
  std::string target_tag;      // its tag instead of the catalog's own
  int line = 0;
};

struct ImageSet {
  std::string file;         // as given, for messages
  std::string api_version;  // mirror.openshift.io/v2alpha1 or v1alpha2
  std::optional<std::uint64_t> archive_size_gib;
  std::vector<ReleaseChannel> channels;
  std::vector<std::string> architectures;  // as the file names them (amd64, arm64, ppc64le, s390x, multi)
  bool graph = false;
  std::vector<NamedImage> additional_images;
  std::vector<NamedImage> blocked_images;
  std::vector<OperatorCatalog> operators;
  std::vector<std::string> notes;  // accepted and ignored (storageConfig), said once
};

// `file` names the file in messages. Errors: ErrorKind::Invalid, one line
// "<file>:<line>: <field path>: <problem>".
Result<ImageSet> parse_image_set(std::string_view yaml, const std::string& file);
Result<ImageSet> load_image_set(const std::string& path);

// The release architecture (as release tags spell it: x86_64, aarch64, …) of
// an image set architecture; nullopt when unknown.
std::optional<std::string> release_arch(std::string_view image_set_arch);

}  // namespace fastsync::imageset
