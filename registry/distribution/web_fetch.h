// Plain GETs of public documents (release signatures, the update graph): no
// registry credentials, the registries' TLS trust, retry policy and stall
// limit, redirects followed, the body capped in memory.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "registry/distribution/registry.h"
#include "registry/net/http_engine.h"
#include "registry/net/trust.h"

namespace fastsync {

struct WebDocument {
  bool absent = false;  // 404
  std::string body;
  std::optional<Error> error;  // anything else that is not 2xx, after retries
};

class WebFetcher {
 public:
  WebFetcher(HttpEngine& engine, TrustStore& trust, RegistryOptions options)
      : engine_(engine), trust_(trust), options_(std::move(options)) {}
  Task<WebDocument> get(std::string url, std::size_t max_bytes, std::vector<std::string> headers = {});

 private:
  HttpEngine& engine_;
  TrustStore& trust_;
  RegistryOptions options_;
};

}  // namespace fastsync
