#include "registry/core/endpoint.h"

namespace fastsync {

Task<Result<BlobProbe>> ImageDestination::probe_blob(Repository to, std::string digest,
                                                     std::optional<Repository> mount_from) {
  auto present = co_await blob_exists(to, digest);
  if (present) co_return BlobProbe{true, false, {}};
  if (present.error().kind != ErrorKind::NotFound) co_return present.error();
  if (!mount_from) co_return BlobProbe{};
  // A mount moves no bytes; refused with 202 it opened the session the upload then uses.
  auto mounted = co_await mount_blob(to, digest, *mount_from);
  if (!mounted) co_return BlobProbe{};  // a failed mount is no reason not to copy
  if (mounted->mounted) co_return BlobProbe{true, true, {}};
  co_return BlobProbe{false, false, mounted->upload_session};
}

Task<Result<ManifestStanding>> ImageDestination::find_manifest(Repository repo, std::string digest, std::string /*tag*/,
                                                               bool with_bytes) {
  ManifestStanding standing;
  if (with_bytes) {
    auto manifest = co_await get_manifest(repo, digest);
    if (manifest) {
      standing.present = true;
      standing.manifest = std::move(*manifest);
    } else if (manifest.error().kind != ErrorKind::NotFound) {
      co_return manifest.error();
    }
    co_return standing;
  }
  auto there = co_await manifest_digest(repo, digest);
  if (there) {
    standing.present = *there == digest;
  } else if (there.error().kind != ErrorKind::NotFound) {
    co_return there.error();
  }
  co_return standing;
}

}  // namespace fastsync
