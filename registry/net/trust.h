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
//
// Each host gets one X509 store, shared by all its connections, and the system
// bundle is parsed once per run, the first time a handshake verifies a
// certificate (libcurl left to itself parses it for every new connection: ~40 ms
// of CPU each, most of a TLS run's client CPU). A plain-HTTP registry that is
// first tried over https therefore costs no parsing at all.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "registry/core/result.h"
#include "registry/net/http_engine.h"

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
  // Adds them to an OpenSSL X509_STORE (passed as void*).
  void add_to(void* x509_store) const;

 private:
  CaCertificates() = default;
  std::vector<void*> certs_;  // X509*
};

// The system's CA bundle (SSL_CERT_FILE, else libcurl's default), parsed on first use.
class SystemCertificates {
 public:
  explicit SystemCertificates(std::string bundle) : bundle_(std::move(bundle)) {}
  ~SystemCertificates();
  SystemCertificates(const SystemCertificates&) = delete;
  SystemCertificates& operator=(const SystemCertificates&) = delete;
  // Adds them to an X509_STORE (as void*). An unreadable bundle is logged once
  // and adds nothing: the handshake then fails as untrusted, naming the host.
  void add_to(void* x509_store) const;

 private:
  void parse() const;
  std::string bundle_;
  mutable std::once_flag parsed_;
  mutable std::vector<void*> certs_;  // X509*
};

// One host's trust: the system bundle, a lookup directory (SSL_CERT_DIR, else
// libcurl's default; only the certificates a handshake asks for are read) and the
// extra CAs (--ca-file, certs.d).
class HostTrust {
 public:
  HostTrust(std::shared_ptr<const SystemCertificates> system, const std::string& ca_dir,
            std::shared_ptr<const CaCertificates> extra);
  ~HostTrust();
  HostTrust(const HostTrust&) = delete;
  HostTrust& operator=(const HostTrust&) = delete;
  // Gives a new TLS context (an OpenSSL SSL_CTX, as libcurl hands it over) this
  // host's store; the system bundle joins it when a certificate is first verified.
  bool install(void* ssl_ctx) const;
  // Adds the system bundle to the store, once.
  void complete() const;

 private:
  std::shared_ptr<const SystemCertificates> system_;
  std::shared_ptr<const CaCertificates> extra_;
  void* store_ = nullptr;  // X509_STORE*
  mutable std::once_flag completed_;
};

struct TrustSettings {
  bool verify = true;                 // false with --insecure
  std::vector<std::string> ca_files;  // --ca-file
  std::vector<std::string> certs_dirs = {"/etc/containers/certs.d", "/etc/docker/certs.d"};
  std::string system_bundle;  // SSL_CERT_FILE (empty: libcurl's default bundle)
  std::string system_dir;     // SSL_CERT_DIR (empty: libcurl's default directory)
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
  std::shared_ptr<const SystemCertificates> system_;  // made with the first host
  std::string system_dir_;
  std::map<std::string, TlsOptions> cache_;
};

}  // namespace fastsync
