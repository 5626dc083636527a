#include "registry/signature_stores.h"

#include <fmt/format.h>

#include <mutex>


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
  struct Join {
    std::mutex mutex;
    std::vector<FetchedSignatures> by_store;
    std::size_t left = 0;
    AsyncValue<bool> done;
  };
  auto join = std::make_shared<Join>();
  join->by_store.resize(stores_.size());
  join->left = stores_.size();
  std::string hex = digest.substr(digest.find(':') + 1);
  if (stores_.empty()) co_return FetchedSignatures{};
  for (std::size_t i = 0; i < stores_.size(); ++i) {
    auto finished = [join, i](FetchedSignatures r) {
      bool last = false;
      {
        std::lock_guard lock(join->mutex);
        join->by_store[i] = std::move(r);
        last = --join->left == 0;
      }
      if (last) join->done.set(true);
    };
    auto failed = [finished, store = stores_[i]](std::exception_ptr) {
      finished(FetchedSignatures{{}, {fmt::format("signature store {}: internal error", store)}});
    };
    spawn(read_store(stores_[i], hex), finished, failed);
  }
  co_await join->done.wait();
  // In the stores' order, whatever order they answered in.
  FetchedSignatures all;
  for (auto& s : join->by_store) {
    for (auto& f : s.found) all.found.push_back(std::move(f));
    for (auto& p : s.problems) all.problems.push_back(std::move(p));
  }
  co_return all;
}

}  // namespace fastsync
