// Liveness: wherever a run is when it is told to stop — large blobs in Range
// segments mid-upload, mid-reorder or waiting for memory, a slow destination,
// blobs copied whole — it reaches its summary within seconds (SIGINT 130,
// SIGTERM 143), leaves nothing half-pushed, and a rerun completes the mirror
// exactly. And a wait nothing wakes is reported, not hidden: the stop watchdog
// prints what is in flight and exits anyway.
//
// The points are states, not guesses at timing: a fault proxy in front of the
// destination holds the largest blob's upload mid-body (gate-body) and the one
// in front of the source logs every segment, so the test signals once the run
// is provably in the state it names.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>
#include <thread>

#include "tests/support/fronts.h"
#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

using Clock = std::chrono::steady_clock;
const std::string kRepo = "openshift/release";
// What the issue asks of every stop: the summary within a few seconds.
constexpr auto kStopBound = std::chrono::seconds(5);
constexpr auto kPoll = std::chrono::milliseconds(10);  // polling interval of logs, not a synchronisation guess

std::string hex_of(const std::string& digest) { return digest.substr(digest.find(':') + 1); }

// "bytes=<first>-<last>": a segment of a blob.
bool closed_range(const std::string& range) { return range.rfind("bytes=", 0) == 0 && range.back() != '-'; }

enum class Front { Direct, GatedLargestBlob, Throttled };

// A line of `log` that starts (after the prefix) with `subject` and holds `words`.
bool said_of(const std::string& log, const std::string& subject, const std::string& words) {
  for (auto at = log.find(subject); at != std::string::npos; at = log.find(subject, at + 1)) {
    if (log.substr(at, log.find('\n', at) - at).find(words) != std::string::npos) return true;
  }
  return false;
}

struct StopCase {
  std::string name;
  int sig = SIGINT;
  std::vector<std::string> flags;  // segment settings
  Front dest_front = Front::Direct;
  // Signal once this holds; `where` says what the run was doing.
  enum class When { GateHeld, AllSegmentsFetched, WaitingForMemory, BlobPuts, TryingLanes } when = When::BlobPuts;
  std::size_t blob_puts = 0;  // When::BlobPuts: completed blob uploads at the destination
  // Each source connection at 1 MB/s (a source far away): adaptive lanes pay. The largest blob
  // then lasts long enough for a trial to start from a settled rate even under ASan on a busy CPU.
  bool slow_source = false;
};

struct LivenessRun {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir{"fastsync-liveness"};
  FixtureRelease fixture;
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  std::string gate = dir.file("gate-open");

  LivenessRun() {
    FixtureArgs fa;
    fa.components = 16;
    fa.scale = 0.1;  // ~60 MB; the largest blob ~9 MB, dozens of blobs over 512 KiB
    fixture = push_fixture(source, fa);
  }
};

std::size_t completed_blob_puts(const TestRegistry& dest) {
  std::size_t puts = 0;
  for (const auto& r : dest.requests()) puts += r.method == "PUT" && r.uri.find("/blobs/uploads/") != std::string::npos;
  return puts;
}

void PrintTo(const StopCase& c, std::ostream* os) { *os << c.name; }

class StopAt : public ::testing::TestWithParam<StopCase> {};

TEST_P(StopAt, ExitsWithinSecondsPrintsTheSummaryAndARerunCompletesTheMirror) {
  const StopCase& c = GetParam();
  LivenessRun s;
  const std::string largest = hex_of(s.fixture.largest_blob_digest);
  const std::uint64_t segment_size = 256 * 1024;

  FaultProxy source_log(s.source, {}, s.dir, "source");
  std::unique_ptr<FaultProxy> gated;
  std::unique_ptr<Process> throttle;
  std::string dest_host = s.dest.host();
  std::string source_host = source_log.host();
  std::unique_ptr<Process> far;
  if (c.slow_source) {
    far = std::make_unique<Process>(
        std::vector<std::string>{tool_path("fastsync-wanproxy"), "--target", source_log.host(), "--rate-mbps", "1"},
        s.dir.file("far.log"));
    source_host = "127.0.0.1:" + far->wait_ready().at("port");
  }
  if (c.dest_front == Front::GatedLargestBlob) {
    // The largest blob's upload gets 1 MiB in, then its body is read no more.
    gated = std::make_unique<FaultProxy>(
        s.dest,
        std::vector<std::string>{R"({"method":"PUT","path":")" + largest +
                                 R"(","action":"gate-body","after_bytes":1048576,"times":100,"gate":")" + s.gate +
                                 R"("})"},
        s.dir, "dest");
    dest_host = gated->host();
  } else if (c.dest_front == Front::Throttled) {
    throttle = std::make_unique<Process>(
        std::vector<std::string>{tool_path("fastsync-wanproxy"), "--target", s.dest.host(), "--rate-mbps", "2"},
        s.dir.file("throttle.log"));
    dest_host = "127.0.0.1:" + throttle->wait_ready().at("port");
  }

  std::vector<std::string> args = {
      "--version",       "4.20.8",       "--source-registry", source_host + "/openshift-release-dev/ocp-release",
      "--dest-registry", dest_host,      "--pull-secret",     s.secret,
      "--verbose",       "--no-sigstore"};
  args.insert(args.end(), c.flags.begin(), c.flags.end());
  Process run(fastsync_argv(args), s.dir.file("run.err"), {}, s.dir.file("run.out"));

  // The largest blob's segment requests: how many, how many ranges, how many answered.
  struct SegmentRequests {
    std::size_t requests = 0;
    std::set<std::string> ranges;
    std::set<std::string> ended;
  };
  auto segment_requests = [&] {
    SegmentRequests r;
    for (const auto& e : source_log.entries()) {
      if (e.method == "GET" && e.path.find(largest) != std::string::npos && closed_range(e.range)) {
        ++r.requests;
        r.ranges.insert(e.range);
        if (e.ended > 0) r.ended.insert(e.range);
      }
    }
    return r;
  };
  auto gate_held = [&] {
    if (!gated) return false;
    for (const auto& e : gated->entries()) {
      if (e.gated) return true;
    }
    return false;
  };
  const std::size_t all_segments = (s.fixture.largest_blob + segment_size - 1) / segment_size;
  bool frontier_paused = false;  // AllSegmentsFetched: the held upload's own segment is not in
  std::string where;
  auto started = Clock::now();
  while (run.running() && where.empty()) {
    switch (c.when) {
      case StopCase::When::GateHeld:
        if (gate_held()) where = "the largest blob's upload held mid-body, its segments still coming";
        break;
      case StopCase::When::AllSegmentsFetched:
        // The run says so itself once the last segment is in — or the last but
        // the one the held upload is on, whose transfer then waits paused.
        if (gate_held()) {
          std::string err = read_file(s.dir.file("run.err"));
          auto said = err.find("blob " + s.fixture.largest_blob_digest + ": every segment fetched");
          if (said != std::string::npos) {
            frontier_paused =
                err.substr(said, err.find('\n', said) - said).find("but the one the upload is on") != std::string::npos;
            where = frontier_paused ? "every segment of the largest blob but the upload's own fetched, that one "
                                      "paused: buffered segments wait behind it"
                                    : "every segment of the largest blob fetched, the upload held: the frontier "
                                      "drains buffered segments";
          }
        }
        break;
      case StopCase::When::WaitingForMemory:
        if (gate_held() && read_file(s.dir.file("run.err"))
                                   .find("blob " + s.fixture.largest_blob_digest + ": waiting for segment memory") !=
                               std::string::npos) {
          where = "a segment lane waiting for memory";
        }
        break;
      case StopCase::When::TryingLanes:
        // Adaptive: lanes just added to the largest blob, their trial running.
        if (said_of(read_file(s.dir.file("run.err")), "blob " + s.fixture.largest_blob_digest + ": ", "more lanes")) {
          where = "lanes being tried on the largest blob (adaptive segments)";
        }
        break;
      case StopCase::When::BlobPuts:
        if (completed_blob_puts(s.dest) >= c.blob_puts) where = std::to_string(c.blob_puts) + " blob uploads in";
        break;
    }
    if (where.empty()) std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(run.running()) << "finished before it could be stopped; stderr:\n" << read_file(s.dir.file("run.err"));
  if (c.when == StopCase::When::AllSegmentsFetched) {
    auto r = segment_requests();
    EXPECT_EQ(r.requests, all_segments) << "each segment of the largest blob asked for once";
    EXPECT_EQ(r.ranges.size(), all_segments);
    // A paused transfer's answer may still sit whole in the sockets' buffers, answered or not.
    if (!frontier_paused) {
      EXPECT_EQ(r.ended.size(), all_segments) << "every segment's answer sent";
    }
  }
  auto signalled = Clock::now();
  run.signal(c.sig);
  int code = run.wait();
  auto took = Clock::now() - signalled;
  write_file(s.gate, "");  // let the held upload go (the run is gone; the proxy drops it)

  EXPECT_EQ(code, 128 + c.sig) << where;
  std::cerr << "stopped " << where << " after " << std::chrono::duration<double>(signalled - started).count() << " s\n";
  EXPECT_LE(took, kStopBound) << "stopped " << where << " and took " << std::chrono::duration<double>(took).count()
                              << " s";
  std::string out = read_file(s.dir.file("run.out"));
  EXPECT_NE(out.find(c.sig == SIGINT ? "stopped: interrupted by SIGINT" : "stopped: terminated by SIGTERM"),
            std::string::npos)
      << where << "\n"
      << out;
  EXPECT_NE(out.find("not attempted (the run stopped)"), std::string::npos) << out;
  // Stopped is not failed: what the signal ended is counted as not attempted, images and blobs alike.
  for (const char* line : {"\n  images:  ", "\n  blobs:   "}) {
    auto at = out.find(line);
    ASSERT_NE(at, std::string::npos) << out;
    std::string counts = out.substr(at + 1, out.find('\n', at + 1) - at - 1);
    EXPECT_NE(counts.find(" 0 failed"), std::string::npos) << counts;
  }
  // Nothing half-done: every tag names a complete image, the release tag is absent.
  auto dangling = check_no_dangling_manifests(s.dest, kRepo);
  EXPECT_TRUE(dangling.empty()) << dangling.front();
  auto tags = list_tags(s.dest, kRepo);
  EXPECT_EQ(std::count(tags.begin(), tags.end(), "4.20.8-x86_64"), 0);

  // Rerun, with nothing in the way: the mirror is exact.
  auto rerun =
      run_fastsync({"--version", "4.20.8", "--source-registry", s.source.host() + "/openshift-release-dev/ocp-release",
                    "--dest-registry", s.dest.host(), "--pull-secret", s.secret, "--quiet", "--no-sigstore"});
  ASSERT_EQ(rerun.exit_code, 0) << rerun.out << rerun.err;
  auto problems = check_mirror(s.source, s.dest, kRepo, s.fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
}

// Split at once, whatever the rate: these cases stop a run inside the segment machinery.
const std::vector<std::string> kSegments = {"--segment-size", "256KiB", "--segments-always"};
std::vector<std::string> with(std::vector<std::string> a, std::vector<std::string> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

INSTANTIATE_TEST_SUITE_P(
    Liveness, StopAt,
    ::testing::Values(
        StopCase{"SegmentedBlobMidUpload_SIGINT", SIGINT, kSegments, Front::GatedLargestBlob, StopCase::When::GateHeld},
        StopCase{"SegmentedBlobMidReorder_SIGTERM", SIGTERM, with(kSegments, {"--segment-memory", "64MiB"}),
                 Front::GatedLargestBlob, StopCase::When::AllSegmentsFetched},
        StopCase{"SegmentedBlobMidReorder_SIGINT", SIGINT, with(kSegments, {"--segment-memory", "64MiB"}),
                 Front::GatedLargestBlob, StopCase::When::AllSegmentsFetched},
        StopCase{"SegmentLaneWaitingForMemory_SIGINT", SIGINT, with(kSegments, {"--segment-memory", "1MiB"}),
                 Front::GatedLargestBlob, StopCase::When::WaitingForMemory},
        StopCase{"SegmentLaneWaitingForMemory_SIGTERM", SIGTERM, with(kSegments, {"--segment-memory", "1MiB"}),
                 Front::GatedLargestBlob, StopCase::When::WaitingForMemory},
        StopCase{"SegmentsEarly_SIGTERM", SIGTERM, kSegments, Front::Direct, StopCase::When::BlobPuts, 2},
        StopCase{"SegmentsLater_SIGINT", SIGINT, kSegments, Front::Direct, StopCase::When::BlobPuts, 30},
        StopCase{"AdaptiveLanesOnTrial_SIGINT",
                 SIGINT,
                 {"--segment-size", "256KiB"},
                 Front::Direct,
                 StopCase::When::TryingLanes,
                 0,
                 true},
        StopCase{"AdaptiveLanesOnTrial_SIGTERM",
                 SIGTERM,
                 {"--segment-size", "256KiB"},
                 Front::Direct,
                 StopCase::When::TryingLanes,
                 0,
                 true},
        StopCase{"WholeBlobsEarly_SIGINT", SIGINT, {"--segment-size", "0"}, Front::Direct, StopCase::When::BlobPuts, 2},
        StopCase{
            "WholeBlobsLater_SIGTERM", SIGTERM, {"--segment-size", "0"}, Front::Direct, StopCase::When::BlobPuts, 30},
        StopCase{"SlowDestinationSegments_SIGINT", SIGINT, kSegments, Front::Throttled, StopCase::When::BlobPuts, 5},
        StopCase{"SlowDestinationWholeBlobs_SIGTERM",
                 SIGTERM,
                 {"--segment-size", "0"},
                 Front::Throttled,
                 StopCase::When::BlobPuts,
                 5}),
    [](const ::testing::TestParamInfo<StopCase>& p) { return p.param.name; });

// A wait nothing wakes (a test hook makes one on purpose) does not hang the
// run: the stop watchdog reports what is in flight and exits anyway.
TEST(Liveness, AWaitNothingWakesIsReportedAndTheRunExitsAnyway) {
  LivenessRun s;
  std::vector<std::string> args = {"--version",
                                   "4.20.8",
                                   "--source-registry",
                                   s.source.host() + "/openshift-release-dev/ocp-release",
                                   "--dest-registry",
                                   s.dest.host(),
                                   "--pull-secret",
                                   s.secret,
                                   "--quiet",
                                   "--stop-timeout",
                                   "2"};
  Process run(fastsync_argv(args), s.dir.file("run.err"), {"FASTSYNC_TEST_UNWAKEABLE_COPY=1"}, s.dir.file("run.out"));
  while (run.running() && read_file(s.dir.file("run.err")).find("test hook") == std::string::npos) {
    std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(run.running()) << read_file(s.dir.file("run.err"));
  auto signalled = Clock::now();
  run.signal(SIGINT);
  int code = run.wait();
  auto took = Clock::now() - signalled;
  EXPECT_EQ(code, 130);
  EXPECT_GE(took, std::chrono::seconds(2)) << "exited before the watchdog's time: the wait was not unwakeable";
  EXPECT_LE(took, std::chrono::seconds(2) + kStopBound);
  std::string err = read_file(s.dir.file("run.err"));
  EXPECT_NE(err.find("the run did not stop within 2 s of being cancelled"), std::string::npos) << err;
  EXPECT_NE(err.find("test hook, a wait nothing wakes: waiting forever"), std::string::npos) << err;

  // Without the hook, the same stop is prompt and needs no watchdog.
  TestRegistry fresh;
  args[5] = fresh.host();
  Process again(fastsync_argv(args), s.dir.file("again.err"), {}, s.dir.file("again.out"));
  while (again.running() && completed_blob_puts(fresh) < 3) std::this_thread::sleep_for(kPoll);
  ASSERT_TRUE(again.running());
  again.signal(SIGINT);
  EXPECT_EQ(again.wait(), 130);
  EXPECT_EQ(read_file(s.dir.file("again.err")).find("did not stop"), std::string::npos);
}

}  // namespace
}  // namespace fastsync::testing
