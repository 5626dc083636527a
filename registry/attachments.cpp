#include <fmt/format.h>

#include "registry/api.h"

namespace fastsync {

std::string sigstore_tag(const std::string& digest) {
  auto colon = digest.find(':');
  return fmt::format("{}-{}.sig", digest.substr(0, colon), digest.substr(colon + 1));
}

Task<Result<std::vector<Attachment>>> RegistryApi::attachments(const Repository& repo, const std::string& digest) {
  std::vector<Attachment> found;
  std::string tag = sigstore_tag(digest);
  auto signature = co_await manifest_digest(repo, tag);
  if (signature) {
    found.push_back(Attachment{tag, *signature});
  } else if (signature.error().kind != ErrorKind::NotFound) {
    co_return signature.error();
  }
  co_return found;
}

}  // namespace fastsync
