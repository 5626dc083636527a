// Bad input and hostile conditions: one clear line naming the problem, the
// documented exit code, nothing pushed, and never a credential in sight.
#include <gtest/gtest.h>

#include <filesystem>

#include "registry/core/digest.h"
#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

std::string one_line(const std::string& err) {
  std::string s = err;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  EXPECT_EQ(s.find('\n'), std::string::npos) << "expected exactly one line on stderr, got:\n" << err;
  EXPECT_EQ(s.rfind("fastsync: error: ", 0), 0u) << s;
  return s;
}

class BadInput : public ::testing::Test {
 protected:
  TempDir dir{"fastsync-bad-input"};
  std::vector<std::string> args(const std::string& source, const std::string& dest, const std::string& secret,
                                std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"--version",
                                  "4.20.8",
                                  "--source-registry",
                                  source + "/openshift-release-dev/ocp-release",
                                  "--dest-registry",
                                  dest,
                                  "--pull-secret",
                                  secret,
                                  "--quiet",
                                  "--retries",
                                  "1",
                                  "--retry-delay-ms",
                                  "10"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

TEST_F(BadInput, PullSecretProblemsNameTheFileAndExit2) {
  TestRegistry source;
  TestRegistry dest;
  std::filesystem::create_directory(dir.file("a-directory"));
  write_file(dir.file("broken.json"), "{\"auths\": {");
  write_file(dir.file("no-auths.json"), "{\"other\": {}}");
  write_file(dir.file("helper.json"), "{\"credsStore\": \"desktop\"}");
  write_file(dir.file("bad-auth.json"), R"({"auths":{"quay.io":{"auth":"%%%"}}})");
  struct Case {
    std::string file;
    std::string expected;
  };
  for (const auto& c :
       {Case{dir.file("missing.json"), "No such file or directory"}, Case{dir.file("a-directory"), "it is a directory"},
        Case{dir.file("broken.json"), "is not valid JSON"}, Case{dir.file("no-auths.json"), "has no \"auths\" object"},
        Case{dir.file("helper.json"), "keeps its credentials in a credential helper"},
        Case{dir.file("bad-auth.json"), "auths.\"quay.io\".auth is not valid base64"}}) {
    auto r = run_fastsync(args(source.host(), dest.host(), c.file));
    EXPECT_EQ(r.exit_code, 2) << c.file;
    auto line = one_line(r.err);
    EXPECT_NE(line.find(c.file), std::string::npos) << line;
    EXPECT_NE(line.find(c.expected), std::string::npos) << line;
  }
  EXPECT_TRUE(catalog(dest).empty());
}

TEST_F(BadInput, InvalidFlagValuesNameTheFlag) {
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  struct Case {
    std::vector<std::string> extra;
    std::string expected;
  };
  for (const auto& c :
       {Case{{"--workers", "0"}, "--workers must be between 1 and 4096 (got 0)"},
        Case{{"--workers=-2"}, "--workers must be between 1 and 4096 (got -2)"},
        Case{{"--workers", "many"}, "'--workers' is invalid"},
        Case{{"--blob-workers", "0"}, "--blob-workers must be between"},
        Case{{"--blob-concurrency", "-1"}, "--blob-concurrency"}, Case{{"--arch", "sparc"}, "--arch must be one of"},
        Case{{"--retries", "1000"}, "--retries must be between 0 and 100"},
        Case{{"--stall-timeout", "0"}, "--stall-timeout must be between"},
        Case{{"--dest-repo", "Not/Valid"}, "--dest-repo \"Not/Valid\""},
        Case{{"--resolve", "nonsense"}, "--resolve \"nonsense\" must look like host:port:address"},
        Case{{"--upload-chunk-size", "12"}, "--upload-chunk-size \"12\" is not a size of at least 1KiB"},
        Case{{"--segment-size", "abc"}, "--segment-size \"abc\" is not a size of at least 64KiB"},
        Case{{"--segment-memory", "0"}, "--segment-memory \"0\" is not a size of at least 1MiB"},
        Case{{"--archive-size", "1KiB"}, "--archive-size \"1KiB\" is not a size of at least 1MiB"},
        Case{{"--shard", "4/4"}, "--shard \"4/4\" must be K/N with 0 <= K < N"},
        Case{{"--shard", "1"}, "--shard \"1\" must be K/N"},
        Case{{"--shard", "$(JOB_COMPLETION_INDEX)/4"}, "--shard \"$(JOB_COMPLETION_INDEX)/4\" must be K/N"}}) {
    std::vector<std::string> a = {"--version", "4.20.8", "--dest-registry", "127.0.0.1:2", "--pull-secret", secret};
    a.insert(a.end(), c.extra.begin(), c.extra.end());
    auto r = run_fastsync(a);
    EXPECT_EQ(r.exit_code, 2) << c.extra[0];
    EXPECT_NE(one_line(r.err).find(c.expected), std::string::npos) << r.err;
  }
  // Shards split a registry-to-registry mirror; an archive is one process's.
  auto sharded_archive =
      run_fastsync({"--version", "4.20.8", "--to-dir", dir.file("a"), "--pull-secret", secret, "--shard", "0/2"});
  EXPECT_EQ(sharded_archive.exit_code, 2);
  EXPECT_NE(one_line(sharded_archive.err).find("--shard splits a registry-to-registry mirror"), std::string::npos)
      << sharded_archive.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("a")));
  auto missing = run_fastsync({"--version", "4.20.8", "--pull-secret", secret});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(one_line(missing.err).find("dest-registry"), std::string::npos) << missing.err;
  auto bad_version =
      run_fastsync({"--version", "4.20 final", "--dest-registry", "127.0.0.1:2", "--pull-secret", secret});
  EXPECT_EQ(bad_version.exit_code, 2);
  EXPECT_NE(one_line(bad_version.err).find("--version \"4.20 final\""), std::string::npos) << bad_version.err;
}

TEST_F(BadInput, MissingOrWrongCredentialsNameTheHost) {
  TestRegistry source;
  TestRegistryOptions basic;
  basic.basic_user = "mirror:right-password";
  TestRegistry dest(basic);
  FixtureArgs fa;
  fa.components = 3;
  (void)push_fixture(source, fa);

  auto none = run_fastsync(args(source.host(), dest.host(), write_pull_secret(dir.file("none.json"), {})));
  EXPECT_EQ(none.exit_code, 3);
  auto line = one_line(none.err);
  EXPECT_NE(line.find("no credentials for " + dest.host()), std::string::npos) << line;

  auto wrong =
      run_fastsync(args(source.host(), dest.host(),
                        write_pull_secret(dir.file("wrong.json"), {{dest.host(), "mirror", "wrong-password"}})));
  EXPECT_EQ(wrong.exit_code, 3);
  line = one_line(wrong.err);
  EXPECT_NE(line.find("credentials for " + dest.host() + " were refused"), std::string::npos) << line;
  EXPECT_EQ((wrong.out + wrong.err).find("wrong-password"), std::string::npos);
  // One cause, said once: no image is listed as failed for it; the summary counts them as not attempted.
  EXPECT_EQ(wrong.out.find("failed:"), std::string::npos) << wrong.out;
  EXPECT_NE(wrong.out.find("0 failed, 4 not attempted (the run stopped), of 4"), std::string::npos) << wrong.out;
  EXPECT_TRUE(catalog(dest, "mirror:right-password").empty());
}

TEST_F(BadInput, UnreachableRegistriesAreNamed) {
  TestRegistry source;
  FixtureArgs fa;
  fa.components = 2;
  (void)push_fixture(source, fa);
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  std::string nowhere = "127.0.0.1:" + std::to_string(free_port());
  auto dest_down = run_fastsync(args(source.host(), nowhere, secret));
  EXPECT_EQ(dest_down.exit_code, 3);
  EXPECT_NE(one_line(dest_down.err).find("registry " + nowhere + " is unreachable"), std::string::npos)
      << dest_down.err;
  auto source_down = run_fastsync(args(nowhere, source.host(), secret));
  EXPECT_EQ(source_down.exit_code, 3);
  EXPECT_NE(one_line(source_down.err).find("registry " + nowhere + " is unreachable"), std::string::npos)
      << source_down.err;
}

TEST_F(BadInput, TlsFailuresSayHowToFixThem) {
  TestRegistry source;
  TestRegistryOptions tls;
  tls.tls = true;
  TestRegistry dest(tls);
  FixtureArgs fa;
  fa.components = 3;
  auto fixture = push_fixture(source, fa);
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  auto refused = run_fastsync(args(source.host(), dest.host(), secret));
  EXPECT_EQ(refused.exit_code, 3);
  auto line = one_line(refused.err);
  EXPECT_NE(line.find("TLS certificate of " + dest.host() + " is not trusted"), std::string::npos) << line;
  EXPECT_NE(line.find("--ca-file"), std::string::npos) << line;
  EXPECT_NE(line.find("--insecure"), std::string::npos) << line;
  auto with_ca = run_fastsync(args(source.host(), dest.host(), secret, {"--ca-file", dest.ca_file()}));
  EXPECT_EQ(with_ca.exit_code, 0) << with_ca.err;
  EXPECT_TRUE(check_mirror(source, dest, "openshift/release", fixture).empty());
}

TEST_F(BadInput, PlainHttpToANonLoopbackNameNeedsInsecure) {
  TestRegistry source;
  TestRegistry dest;  // plain HTTP, reached through a name that is not loopback
  FixtureArgs fa;
  fa.components = 3;
  (void)push_fixture(source, fa);
  std::string port = dest.host().substr(dest.host().find(':') + 1);
  std::string name = "mirror.example.test:" + port;
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  auto refused = run_fastsync(args(source.host(), name, secret, {"--resolve", name + ":127.0.0.1"}));
  EXPECT_EQ(refused.exit_code, 3);
  auto line = one_line(refused.err);
  EXPECT_NE(line.find("TLS handshake with " + name + " failed"), std::string::npos) << line;
  EXPECT_NE(line.find("if it serves plain HTTP, pass --insecure"), std::string::npos) << line;
  EXPECT_TRUE(catalog(dest).empty());
  auto allowed = run_fastsync(args(source.host(), name, secret, {"--resolve", name + ":127.0.0.1", "--insecure"}));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
}

TEST_F(BadInput, ADestinationThatRefusesWritesStopsTheRunWithOneLine) {
  TestRegistry source;
  TestRegistryOptions ro;
  ro.read_only = true;
  TestRegistry read_only(ro);
  TestRegistryOptions pull_only;
  pull_only.token_users = {"reader:pw:pull"};
  TestRegistry no_push(pull_only);
  FixtureArgs fa;
  fa.components = 6;
  (void)push_fixture(source, fa);

  auto r1 = run_fastsync(args(source.host(), read_only.host(), write_pull_secret(dir.file("ps.json"), {})));
  EXPECT_EQ(r1.exit_code, 3) << r1.out;
  EXPECT_NE(one_line(r1.err).find(read_only.host() + " refuses writes"), std::string::npos) << r1.err;
  EXPECT_TRUE(catalog(read_only).empty());

  auto r2 = run_fastsync(args(source.host(), no_push.host(),
                              write_pull_secret(dir.file("reader.json"), {{no_push.host(), "reader", "pw"}})));
  EXPECT_EQ(r2.exit_code, 3) << r2.out;
  EXPECT_NE(one_line(r2.err).find("do not allow pushing to openshift/release"), std::string::npos) << r2.err;
}

TEST(Security, CredentialsStayWithTheirHostAndOutOfEveryOutput) {
  // Source: a front that wants a password and redirects blob GETs to a CDN on
  // 127.0.0.2. Destination: Bearer tokens. Everything verbose.
  TestRegistry upstream;
  TestRegistryOptions token;
  token.token_users = {"pusher:dest-Secret-42"};
  TestRegistry dest(token);
  TempDir dir("fastsync-security");
  FixtureArgs fa;
  fa.components = 6;
  auto fixture = push_fixture(upstream, fa);
  Process front({"/usr/bin/python3", source_dir() + "/tests/servers/redirect_front.py", "--upstream", upstream.host(),
                 "--user", "puller:src-Secret-17", "--log", dir.file("cdn.log")},
                dir.file("front.err"));
  std::string front_host = "127.0.0.1:" + front.wait_ready().at("front");
  std::string secret = write_pull_secret(
      dir.file("ps.json"), {{front_host, "puller", "src-Secret-17"}, {dest.host(), "pusher", "dest-Secret-42"}});
  std::vector<std::string> argv = {tool_path("fastsync"),
                                   "--version",
                                   "4.20.8",
                                   "--source-registry",
                                   front_host + "/openshift-release-dev/ocp-release",
                                   "--dest-registry",
                                   dest.host(),
                                   "--pull-secret",
                                   secret,
                                   "--verbose",
                                   "--report",
                                   dir.file("report.json"),
                                   "--no-signatures"};
  Process run(argv, dir.file("run.err"), {}, dir.file("run.out"));
  std::string cmdline = read_file("/proc/" + std::to_string(run.pid()) + "/cmdline");
  ASSERT_EQ(run.wait(), 0) << read_file(dir.file("run.err"));

  std::string everything =
      cmdline + read_file(dir.file("run.out")) + read_file(dir.file("run.err")) + read_file(dir.file("report.json"));
  const std::vector<std::string> secrets = {"src-Secret-17", "dest-Secret-42", base64_encode("puller:src-Secret-17"),
                                            base64_encode("pusher:dest-Secret-42"), "signature=s3cr3t"};
  for (const auto& secret_text : secrets) {
    EXPECT_EQ(everything.find(secret_text), std::string::npos) << secret_text << " leaked";
  }
  std::string cdn = read_file(dir.file("cdn.log"));
  EXPECT_NE(cdn.find("\"authorization\": null"), std::string::npos) << "no blob went through the CDN: " << cdn;
  EXPECT_EQ(cdn.find("\"authorization\": \""), std::string::npos) << "Authorization reached the CDN: " << cdn;
  auto problems = check_mirror(upstream, dest, "openshift/release", fixture, "pusher:dest-Secret-42");
  EXPECT_TRUE(problems.empty()) << problems.front();
}

}  // namespace
}  // namespace fastsync::testing
