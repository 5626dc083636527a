#include <fmt/format.h>

#include "registry/core/endpoint.h"

namespace fastsync {

std::string sigstore_tag(const std::string& digest) {
  auto colon = digest.find(':');
  return fmt::format("{}-{}.sig", digest.substr(0, colon), digest.substr(colon + 1));
}

void add_referrers(std::vector<Attachment>& found, const std::vector<std::string>& digests) {
  for (const auto& d : digests) {
    bool known = false;
    for (const auto& f : found) known = known || f.digest == d;
    if (!known) found.push_back(Attachment{"", d});
  }
}

Task<Result<std::vector<Attachment>>> ImageSource::attachments(const Repository& repo, const std::string& digest) {
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
