// Release signatures from signature stores over HTTP(S): <store>/sha256=<hex>/signature-N
// for N = 1, 2, … until a 404 (at most nine, at most 50 KiB each), every store
// asked at once, with the registries' retry, stall and TLS rules and no
// credentials (stores are public; nothing from the pull secret goes there).
#pragma once

#include <string>
#include <vector>

#include "registry/core/signature_source.h"
#include "registry/distribution/web_fetch.h"

namespace fastsync {

// The stores oc and the cluster use.
std::vector<std::string> default_signature_stores();

class SignatureStores : public SignatureSource {
 public:
  SignatureStores(HttpEngine& engine, TrustStore& trust, RegistryOptions options, std::vector<std::string> stores);
  Task<FetchedSignatures> release_signatures(const std::string& digest) override;
  const std::vector<std::string>& stores() const { return stores_; }

 private:
  Task<FetchedSignatures> read_store(std::string store, std::string hex);

  WebFetcher web_;
  std::vector<std::string> stores_;
};

}  // namespace fastsync
