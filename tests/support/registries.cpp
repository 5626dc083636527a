#include "tests/support/registries.h"

#include <curl/curl.h>
#include <rapidjson/document.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "registry/core/digest.h"

namespace fastsync::testing {
namespace {

void must(const CommandResult& r, const std::string& what) {
  if (r.exit_code != 0) throw std::runtime_error(what + " failed: " + r.err);
}

std::string python() { return "/usr/bin/python3"; }

}  // namespace

TlsFiles make_tls_files(const std::string& dir, const std::vector<std::string>& extra_names) {
  TlsFiles f{
      dir + "/ca.pem",           dir + "/ca.key", dir + "/server.pem", dir + "/server.key", dir + "/client/client.cert",
      dir + "/client/client.key"};
  std::string ca_key = f.ca_key, csr = dir + "/server.csr", ext = dir + "/ext.cnf";
  std::string names = "IP:127.0.0.1,DNS:localhost";
  for (const auto& n : extra_names) names += ",DNS:" + n;
  write_file(ext, "subjectAltName=" + names + "\nbasicConstraints=CA:FALSE\n");
  must(run_command({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", ca_key, "-out", f.ca_cert, "-days", "2", "-subj", "/CN=fastsync test CA"}),
       "openssl CA");
  must(run_command({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    f.server_key, "-out", csr, "-subj", "/CN=127.0.0.1"}),
       "openssl CSR");
  must(run_command({"openssl", "x509", "-req", "-in", csr, "-CA", f.ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", f.server_cert, "-days", "2", "-extfile", ext}),
       "openssl sign");
  must(run_command({"mkdir", "-p", dir + "/client"}), "mkdir");
  std::string client_csr = dir + "/client.csr", client_ext = dir + "/client-ext.cnf";
  write_file(client_ext, "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  must(run_command({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    f.client_key, "-out", client_csr, "-subj", "/CN=fastsync test client"}),
       "openssl client CSR");
  must(run_command({"openssl", "x509", "-req", "-in", client_csr, "-CA", f.ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", f.client_cert, "-days", "2", "-extfile", client_ext}),
       "openssl sign client");
  return f;
}

TestRegistry::TestRegistry(TestRegistryOptions options) : options_(std::move(options)), dir_("fastsync-registry") {
  if (options_.tls) tls_ = make_tls_files(dir_.path(), options_.tls_names);
  if (!options_.basic_user.empty()) {
    auto colon = options_.basic_user.find(':');
    auto r =
        run_command({"htpasswd", "-Bbn", options_.basic_user.substr(0, colon), options_.basic_user.substr(colon + 1)});
    must(r, "htpasswd");
    write_file(dir_.file("htpasswd"), r.out);
  }
  if (!options_.token_users.empty() || options_.anonymous_pull) {
    must(run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir_.file("token.key"),
                      "-out", dir_.file("token.pem"), "-days", "2", "-subj", "/CN=fastsync test token signer"}),
         "openssl token key");
    std::vector<std::string> argv = {python(),     source_dir() + "/tests/servers/token_server.py",
                                     "--key",      dir_.file("token.key"),
                                     "--cert",     dir_.file("token.pem"),
                                     "--issuer",   "fastsync-test-issuer",
                                     "--service",  "fastsync-test-registry",
                                     "--expires",  std::to_string(options_.token_expires_seconds),
                                     "--lifetime", std::to_string(options_.token_lifetime_seconds),
                                     "--log",      dir_.file("token.log")};
    for (const auto& u : options_.token_users) {
      argv.push_back("--user");
      argv.push_back(u);
    }
    if (options_.anonymous_pull) argv.push_back("--anonymous-pull");
    write_file(dir_.file("token.log"), "");
    token_server_ = std::make_unique<Process>(argv, dir_.file("token_server.err"));
    token_port_ = token_server_->wait_ready().at("port");
  }
  port_ = free_port();
  host_ = "127.0.0.1:" + std::to_string(port_);
  start();
}

TestRegistry::~TestRegistry() { stop(); }

void TestRegistry::write_config() {
  std::ostringstream c;
  c << "version: 0.1\n"
    << "log:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\n"
    << "storage:\n  filesystem:\n    rootdirectory: " << dir_.file("data") << "\n"
    << "  delete:\n    enabled: true\n"
    << "  maintenance:\n    uploadpurging:\n      enabled: false\n"
    << (options_.read_only ? "    readonly:\n      enabled: true\n" : "") << "http:\n  addr: " << host_
    << "\n  secret: fastsync-test-secret\n";
  if (options_.tls) {
    c << "  tls:\n    certificate: " << tls_.server_cert << "\n    key: " << tls_.server_key << "\n";
    if (options_.client_certs) c << "    clientcas:\n      - " << tls_.ca_cert << "\n";
  }
  if (!options_.basic_user.empty()) {
    c << "auth:\n  htpasswd:\n    realm: fastsync-test\n    path: " << dir_.file("htpasswd") << "\n";
  } else if (token_server_) {
    c << "auth:\n  token:\n    realm: http://127.0.0.1:" << token_port_ << "/token\n"
      << "    service: fastsync-test-registry\n    issuer: fastsync-test-issuer\n"
      << "    rootcertbundle: " << dir_.file("token.pem") << "\n";
  }
  write_file(dir_.file("config.yml"), c.str());
}

void TestRegistry::start() {
  if (registry_) return;
  write_config();
  registry_ = std::make_unique<Process>(std::vector<std::string>{"docker-registry", "serve", dir_.file("config.yml")},
                                        dir_.file("registry.log"));
  wait_until_serving();
}

void TestRegistry::stop() {
  if (registry_) registry_->stop();
  registry_.reset();
}

void TestRegistry::wait_until_serving() {
  // Readiness poll with a deadline (the registry has no "ready" signal of its own).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string url = this->url() + "/v2/";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!registry_->running()) {
      throw std::runtime_error("docker-registry exited:\n" + read_file(dir_.file("registry.log")));
    }
    CURL* h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
    if (options_.tls) curl_easy_setopt(h, CURLOPT_CAINFO, tls_.ca_cert.c_str());
    if (options_.client_certs) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, tls_.client_cert.c_str());
      curl_easy_setopt(h, CURLOPT_SSLKEY, tls_.client_key.c_str());
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (rc == CURLE_OK && (status == 200 || status == 401)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("docker-registry did not start serving on " + host_);
}

std::vector<TestRegistry::LoggedRequest> TestRegistry::requests() const {
  std::vector<LoggedRequest> out;
  std::ifstream in(dir_.file("registry.log"));
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("http.request.method") ||
        !d.HasMember("http.response.status")) {
      continue;
    }
    LoggedRequest r;
    r.method = d["http.request.method"].GetString();
    r.uri = d["http.request.uri"].GetString();
    r.status = d["http.response.status"].GetInt();
    if (d.HasMember("http.request.useragent")) r.user_agent = d["http.request.useragent"].GetString();
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> TestRegistry::blob_gets() const {
  std::vector<std::string> digests;
  for (const auto& r : requests()) {
    auto pos = r.uri.find("/blobs/sha256:");
    if (r.method == "GET" && pos != std::string::npos && (r.status == 200 || r.status == 206)) {
      digests.push_back(r.uri.substr(pos + 7, 71));
    }
  }
  return digests;
}

std::string TestRegistry::token_log() const { return read_file(dir_.file("token.log")); }

std::string TestRegistry::client_cert_dir() const {
  return options_.client_certs ? dir_.file("client") : std::string();
}

std::string skopeo_copy(const TestRegistry& from, const std::string& from_ref, const TestRegistry& to,
                        const std::string& to_ref) {
  auto r = run_command({"skopeo", "copy", "--all", "--preserve-digests", "--quiet", "--src-tls-verify=false",
                        "--dest-tls-verify=false", "docker://" + from.host() + "/" + from_ref,
                        "docker://" + to.host() + "/" + to_ref});
  return r.exit_code == 0 ? std::string() : "skopeo exited " + std::to_string(r.exit_code) + ": " + r.err;
}

std::string skopeo_raw_manifest(const TestRegistry& reg, const std::string& repo_ref, const std::string& creds) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw", "--tls-verify=false"};
  if (!reg.client_cert_dir().empty()) {
    argv.push_back("--cert-dir");
    argv.push_back(reg.client_cert_dir());
  }
  if (!creds.empty()) {
    argv.push_back("--creds");
    argv.push_back(creds);
  }
  argv.push_back("docker://" + reg.host() + "/" + repo_ref);
  auto r = run_command(argv);
  return r.exit_code == 0 ? r.out : std::string();
}

std::vector<std::string> curl_command(const TestRegistry& reg, const std::string& creds) {
  std::vector<std::string> argv = {"curl", "-sS", "-L"};
  if (!reg.ca_file().empty()) {
    argv.push_back("--cacert");
    argv.push_back(reg.ca_file());
  }
  if (!reg.client_cert_dir().empty()) {
    argv.push_back("--cert");
    argv.push_back(reg.tls_files().client_cert);
    argv.push_back("--key");
    argv.push_back(reg.tls_files().client_key);
  }
  if (!creds.empty()) {
    argv.push_back("-u");
    argv.push_back(creds);
  }
  return argv;
}

std::string curl_blob(const TestRegistry& reg, const std::string& repository, const std::string& digest,
                      const std::string& creds) {
  auto argv = curl_command(reg, creds);
  argv.push_back("-f");
  argv.push_back(reg.url() + "/v2/" + repository + "/blobs/" + digest);
  auto r = run_command(argv);
  return r.exit_code == 0 ? r.out : std::string();
}

int curl_blob_status(const TestRegistry& reg, const std::string& repository, const std::string& digest,
                     const std::string& creds) {
  auto argv = curl_command(reg, creds);
  for (std::string a : {"-I", "-o", "/dev/null", "-w", "%{http_code}"}) argv.push_back(a);
  argv.push_back(reg.url() + "/v2/" + repository + "/blobs/" + digest);
  auto r = run_command(argv);
  return std::atoi(r.out.c_str());
}

std::string curl_push_blob(const TestRegistry& reg, const std::string& repository, const std::string& file,
                           const std::string& creds) {
  // Hash in chunks: a test pushing 100 MB must not itself hold 100 MB.
  Sha256 hasher;
  std::ifstream in(file, std::ios::binary);
  std::vector<char> chunk(1 << 20);
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    hasher.update(std::string_view(chunk.data(), static_cast<size_t>(in.gcount())));
  }
  std::string digest = hasher.finish();
  auto post = curl_command(reg, creds);
  for (std::string a : {"-f", "-X", "POST", "-D", "-", "-o", "/dev/null"}) post.push_back(a);
  post.push_back(reg.url() + "/v2/" + repository + "/blobs/uploads/");
  auto r = run_command(post);
  must(r, "curl POST upload");
  std::string location;
  std::istringstream headers(r.out);
  std::string line;
  while (std::getline(headers, line)) {
    if (line.size() > 9 && strncasecmp(line.c_str(), "location:", 9) == 0) {
      location = line.substr(9);
      while (!location.empty() && (location.front() == ' ')) location.erase(0, 1);
      while (!location.empty() && (location.back() == '\r' || location.back() == ' ')) location.pop_back();
    }
  }
  if (location.rfind("http", 0) != 0) location = reg.url() + location;
  location += (location.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
  auto put = curl_command(reg, creds);
  for (std::string a : {"-f", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary"})
    put.push_back(a);
  put.push_back("@" + file);
  put.push_back(location);
  must(run_command(put), "curl PUT blob");
  return digest;
}

}  // namespace fastsync::testing
