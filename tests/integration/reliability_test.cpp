// No operation waits forever: tokens that expire all through a run, uploads
// whose other half fails, and what SIGUSR1 shows while a run is in flight.
// Registries sit behind real fronts (tests/servers/bearer_front.py); results
// are checked against the registries behind them, by digest, with skopeo.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <thread>

#include "tests/support/fronts.h"
#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

const std::string kRepo = "openshift/release";

struct TokenCase {
  const char* name;
  int advertised_seconds;  // 0: the real 2 s; otherwise the token server claims this long
  bool refuse_early;       // refuse before reading the body (distribution) or after (gateways)
  int refuse_every_put;    // also kill the token of every Nth blob upload as it arrives
};

// The fewest tokens that could have served every accepted request of a
// front: a new one whenever a request arrives after the current one died.
std::size_t tokens_needed(const std::vector<BearerFront::Entry>& log, double lifetime_seconds) {
  std::vector<double> arrivals;  // the log is written as replies end: a long download comes late
  for (const auto& e : log)
    if (e.status < 400 && e.path.find("/token") == std::string::npos) arrivals.push_back(e.arrived);
  std::sort(arrivals.begin(), arrivals.end());
  std::size_t tokens = 0;
  double issued = 0;
  for (double arrived : arrivals) {
    if (tokens == 0 || arrived - issued > lifetime_seconds) {
      ++tokens;
      issued = arrived;
    }
  }
  return tokens;
}

// For a failure message: each request as seconds since the first arrival.
std::string describe_arrivals(const std::vector<BearerFront::Entry>& log) {
  std::string out;
  double first = 0;
  for (const auto& e : log) first = first == 0 ? e.arrived : std::min(first, e.arrived);
  for (const auto& e : log) {
    char line[64];
    std::snprintf(line, sizeof line, "%+8.3f %3d %-5s ", e.arrived - first, e.status, e.method.c_str());
    out += line + e.path.substr(0, 100) + "\n";
  }
  return out;
}

class ShortTokens : public ::testing::TestWithParam<TokenCase> {};

// Both sides behind fronts whose tokens live 2 s, checked when a request
// arrives; the source slowed so the run outlives ten tokens. It must finish,
// exact, without a single transfer reaching the stall limit.
TEST_P(ShortTokens, OnBothSidesAreRenewedAndNoTransferStalls) {
  const TokenCase& c = GetParam();
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-short-tokens");
  FixtureArgs fa;
  fa.components = 16;
  fa.scale = 0.06;
  auto fixture = push_fixture(source, fa);

  BearerFront::Options fo;
  fo.lifetime_seconds = 2;
  fo.advertised_seconds = c.advertised_seconds;
  fo.refuse_early = c.refuse_early;
  BearerFront source_front(source, dir, "source-front", fo);
  fo.refuse_every_put = c.refuse_every_put;
  BearerFront dest_front(dest, dir, "dest-front", fo);
  Process slow({tool_path("fastsync-wanproxy"), "--target", source_front.host(), "--rate-mbps", "0.25", "--delay-ms", "20"},
               dir.file("wan.log"));
  std::string slow_host = "127.0.0.1:" + slow.wait_ready().at("port");
  std::string secret =
      write_pull_secret(dir.file("ps.json"), {{slow_host, "bot", "pw"}, {dest_front.host(), "bot", "pw"}});

  // Four blob slots: with the default 64 every GET of this small release
  // starts in the first two seconds (most blobs are tiny) and only the largest
  // layer runs on, so the source would never need a second token. Four slots,
  // largest blobs first, spread the requests over the whole run as on a real
  // release, where they keep coming for an hour.
  // A stall would end the run only after minutes (5 x 30 s for a sent body):
  // the deadline turns that into a failure instead of a slow pass.
  auto r = run_fastsync({"--version", "4.20.8", "--source-registry", slow_host + "/openshift-release-dev/ocp-release",
                         "--dest-registry", dest_front.host(), "--pull-secret", secret, "--quiet", "--verbose",
                         "--stall-timeout", "30", "--retry-delay-ms", "50", "--blob-concurrency", "4", "--report",
                         dir.file("report.json")},
                        {}, std::chrono::seconds(150));
  write_file(dir.file("fastsync.err"), r.err);  // for FASTSYNC_KEEP_TEST_DIRS post-mortems
  ASSERT_EQ(r.exit_code, 0) << "exit " << r.exit_code << " (124: still running at the deadline)\n" << r.out << r.err;
  EXPECT_EQ(r.err.find("stall limit"), std::string::npos) << r.err;
  auto problems = check_mirror(source, dest, kRepo, fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();

  // The scenario really happened: the run outlived ten tokens, and both sides
  // renewed theirs (ahead of time when the expiry is told, after a refusal when not).
  auto log = dest_front.entries();
  ASSERT_FALSE(log.empty());
  EXPECT_GE(log.back().time - log.front().time, 10 * fo.lifetime_seconds);
  // How many tokens a side needed follows from when its requests arrived
  // (a slow source starts few requests late in the run; a loaded machine
  // shifts them), so it is read from the log rather than fixed in advance.
  for (const BearerFront* front : {&source_front, &dest_front}) {
    std::size_t needed = tokens_needed(front->entries(), fo.lifetime_seconds);
    EXPECT_GE(needed, 2u) << (front == &source_front ? "source" : "destination")
                          << ": every request fitted in one token's life: no renewal was exercised\n"
                          << describe_arrivals(front->entries());
    EXPECT_GE(front->tokens_issued(), needed);
  }
  if (c.refuse_every_put > 0) {
    std::size_t refused_uploads = 0;
    for (const auto& e : log) refused_uploads += e.status == 401 && e.method == "PUT" && e.expired;
    EXPECT_GE(refused_uploads, 1u) << "no upload was refused mid-run: the case was not exercised";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fronts, ShortTokens,
    ::testing::Values(
        // Tokens say 2 s and mean it; a gateway reads the body, then refuses; a few uploads lose their token.
        TokenCase{"Honest", 0, false, 5},
        // Tokens claim 5 minutes but die after 2 s, refused before the body is read (distribution's way).
        TokenCase{"Lying", 300, true, 0}),
    [](const ::testing::TestParamInfo<TokenCase>& param_info) { return std::string(param_info.param.name); });

TEST(Diagnostics, Sigusr1ListsEveryOperationInFlightAndTheRunCarriesOn) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-sigusr1");
  FixtureArgs fa;
  fa.components = 8;
  fa.scale = 0.05;
  auto fixture = push_fixture(source, fa);
  Process slow({tool_path("fastsync-wanproxy"), "--target", source.host(), "--rate-mbps", "2"}, dir.file("wan.log"));
  std::string slow_host = "127.0.0.1:" + slow.wait_ready().at("port");
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  Process run({tool_path("fastsync"), "--version", "4.20.8", "--source-registry",
               slow_host + "/openshift-release-dev/ocp-release", "--dest-registry", dest.host(), "--pull-secret",
               secret, "--quiet", "--no-signatures"},
              dir.file("run.err"), {}, dir.file("run.out"));
  // Once blobs are landing (and others are on their way), ask what it is doing.
  while (run.running()) {
    std::size_t puts = 0;
    for (const auto& req : dest.requests()) puts += req.method == "PUT";
    if (puts >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // log polling interval
  }
  ASSERT_TRUE(run.running()) << "finished before it could be asked";
  run.signal(SIGUSR1);
  EXPECT_EQ(run.wait(), 0) << read_file(dir.file("run.err"));
  std::string err = read_file(dir.file("run.err"));
  EXPECT_NE(err.find("operation(s) in flight"), std::string::npos) << err;
  EXPECT_NE(err.find("GET blob sha256:"), std::string::npos) << err;
  EXPECT_NE(err.find("PUT blob sha256:"), std::string::npos) << err;
  bool has_state = err.find("transferring") != std::string::npos || err.find("paused") != std::string::npos;
  EXPECT_TRUE(has_state) << err;
  auto problems = check_mirror(source, dest, kRepo, fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
}

}  // namespace
}  // namespace fastsync::testing
