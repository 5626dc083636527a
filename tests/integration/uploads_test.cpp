// Destinations behind a proxy that caps request bodies (nginx with
// client_max_body_size, a common mirror-registry and Harbor setup): large
// blobs go up in chunks, learned from the first 413 and kept for the run.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/support/fronts.h"
#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

const std::string kRepo = "openshift/release";

struct CappedDestination {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir{"fastsync-capped"};
  FixtureRelease fixture;
  std::unique_ptr<NginxFront> front;
  explicit CappedDestination(int components = 10) {
    FixtureArgs fa;
    fa.components = components;
    fa.scale = 0.2;  // several layers well above the 4 MiB cap, the largest ~19 MiB
    fixture = push_fixture(source, fa);
    front = std::make_unique<NginxFront>(dest, dir, "4m");
  }
  RunResult run(std::vector<std::string> extra) {
    std::vector<std::string> a = {"--version", "4.20.8", "--source-registry",
                                  source.host() + "/openshift-release-dev/ocp-release", "--dest-registry",
                                  front->host(), "--pull-secret", write_pull_secret(dir.file("ps.json"), {}),
                                  "--quiet", "--retry-delay-ms", "20"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_fastsync(a);
  }
};

bool is_blob_put(const NginxFront::Entry& e) {
  return e.method == "PUT" && e.uri.find("/blobs/uploads/") != std::string::npos;
}

TEST(Uploads, ADestinationRefusingLargeBodiesGetsThemInChunksFromThenOn) {
  CappedDestination c;
  auto r = c.run({"--blob-concurrency", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("HTTP 413"), std::string::npos) << "the switch is announced: " << r.err;
  auto problems = check_mirror(c.source, c.dest, kRepo, c.fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();

  auto log = c.front->entries();
  std::size_t refused = 0, patches = 0;
  for (const auto& e : log) {
    refused += e.status == 413;
    patches += e.method == "PATCH" && e.status == 202;
  }
  EXPECT_GE(refused, 1u) << "nginx never refused a body: the case was not exercised";
  EXPECT_GE(patches, 4u);
  // Every PATCH got through nginx: each chunk is within the cap.
  for (const auto& e : log) {
    if (e.method == "PATCH") {
      EXPECT_LE(e.request_length, 4 * 1024 * 1024 + 4096) << e.uri;
    }
  }
  // Remembered: once a chunked upload went through, no upload is refused again.
  auto first_patch = std::find_if(log.begin(), log.end(), [](const auto& e) { return e.method == "PATCH" && e.status == 202; });
  ASSERT_NE(first_patch, log.end());
  for (auto it = first_patch; it != log.end(); ++it) {
    EXPECT_FALSE(is_blob_put(*it) && it->status == 413) << "refused again after the switch: " << it->uri;
  }
  // ...and several blobs went up in chunks, not just the one that met the 413.
  std::set<std::string> chunked_sessions;
  for (const auto& e : log) {
    if (e.method == "PATCH" && e.status == 202) chunked_sessions.insert(e.uri.substr(0, e.uri.find('?')));
  }
  EXPECT_GE(chunked_sessions.size(), 3u);
}

// Every upload in flight meets the 413 at about the same moment, and each
// shrinks the chunk size as it sees fit: they must all end up through.
TEST(Uploads, ManyUploadsMeetingTheLimitAtOnceAllGetThrough) {
  CappedDestination c(40);  // many large layers of many sizes, all in flight together
  auto r = c.run({});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto problems = check_mirror(c.source, c.dest, kRepo, c.fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
}

TEST(Uploads, UploadChunkSizeChunksFromTheStartWithoutA413) {
  CappedDestination c;
  auto r = c.run({"--upload-chunk-size", "1MiB"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto problems = check_mirror(c.source, c.dest, kRepo, c.fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
  std::size_t refused = 0, patches = 0;
  for (const auto& e : c.front->entries()) {
    refused += e.status == 413;
    patches += e.method == "PATCH";
  }
  EXPECT_EQ(refused, 0u);
  EXPECT_GE(patches, 20u);
}

}  // namespace
}  // namespace fastsync::testing
