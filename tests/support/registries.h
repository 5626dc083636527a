// Real registries for tests: Debian's docker-registry (CNCF distribution) on a
// free loopback port, in plain HTTP or TLS (a fresh test CA), open, with
// htpasswd Basic auth, or with Bearer tokens from tests/servers/token_server.py.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace fastsync::testing {

struct TlsFiles {
  std::string ca_cert;
  std::string ca_key;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;  // signed by the same CA, for mutual TLS
  std::string client_key;
};
// A CA, a server certificate for 127.0.0.1, localhost and `extra_names`, and a
// client certificate, made with the openssl CLI.
TlsFiles make_tls_files(const std::string& dir, const std::vector<std::string>& extra_names = {});

struct TestRegistryOptions {
  bool tls = false;
  std::vector<std::string> tls_names;  // more DNS names the server certificate is valid for
  bool client_certs = false;           // TLS: demand a client certificate signed by the test CA
  std::string basic_user;                // "user:password": htpasswd Basic auth
  std::vector<std::string> token_users;  // "user:password[:pull|pull,push]": Bearer token auth
  int token_expires_seconds = 300;   // what the token server advertises (expires_in)
  int token_lifetime_seconds = 0;    // how long the registry really accepts one (0: as advertised)
  bool anonymous_pull = false;  // token auth: anonymous pull allowed
  bool read_only = false;       // storage.maintenance.readonly: every write answered 405
};

class TestRegistry {
 public:
  explicit TestRegistry(TestRegistryOptions options = {});
  ~TestRegistry();

  const std::string& host() const { return host_; }  // 127.0.0.1:<port>
  std::string scheme() const { return options_.tls ? "https" : "http"; }
  std::string url() const { return scheme() + "://" + host_; }
  const std::string& ca_file() const { return tls_.ca_cert; }
  const TlsFiles& tls_files() const { return tls_; }
  // With client_certs: a directory holding client.cert and client.key (skopeo's --cert-dir).
  std::string client_cert_dir() const;
  const std::string& dir() const { return dir_.path(); }

  void stop();
  void start();  // again, same port and storage

  struct LoggedRequest {
    std::string method;
    std::string uri;
    int status = 0;
    std::string user_agent;
  };
  // Requests the registry answered, from its JSON log.
  std::vector<LoggedRequest> requests() const;
  // Successful blob GETs (200/206) per digest.
  std::vector<std::string> blob_gets() const;
  std::string token_log() const;

 private:
  void write_config();
  void wait_until_serving();

  TestRegistryOptions options_;
  TempDir dir_;
  TlsFiles tls_;
  std::string host_;
  int port_ = 0;
  std::string token_port_;
  std::unique_ptr<Process> token_server_;
  std::unique_ptr<Process> registry_;
};

// The curl CLI's arguments for this registry (its test CA, credentials), URL not included.
std::vector<std::string> curl_command(const TestRegistry& reg, const std::string& creds = {});

// Independent checks, through tools that share no code with fastsync.
// skopeo inspect --raw of host/repository@digest-or-tag; empty on failure.
std::string skopeo_raw_manifest(const TestRegistry& reg, const std::string& repo_ref,
                                const std::string& creds = {});
// `from`'s image `from_ref` (every platform, digests kept) into `to` as `to_ref`
// ("repo:tag" or "repo@digest"), with skopeo: what another tool, or an earlier
// run, left at a destination. Empty on success, else skopeo's error.
std::string skopeo_copy(const TestRegistry& from, const std::string& from_ref, const TestRegistry& to,
                        const std::string& to_ref);
// The blob's bytes, fetched with the curl command-line tool.
std::string curl_blob(const TestRegistry& reg, const std::string& repository, const std::string& digest,
                      const std::string& creds = {});
// HTTP status of a HEAD on a blob, via the curl command-line tool.
int curl_blob_status(const TestRegistry& reg, const std::string& repository, const std::string& digest,
                     const std::string& creds = {});
// Pushes a blob with the curl CLI (POST + monolithic PUT), returning its digest.
std::string curl_push_blob(const TestRegistry& reg, const std::string& repository, const std::string& file,
                           const std::string& creds = {});

}  // namespace fastsync::testing
