// Whom TLS connections trust, per host, the way users' other tools already do:
//
//   - the system's store: libcurl's own default bundle (so whatever the distro
//     ships, e.g. /etc/pki/tls/certs/ca-bundle.crt on RHEL), or SSL_CERT_FILE /
//     SSL_CERT_DIR when set, as OpenSSL and Go programs (podman, skopeo) honour;
//   - plus --ca-file, for every host;
//   - plus the per-registry directories podman, skopeo and docker read:
//     <certs dir>/<host[:port]>/*.crt as CAs, and a *.cert + *.key pair there
//     as the client certificate for mutual TLS.
// Extra CAs are added on top of the system store (never instead of it).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "registry/http_engine.h"
#include "registry/result.h"

namespace fastsync {

// Parsed PEM certificates, added to each new TLS context.
class CaCertificates {
 public:
  ~CaCertificates();
  CaCertificates(const CaCertificates&) = delete;
  CaCertificates& operator=(const CaCertificates&) = delete;
  // Every certificate in each PEM file; an error names the file that has none or cannot be read.
  static Result<std::shared_ptr<const CaCertificates>> load(const std::vector<std::string>& pem_files);
  bool empty() const { return certs_.empty(); }
  // Adds them to an OpenSSL SSL_CTX (passed as void*, as libcurl hands it over).
  bool add_to(void* ssl_ctx) const;

 private:
  CaCertificates() = default;
  std::vector<void*> certs_;  // X509*
};

struct TrustSettings {
  bool verify = true;                  // false with --insecure
  std::vector<std::string> ca_files;   // --ca-file
  std::vector<std::string> certs_dirs = {"/etc/containers/certs.d", "/etc/docker/certs.d"};
  std::string system_bundle;           // SSL_CERT_FILE (empty: libcurl's default)
  std::string system_dir;              // SSL_CERT_DIR (empty: libcurl's default)
  // The environment's SSL_CERT_FILE / SSL_CERT_DIR.
  void read_environment();
};

class TrustStore {
 public:
  explicit TrustStore(TrustSettings settings);
  // Checks --ca-file up front, for one clear error before any work.
  Status validate() const;
  // TLS options for connections to `host_port` (as written: "registry:5000").
  // Cached; an unreadable certs.d file is an error naming it.
  Result<TlsOptions> for_host(const std::string& host_port);
  const TrustSettings& settings() const { return settings_; }

 private:
  TrustSettings settings_;
  std::mutex mutex_;
  std::map<std::string, TlsOptions> cache_;
};

}  // namespace fastsync
