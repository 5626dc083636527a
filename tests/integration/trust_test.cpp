// Whom fastsync trusts and where credentials may go, as users' registries need:
// the system's CA store and --ca-file together, the per-registry certs.d
// directories podman and skopeo read, client certificates (mutual TLS), token
// servers on plain HTTP, and the pull secret found where podman looks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

const std::string kRepo = "openshift/release";
const std::string kSystemBundle = "/etc/ssl/certs/ca-certificates.crt";

FixtureRelease small_fixture(const TestRegistry& source) {
  FixtureArgs fa;
  fa.components = 4;
  fa.scale = 0.01;
  return push_fixture(source, fa);
}

std::vector<std::string> mirror_args(const std::string& source_host, const std::string& dest_host,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--version", "4.20.8", "--source-registry",
                                source_host + "/openshift-release-dev/ocp-release", "--dest-registry", dest_host,
                                "--quiet", "--retry-delay-ms", "20"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

void expect_exact(const TestRegistry& source, const TestRegistry& dest, const FixtureRelease& fixture,
                  const std::string& creds = {}) {
  auto problems = check_mirror(source, dest, kRepo, fixture, creds);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
}

TEST(Trust, TheSystemStoreAndCaFileAreTrustedTogether) {
  TestRegistryOptions tls;
  tls.tls = true;
  TestRegistry source(tls);  // each with a CA of its own
  TestRegistry dest(tls);
  TempDir dir("fastsync-trust");
  auto fixture = small_fixture(source);
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  // The system store, as OpenSSL and Go programs take it from SSL_CERT_FILE:
  // the distribution's bundle plus the source's CA. The destination's CA comes
  // from --ca-file, on top.
  write_file(dir.file("system.pem"), read_file(kSystemBundle) + read_file(source.ca_file()));
  auto args = mirror_args(source.host(), dest.host(), {"--pull-secret", secret, "--ca-file", dest.ca_file()});
  auto r = run_fastsync(args, {"SSL_CERT_FILE=" + dir.file("system.pem")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_exact(source, dest, fixture);

  // And the system store is really what vouched for the source: without the
  // source's CA in it, --ca-file alone does not let the source in.
  write_file(dir.file("system-only.pem"), read_file(kSystemBundle));
  auto refused = run_fastsync(args, {"SSL_CERT_FILE=" + dir.file("system-only.pem")});
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_NE(refused.err.find("TLS certificate of " + source.host() + " is not trusted"), std::string::npos)
      << refused.err;
}

// A directory under /etc/containers/certs.d for the test's own port, removed afterwards.
class CertsDirEntry {
 public:
  CertsDirEntry(const std::string& root, const std::string& host) : path_(root + "/" + host) {
    std::error_code ec;
    std::filesystem::create_directories(path_, ec);
    ok_ = !ec && ::access(path_.c_str(), W_OK) == 0;
  }
  ~CertsDirEntry() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  bool ok() const { return ok_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool ok_ = false;
};

TEST(Trust, ACaInTheDefaultCertsDirectoryIsTrustedWithNoFlag) {
  TestRegistry source;
  TestRegistryOptions tls;
  tls.tls = true;
  TestRegistry dest(tls);
  CertsDirEntry entry("/etc/containers/certs.d", dest.host());
  if (!entry.ok()) GTEST_SKIP() << "cannot write /etc/containers/certs.d (CI runs this as root)";
  write_file(entry.file("ca.crt"), read_file(dest.ca_file()));
  TempDir dir("fastsync-certsd");
  auto fixture = small_fixture(source);
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  auto r = run_fastsync(mirror_args(source.host(), dest.host(), {"--pull-secret", secret}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_exact(source, dest, fixture);

  // Pointed elsewhere, the same run is refused: the directory is what vouched.
  std::filesystem::create_directories(dir.file("empty-certs.d"));
  auto refused = run_fastsync(
      mirror_args(source.host(), dest.host(), {"--pull-secret", secret, "--certs-dir", dir.file("empty-certs.d")}));
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_NE(refused.err.find("TLS certificate of " + dest.host() + " is not trusted"), std::string::npos)
      << refused.err;
}

TEST(Trust, AClientCertificateFromCertsDirectoryIsPresented) {
  TestRegistry source;
  TestRegistryOptions mtls;
  mtls.tls = true;
  mtls.client_certs = true;
  TestRegistry dest(mtls);
  TempDir dir("fastsync-mtls");
  auto fixture = small_fixture(source);
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  std::string host_dir = dir.file("certs.d/" + dest.host());
  std::filesystem::create_directories(host_dir);
  write_file(host_dir + "/ca.crt", read_file(dest.ca_file()));

  // Without a client certificate the registry ends the handshake.
  auto refused = run_fastsync(
      mirror_args(source.host(), dest.host(), {"--pull-secret", secret, "--certs-dir", dir.file("certs.d")}));
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_NE(refused.err.find(dest.host()), std::string::npos) << refused.err;

  // client.cert + client.key beside the CA, as docker and podman keep them.
  write_file(host_dir + "/client.cert", read_file(dest.tls_files().client_cert));
  write_file(host_dir + "/client.key", read_file(dest.tls_files().client_key));
  auto r = run_fastsync(
      mirror_args(source.host(), dest.host(), {"--pull-secret", secret, "--certs-dir", dir.file("certs.d")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_exact(source, dest, fixture);

  // A key without its certificate is a clear error naming the file.
  std::filesystem::remove(host_dir + "/client.cert");
  auto half = run_fastsync(
      mirror_args(source.host(), dest.host(), {"--pull-secret", secret, "--certs-dir", dir.file("certs.d")}));
  EXPECT_NE(half.exit_code, 0);
  EXPECT_NE(half.err.find(host_dir + "/client.key has no matching certificate"), std::string::npos) << half.err;
}

// A registry reached over TLS by name whose token server speaks plain HTTP on
// another host: the pull secret's credentials must never be sent there.
TEST(Trust, CredentialsNeverGoToAPlainHttpTokenServerOnAnotherHost) {
  TestRegistry source;
  TestRegistryOptions o;
  o.tls = true;
  o.tls_names = {"registry.fastsync.test"};
  o.token_users = {"bot:pw"};  // realm http://127.0.0.1:<port>/token
  TestRegistry dest(o);
  TempDir dir("fastsync-realm");
  auto fixture = small_fixture(source);
  std::string port = dest.host().substr(dest.host().rfind(':') + 1);
  std::string name = "registry.fastsync.test:" + port;
  std::string secret = write_pull_secret(dir.file("ps.json"), {{name, "bot", "pw"}});
  auto args = mirror_args(source.host(), name,
                          {"--pull-secret", secret, "--ca-file", dest.ca_file(), "--resolve", name + ":127.0.0.1"});

  auto r = run_fastsync(args);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("plain-HTTP token server"), std::string::npos) << r.err;
  // --insecure lets the registry itself speak plain HTTP, but still not send
  // its credentials to another host in the clear.
  args.push_back("--insecure");
  auto insecure = run_fastsync(args);
  EXPECT_EQ(insecure.exit_code, 3) << insecure.err;
  EXPECT_NE(insecure.err.find("token server on another host over plain HTTP"), std::string::npos) << insecure.err;
  EXPECT_EQ(dest.token_log(), "") << "the token server was asked";
}

TEST(PullSecret, IsFoundWherePodmanAndSkopeoLook) {
  TestRegistry source;
  TestRegistryOptions basic;
  basic.basic_user = "bot:pw";
  TestRegistry dest(basic);
  TempDir dir("fastsync-discovery");
  auto fixture = small_fixture(source);
  std::filesystem::create_directories(dir.file("empty"));
  std::filesystem::create_directories(dir.file("runtime/containers"));
  std::filesystem::create_directories(dir.file("home/.docker"));
  std::string explicit_file = write_pull_secret(dir.file("registry-auth.json"), {{dest.host(), "bot", "pw"}});
  write_pull_secret(dir.file("runtime/containers/auth.json"), {{dest.host(), "bot", "pw"}});
  write_pull_secret(dir.file("home/.docker/config.json"), {{dest.host(), "bot", "pw"}});

  struct Place {
    std::vector<std::string> env;
    std::string path;
    std::string reason;
  };
  const std::string none = "REGISTRY_AUTH_FILE=";
  for (const auto& place : {
           Place{{"REGISTRY_AUTH_FILE=" + explicit_file, "XDG_RUNTIME_DIR=" + dir.file("runtime"),
                  "HOME=" + dir.file("home")},
                 explicit_file, "REGISTRY_AUTH_FILE"},
           Place{{none, "XDG_RUNTIME_DIR=" + dir.file("runtime"), "HOME=" + dir.file("home")},
                 dir.file("runtime/containers/auth.json"), "${XDG_RUNTIME_DIR}/containers/auth.json"},
           Place{{none, "XDG_RUNTIME_DIR=" + dir.file("empty"), "HOME=" + dir.file("home")},
                 dir.file("home/.docker/config.json"), "~/.docker/config.json"},
       }) {
    auto args = mirror_args(source.host(), dest.host());
    args.erase(std::find(args.begin(), args.end(), "--quiet"));
    auto r = run_fastsync(args, place.env);
    ASSERT_EQ(r.exit_code, 0) << place.reason << ": " << r.err;
    EXPECT_NE(r.err.find("using the pull secret " + place.path + " (" + place.reason + ")"), std::string::npos)
        << r.err;
  }
  expect_exact(source, dest, fixture, "bot:pw");

  // Nowhere: one line naming every place looked at, exit 2.
  auto r = run_fastsync(mirror_args(source.host(), dest.host()),
                        {none, "XDG_RUNTIME_DIR=" + dir.file("empty"), "HOME=" + dir.file("empty")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const std::string& place : {std::string("REGISTRY_AUTH_FILE"), dir.file("empty") + "/containers/auth.json",
                                   dir.file("empty") + "/.docker/config.json"}) {
    EXPECT_NE(r.err.find(place), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace fastsync::testing
