#include "registry/trust.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace fastsync {
namespace fs = std::filesystem;

CaCertificates::~CaCertificates() {
  for (void* cert : certs_) X509_free(static_cast<X509*>(cert));
}

Result<std::shared_ptr<const CaCertificates>> CaCertificates::load(const std::vector<std::string>& pem_files) {
  std::shared_ptr<CaCertificates> out(new CaCertificates());
  for (const auto& file : pem_files) {
    BIO* bio = BIO_new_file(file.c_str(), "r");
    if (!bio) return Error::make(ErrorKind::Invalid, fmt::format("cannot read CA certificate file {}", file));
    std::size_t before = out->certs_.size();
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out->certs_.push_back(cert);
    BIO_free(bio);
    if (out->certs_.size() == before) {
      return Error::make(ErrorKind::Invalid, fmt::format("{} holds no PEM certificate", file));
    }
  }
  return std::shared_ptr<const CaCertificates>(std::move(out));
}

bool CaCertificates::add_to(void* ssl_ctx) const {
  X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_ctx));
  if (!store) return false;
  for (void* cert : certs_) {
    // Already present (the same CA in the system store) is not an error.
    if (X509_STORE_add_cert(store, static_cast<X509*>(cert)) != 1) ERR_clear_error();
  }
  return true;
}

void TrustSettings::read_environment() {
  if (const char* file = std::getenv("SSL_CERT_FILE"); file && *file) system_bundle = file;
  if (const char* dir = std::getenv("SSL_CERT_DIR"); dir && *dir) system_dir = dir;
}

TrustStore::TrustStore(TrustSettings settings) : settings_(std::move(settings)) {}

Status TrustStore::validate() const {
  auto cas = CaCertificates::load(settings_.ca_files);
  if (!cas) return cas.error();
  return Status{};
}

Result<TlsOptions> TrustStore::for_host(const std::string& host_port) {
  std::lock_guard lock(mutex_);
  if (auto hit = cache_.find(host_port); hit != cache_.end()) return hit->second;

  TlsOptions tls;
  tls.verify = settings_.verify;
  tls.ca_bundle = settings_.system_bundle;
  tls.ca_dir = settings_.system_dir;
  std::vector<std::string> ca_files = settings_.ca_files;
  std::vector<std::string> client_certs;
  std::vector<std::string> client_keys;
  for (const auto& root : settings_.certs_dirs) {
    std::error_code ec;
    fs::path dir = fs::path(root) / host_port;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto ext = f.extension().string();
      if (ext == ".crt") ca_files.push_back(f.string());
      if (ext == ".cert") client_certs.push_back(f.string());
      if (ext == ".key") client_keys.push_back(f.string());
    }
    // The first directory that has anything for this host wins, as in containers/image.
    if (!files.empty()) break;
  }
  for (const auto& key : client_keys) {
    fs::path cert = fs::path(key).replace_extension(".cert");
    if (std::find(client_certs.begin(), client_certs.end(), cert.string()) == client_certs.end()) {
      return Error::make(ErrorKind::Invalid, fmt::format("client key {} has no matching certificate {}", key, cert.string()));
    }
  }
  for (const auto& cert : client_certs) {
    // docker's rule: client.cert goes with client.key.
    fs::path key = fs::path(cert).replace_extension(".key");
    if (std::find(client_keys.begin(), client_keys.end(), key.string()) == client_keys.end()) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("client certificate {} has no matching key {}", cert, key.string()));
    }
    tls.client_cert = cert;
    tls.client_key = key.string();
    break;
  }
  if (!ca_files.empty()) {
    auto cas = CaCertificates::load(ca_files);
    if (!cas) return cas.error();
    tls.extra_cas = *cas;
  }
  cache_.emplace(host_port, tls);
  return tls;
}

}  // namespace fastsync
