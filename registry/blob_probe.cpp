#include "registry/api.h"

namespace fastsync {

Task<Result<BlobProbe>> RegistryApi::probe_blob(Repository to, std::string digest,
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

}  // namespace fastsync
