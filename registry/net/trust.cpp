#include "registry/net/trust.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "registry/core/log.h"
#include "registry/net/curl_handles.h"

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

namespace {

void add_certificates(void* x509_store, const std::vector<void*>& certs) {
  auto* store = static_cast<X509_STORE*>(x509_store);
  for (void* cert : certs) {
    // Already present (the same CA in the system store) is not an error.
    if (X509_STORE_add_cert(store, static_cast<X509*>(cert)) != 1) ERR_clear_error();
  }
}

}  // namespace

void CaCertificates::add_to(void* x509_store) const { add_certificates(x509_store, certs_); }

SystemCertificates::~SystemCertificates() {
  for (void* cert : certs_) X509_free(static_cast<X509*>(cert));
}

void SystemCertificates::parse() const {
  if (bundle_.empty()) return;
  // OpenSSL's own loader, as libcurl uses it: the same certificates trusted.
  X509_STORE* loaded = X509_STORE_new();
  if (!loaded) return;
  if (X509_STORE_load_file(loaded, bundle_.c_str()) != 1) {
    logging::warn("cannot read the CA bundle {}: none of its certificates is trusted", bundle_);
    ERR_clear_error();
  }
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(loaded);
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
    if (X509* cert = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i)); cert && X509_up_ref(cert) == 1) {
      certs_.push_back(cert);
    }
  }
  X509_STORE_free(loaded);
}

void SystemCertificates::add_to(void* x509_store) const {
  std::call_once(parsed_, [this] { parse(); });
  add_certificates(x509_store, certs_);
}

namespace {

// Verifies a server's chain, the system bundle joining the host's store first.
int verify_chain(X509_STORE_CTX* ctx, void* host_trust) {
  static_cast<const HostTrust*>(host_trust)->complete();
  return X509_verify_cert(ctx);
}

// libcurl's compiled-in CA bundle or directory (CURLINFO_CAINFO / CAPATH).
std::string curl_default(CURLINFO what) {
  CurlEasy probe(curl_easy_init());
  char* value = nullptr;
  if (!probe || curl_easy_getinfo(probe.get(), what, &value) != CURLE_OK || !value) return {};
  return value;
}

}  // namespace

HostTrust::HostTrust(std::shared_ptr<const SystemCertificates> system, const std::string& ca_dir,
                     std::shared_ptr<const CaCertificates> extra)
    : system_(std::move(system)), extra_(std::move(extra)) {
  X509_STORE* store = X509_STORE_new();
  if (!store) throw std::bad_alloc();
  // As libcurl sets up its stores: a CA in the store anchors a chain even when
  // it is an intermediate.
  X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
  if (!ca_dir.empty() && X509_STORE_load_path(store, ca_dir.c_str()) != 1) ERR_clear_error();
  if (extra_) extra_->add_to(store);
  store_ = store;
}

HostTrust::~HostTrust() { X509_STORE_free(static_cast<X509_STORE*>(store_)); }

bool HostTrust::install(void* ssl_ctx) const {
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  auto* store = static_cast<X509_STORE*>(store_);
  if (X509_STORE_up_ref(store) != 1) return false;
  SSL_CTX_set_cert_store(ctx, store);  // the context holds its own reference
  SSL_CTX_set_cert_verify_callback(ctx, verify_chain, const_cast<HostTrust*>(this));
  return true;
}

void HostTrust::complete() const {
  std::call_once(completed_, [this] {
    if (system_) system_->add_to(store_);
  });
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
      return Error::make(ErrorKind::Invalid,
                         fmt::format("client key {} has no matching certificate {}", key, cert.string()));
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
  std::shared_ptr<const CaCertificates> extra;
  if (!ca_files.empty()) {
    auto cas = CaCertificates::load(ca_files);
    if (!cas) return cas.error();
    extra = *cas;
  }
  if (tls.verify) {
    if (!system_) {
      system_ = std::make_shared<const SystemCertificates>(
          settings_.system_bundle.empty() ? curl_default(CURLINFO_CAINFO) : settings_.system_bundle);
      system_dir_ = settings_.system_dir.empty() ? curl_default(CURLINFO_CAPATH) : settings_.system_dir;
    }
    tls.trust = std::make_shared<const HostTrust>(system_, system_dir_, std::move(extra));
  }
  cache_.emplace(host_port, tls);
  return tls;
}

}  // namespace fastsync
