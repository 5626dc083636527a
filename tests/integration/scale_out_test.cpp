// Scale-out (issue 15): one release mirrored by four shard processes, each
// behind its own capped network interface (a pod's), then the manifests pass.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

const std::string kRepo = "openshift/release";

// MB/s each way through one interface: low enough that the bytes decide how
// long a run takes. Here the registries and every shard share two cores, so
// the metadata work (the same in each shard: the plan, manifests, checks) costs
// far more against 32 MB than it does against a real release's 15-20 GB.
constexpr const char* kInterfaceMBps = "0.6";

// One machine's network interface: the source and the destination both reached
// through one fastsync-wanproxy whose total rate is capped.
class Interface {
 public:
  Interface(const TestRegistry& source, const TestRegistry& dest, const TempDir& dir, const std::string& name)
      : proxy_({tool_path("fastsync-wanproxy"), "--target", source.host(), "--target", dest.host(), "--total-mbps",
                kInterfaceMBps},
               dir.file(name + ".log")) {
    auto ports = proxy_.wait_ready();
    source_ = "127.0.0.1:" + ports.at("port");
    dest_ = "127.0.0.1:" + ports.at("port1");
  }
  std::vector<std::string> args(const std::string& secret, const std::string& report,
                                std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"--version",         "4.20.8",
                                  "--source-registry", source_ + "/openshift-release-dev/ocp-release",
                                  "--dest-registry",   dest_,
                                  "--pull-secret",     secret,
                                  "--quiet",           "--no-signatures",
                                  "--report",          report};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

 private:
  Process proxy_;
  std::string source_, dest_;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Blob uploads the registry committed (PUT ...?digest=), per digest.
std::map<std::string, int> blob_uploads(const TestRegistry& registry) {
  std::map<std::string, int> n;
  for (const auto& q : registry.requests()) {
    auto at = q.uri.find("digest=");
    if (q.method != "PUT" || at == std::string::npos || q.status != 201) continue;
    std::string digest = q.uri.substr(at + 7);
    digest = digest.substr(0, digest.find('&'));
    for (const char* colon : {"%3A", "%3a"}) {
      if (auto c = digest.find(colon); c != std::string::npos) digest.replace(c, 3, ":");
    }
    ++n[digest];
  }
  return n;
}

TEST(ScaleOut, FourShardsThenTheManifestsPassBeatOneProcessAndUploadEachBlobOnce) {
  TestRegistry source;
  TestRegistry alone_dest;
  TestRegistry dest;
  TempDir dir("fastsync-scale-out");
  FixtureArgs fa;
  fa.components = 48;  // ~32 MB; its largest blob (~7.5 MB) is under a quarter of it
  fa.scale = 0.08;
  auto fixture = push_fixture(source, fa);
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  auto all_blobs = fixture.all_blobs();

  // One process behind one interface.
  auto started = std::chrono::steady_clock::now();
  {
    Interface nic(source, alone_dest, dir, "alone");
    auto r = run_fastsync(nic.args(secret, dir.file("alone.json")));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  double alone = seconds_since(started);

  // Four shards, each behind its own interface, then the manifests pass behind a fifth.
  constexpr int kShards = 4;
  started = std::chrono::steady_clock::now();
  {
    std::vector<std::unique_ptr<Interface>> nics;
    std::vector<std::unique_ptr<Process>> shards;
    for (int k = 0; k < kShards; ++k) {
      std::string name = "shard" + std::to_string(k);
      nics.push_back(std::make_unique<Interface>(source, dest, dir, name + "-nic"));
      // As deploy/kubernetes/shards-job.yaml runs them, with default settings:
      // adaptive segments withdraw lanes that only share the capped interface.
      auto argv = nics.back()->args(secret, dir.file(name + ".json"),
                                    {"--shard", std::to_string(k) + "/" + std::to_string(kShards), "--blobs-only"});
      shards.push_back(std::make_unique<Process>(fastsync_argv(argv), dir.file(name + ".err"),
                                                 std::vector<std::string>{}, dir.file(name + ".out")));
    }
    for (int k = 0; k < kShards; ++k) {
      EXPECT_EQ(shards[static_cast<std::size_t>(k)]->wait(), 0)
          << "shard " << k << ": " << read_file(dir.file("shard" + std::to_string(k) + ".err"));
    }
  }
  double shards_done = seconds_since(started);
  auto tags_after_shards = list_tags(dest, kRepo);
  EXPECT_TRUE(tags_after_shards.empty()) << "a shard pushed a tag: " << tags_after_shards.front();
  auto after_shards = blob_uploads(dest);
  {
    Interface nic(source, dest, dir, "manifests-nic");
    auto r = run_fastsync(nic.args(secret, dir.file("manifests.json")));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  double sharded = seconds_since(started);
  auto problems = check_mirror(source, dest, kRepo, fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();

  // Every blob uploaded exactly once, all of them by the shards.
  auto uploads = blob_uploads(dest);
  for (const auto& d : all_blobs) EXPECT_EQ(uploads[d], 1) << d;
  EXPECT_EQ(uploads.size(), all_blobs.size());
  auto final_pass = load_json(dir.file("manifests.json"));
  const auto& blobs = final_pass["summary"]["blobs"];
  EXPECT_EQ(blobs["copied"].GetUint64() + blobs["mounted"].GetUint64(), 0u) << "the manifests pass moved blobs";
  EXPECT_EQ(blobs["present"].GetUint64(), all_blobs.size());

  // The shares: disjoint, covering the plan, balanced by bytes (LPT: within one blob).
  std::uint64_t share_blobs = 0, most = 0, least = UINT64_MAX, plan_bytes = 0;
  for (int k = 0; k < kShards; ++k) {
    auto report = load_json(dir.file("shard" + std::to_string(k) + ".json"));
    const auto& share = report["summary"]["blobs_only"];
    EXPECT_EQ(share["shard"].GetString(), std::to_string(k) + "/" + std::to_string(kShards));
    share_blobs += share["share_blobs"].GetUint64();
    most = std::max(most, share["share_bytes"].GetUint64());
    least = std::min(least, share["share_bytes"].GetUint64());
    plan_bytes = share["plan_bytes"].GetUint64();
    EXPECT_EQ(share["plan_blobs"].GetUint64(), all_blobs.size());
    EXPECT_EQ(report["summary"]["blobs"]["copied"].GetUint64() + report["summary"]["blobs"]["mounted"].GetUint64(),
              share["share_blobs"].GetUint64())
        << "shard " << k;
  }
  EXPECT_EQ(share_blobs, all_blobs.size());
  EXPECT_EQ(plan_bytes, fixture.unique_blob_bytes);
  EXPECT_LE(most - least, fixture.largest_blob) << "shares unbalanced: " << most << " vs " << least << " bytes";

  std::printf("[ scale-out ] %.1f MB: one process %.1f s, four shards %.1f s + manifests pass %.1f s: %.2fx\n",
              static_cast<double>(fixture.unique_blob_bytes) / 1e6, alone, shards_done, sharded - shards_done,
              alone / sharded);
  for (int k = 0; k < kShards; ++k) {
    auto report = load_json(dir.file("shard" + std::to_string(k) + ".json"));
    std::printf("[ scale-out ] shard %d: %.1f s, %.1f MB moved, share %.1f MB\n", k,
                report["summary"]["seconds"].GetDouble(), report["summary"]["bytes_moved"].GetDouble() / 1e6,
                report["summary"]["blobs_only"]["share_bytes"].GetDouble() / 1e6);
  }
  auto last = load_json(dir.file("manifests.json"));
  std::printf("[ scale-out ] manifests pass: %.1f s, %.1f MB moved\n", last["summary"]["seconds"].GetDouble(),
              last["summary"]["bytes_moved"].GetDouble() / 1e6);
#if !defined(FASTSYNC_ASAN) && !defined(FASTSYNC_TSAN_BUILD)  // there every process costs several times the CPU
  EXPECT_GE(alone / sharded, 2.5) << "one process " << alone << " s, sharded " << sharded << " s";
#endif
}

}  // namespace
}  // namespace fastsync::testing
