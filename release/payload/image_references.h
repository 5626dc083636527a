// release-manifests/image-references (an ImageStream) and release-metadata,
// parsed and validated the way oc does: every component pinned by digest.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "registry/core/reference.h"
#include "registry/core/result.h"

namespace fastsync::release {

struct ComponentRef {
  std::string name;  // spec.tags[].name, e.g. "etcd"
  Reference image;   // spec.tags[].from.name, digest-pinned
};

struct ImageReferences {
  std::string name;  // metadata.name (the release version, by convention)
  std::vector<ComponentRef> components;
};

struct ReleaseMetadata {
  std::string version;
  std::vector<std::string> previous;
};

// Errors name the field or the tag at fault, prefixed "image-references:".
Result<ImageReferences> parse_image_references(std::string_view json);
// Errors are prefixed "release-metadata:".
Result<ReleaseMetadata> parse_release_metadata(std::string_view json);

}  // namespace fastsync::release
