// Image manifests and manifest lists in the four media types fastsync accepts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/result.h"

namespace fastsync {

namespace media_type {
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
// The Accept header value for manifest requests: all four, nothing else.
inline constexpr std::string_view kAcceptAll =
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json";
}  // namespace media_type

bool is_list_media_type(std::string_view media_type);
bool is_image_media_type(std::string_view media_type);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string str() const;  // "linux/amd64" or "linux/arm64/v8"
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  std::uint64_t size = 0;
  Platform platform;  // list entries only
};

// A manifest exactly as the registry served it. `bytes` are never re-serialised:
// the digest is of these bytes.
struct ManifestData {
  std::string bytes;
  std::string media_type;
  std::string digest;
};

struct ParsedManifest {
  std::string media_type;
  bool is_list = false;
  Descriptor config;                 // images
  std::vector<Descriptor> layers;    // images
  std::vector<Descriptor> children;  // lists
  std::string subject;               // OCI 1.1: the digest this manifest is attached to (a referrer)
};

// Parses a manifest body. The media type comes from the body's "mediaType"
// field, else from the Content-Type the registry sent (`content_type`).
Result<ParsedManifest> parse_manifest(std::string_view bytes, std::string_view content_type);

// Picks the list entry for "os/arch[/variant]" (e.g. "linux/amd64").
const Descriptor* find_platform(const ParsedManifest& list, std::string_view platform);

}  // namespace fastsync
