#include "registry/client/signature_stores.h"

#include <fmt/format.h>

namespace fastsync {

std::vector<std::string> default_signature_stores() {
  return {"https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release",
          "https://storage.googleapis.com/openshift-release/official/signatures/openshift/release"};
}

SignatureStores::SignatureStores(HttpEngine& engine, TrustStore& trust, RegistryOptions options,
                                 std::vector<std::string> stores)
    : web_(engine, trust, std::move(options)), stores_(std::move(stores)) {
  for (auto& s : stores_) {
    while (!s.empty() && s.back() == '/') s.pop_back();
  }
}

Task<FetchedSignatures> SignatureStores::read_store(std::string store, std::string hex) {
  FetchedSignatures out;
  for (int n = 1; n <= kMaxSignaturesPerStore; ++n) {
    std::string url = fmt::format("{}/sha256={}/signature-{}", store, hex, n);
    auto got = co_await web_.get(url, kMaxSignatureBytes);
    if (got.absent) break;
    if (got.error) {
      // One signature too large is skipped; anything else ends this store.
      if (got.error->kind == ErrorKind::TooLarge) {
        out.problems.push_back(got.error->message);
        continue;
      }
      out.problems.push_back(fmt::format("signature store {}: {}", store, got.error->message));
      break;
    }
    out.found.push_back(SignatureCandidate{url, std::move(got.body)});
  }
  co_return out;
}

Task<FetchedSignatures> SignatureStores::release_signatures(const std::string& digest) {
  std::string hex = digest.substr(digest.find(':') + 1);
  std::vector<Task<FetchedSignatures>> reads;
  for (const auto& store : stores_) reads.push_back(read_store(store, hex));
  auto by_store = co_await when_all(std::move(reads));
  // In the stores' order, whatever order they answered in.
  FetchedSignatures all;
  for (auto& s : by_store) {
    for (auto& f : s.found) all.found.push_back(std::move(f));
    for (auto& p : s.problems) all.problems.push_back(std::move(p));
  }
  co_return all;
}

}  // namespace fastsync
