// Turning "--version 4.20.8 --arch x86_64" into the list of images to mirror,
// exactly as the release image's image-references defines it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/core/endpoint.h"
#include "registry/core/manifest.h"
#include "registry/core/result.h"
#include "registry/core/task.h"
#include "release/payload/layer_files.h"
#include "release/payload/image_references.h"
#include "release/signatures/signatures.h"

namespace fastsync::release {

inline constexpr const char* kImageReferencesPath = "release-manifests/image-references";
inline constexpr const char* kReleaseMetadataPath = "release-manifests/release-metadata";

// x86_64 -> linux/amd64, aarch64 -> linux/arm64, ppc64le, s390x; "" for "multi" or unknown.
std::string platform_for_arch(const std::string& arch);
bool is_known_arch(const std::string& arch);

// oc adm release mirror's naming: the release at <version>-<arch>, components at <version>-<arch>-<name>.
std::string release_tag(const std::string& version, const std::string& arch);
std::string component_tag(const std::string& version, const std::string& arch, const std::string& name);

struct ReleaseRequest {
  std::string version;
  std::string arch = "x86_64";
  std::string platform;  // manifest-list child holding the payload; default from arch (linux/amd64 for multi)
  Repository source;     // --source-registry
  // Where a copy of the release may already be (the destination, when it can
  // be read): if it holds the payload image, its layers are read there and the
  // source sees no blob GET.
  struct LocalCopy {
    ImageSource* endpoint = nullptr;
    Repository repository;
  };
  std::optional<LocalCopy> local_copy;
  // The release image's digest (from the update graph): fetched by digest
  // rather than by its tag, which the source need not have.
  std::string digest;
};

struct Component {
  std::string name;
  std::string original;   // from.name as image-references wrote it
  Repository repository;  // where fastsync pulls it from
  std::string digest;
};

// Layers read whole while resolving, kept (verified) so the mirror uploads them
// from memory instead of fetching them from the source a second time.

struct Release {
  std::string version;
  std::string arch;
  std::string tag;
  Repository repository;       // the release image's source repository
  ManifestData manifest;       // release image (a list for multi), exact bytes
  std::string payload_digest;  // the image whose layers hold release-manifests/
  ReleaseMetadata metadata;
  std::vector<Component> components;
  FetchedBlobs fetched_layers;
  // The verifier keys the payload carries (release-manifests/, the ConfigMap
  // annotated release.openshift.io/verification-config-map), and its file.
  std::vector<PublicKey> verification_keys;
  std::string verification_file;
};

// Resolves the tag, reads image-references and release-metadata from the
// payload's layers (streamed, nothing on disk) and validates them.
//
// Component source: a component is pulled from the repository image-references
// names. When that host is not the --source-registry host (image-references
// says quay.io but the source is a local mirror or pull-through cache), it is
// pulled from the --source-registry host under the same repository path. The
// digest pins the content, so the bytes are the same wherever they come from.
Task<Result<Release>> resolve_release(ImageSource& source, ReleaseRequest request);

}  // namespace fastsync::release
