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

Task<Result<std::string>> read_whole_blob(ImageSource& source, const Repository& repo, const Descriptor& blob,
                                          std::size_t max_bytes) {
  auto read = [&source, &repo, &blob, max_bytes]() -> Result<std::string> {
    auto reader = source.open_blob(repo, blob);
    std::string bytes;
    std::vector<char> buffer(1 << 16);
    while (true) {
      auto n = reader->read(buffer.data(), buffer.size());
      if (!n) return n.error();
      if (*n == 0) return bytes;
      bytes.append(buffer.data(), *n);
      if (bytes.size() > max_bytes) {
        return Error::make(ErrorKind::Invalid,
                           fmt::format("{}: larger than {} bytes", repo.at(blob.digest), max_bytes));
      }
    }
  };
  co_return co_await run_blocking(std::move(read));
}

}  // namespace fastsync
