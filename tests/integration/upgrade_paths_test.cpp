// Several releases in one run, chosen with --version or from a local update
// graph server shaped like api.openshift.com's; the mirror checked with skopeo
// and the source registry's own log.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <map>
#include <set>

#include "tests/support/mirror_check.h"
#include "tests/support/process.h"
#include "tests/support/registries.h"
#include "tests/support/update_graph_server.h"

namespace fastsync::testing {
namespace {

std::vector<std::string> source_args(const TestRegistry& source) {
  return {"--source-registry", source.host() + "/openshift-release-dev/ocp-release", "--insecure", "-q"};
}

class UpgradePaths : public ::testing::Test {
 protected:
  FixtureRelease push(const std::string& version, int revision) {
    FixtureArgs a;
    a.components = 12;
    a.version = version;
    a.revision = revision;
    return push_fixture(source_, a);
  }
  TestRegistry source_;
  TempDir dir_{"fastsync-upgrades"};
  std::string secret_ = write_pull_secret(dir_.file("ps.json"), {});
};

// Two consecutive z-streams from a channel (no --max-version: the latest):
// one run, every unique blob fetched once, shared images tagged for both
// releases, each release tag exact, the report per release.
TEST_F(UpgradePaths, ARangeFromAChannelMirrorsTheUnionOnce) {
  auto r8 = push("4.20.8", 0);
  auto r9 = push("4.20.9", 1);
  std::set<std::string> shared;
  for (const auto& c : r9.components) {
    for (const auto& o : r8.components) {
      if (o.digest == c.digest) shared.insert(c.digest);
    }
  }
  ASSERT_GE(shared.size(), 6u) << "consecutive z-streams should share most images";
  ASSERT_LT(shared.size(), r9.components.size()) << "and rebuild some";

  GraphServer graph(dir_, {{"stable-4.20", graph_json({{"4.20.8", r8.release.digest},
                                                       {"4.20.9", r9.release.digest},
                                                       {"4.20.7", "sha256:" + std::string(64, '7')}},
                                                      {{2, 0}, {0, 1}})}});
  TestRegistry dest;
  auto args = source_args(source_);
  args.insert(args.end(),
              {"--channel", "stable-4.20", "--min-version", "4.20.8", "--graph-url", graph.url(), "--dest-registry",
               dest.host(), "--pull-secret", secret_, "--report", dir_.file("report.json")});
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(graph.log().find("channel=stable-4.20&arch=amd64 accept=application/json"), std::string::npos)
      << graph.log();
  EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", r8).empty());
  EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", r9).empty());

  // Each unique blob fetched from the source once, though both releases name most of them.
  auto gets = source_.blob_gets();
  std::set<std::string> unique(gets.begin(), gets.end());
  EXPECT_EQ(gets.size(), unique.size());
  std::set<std::string> all_blobs;
  for (const auto& f : {r8, r9}) {
    for (const auto& b : f.all_blobs()) all_blobs.insert(b);
  }
  for (const auto& b : unique) EXPECT_TRUE(all_blobs.count(b)) << b;

  rapidjson::Document report;
  std::string text = read_file(dir_.file("report.json"));
  report.Parse(text.c_str());
  ASSERT_TRUE(report.IsObject());
  ASSERT_EQ(report["releases"].Size(), 2u);
  EXPECT_STREQ(report["releases"][0]["version"].GetString(), "4.20.8");
  EXPECT_STREQ(report["releases"][1]["version"].GetString(), "4.20.9");
  EXPECT_EQ(std::string(report["releases"][1]["digest"].GetString()), r9.release.digest);
  EXPECT_EQ(report["releases"][1]["components"].GetUint64(), r9.components.size());
  EXPECT_EQ(report["releases"][1]["failed"].GetUint64(), 0u);
  // One ImageDigestMirrorSet for both.
  std::size_t sets = 0;
  for (std::size_t at = r.out.find("kind: ImageDigestMirrorSet"); at != std::string::npos;
       at = r.out.find("kind: ImageDigestMirrorSet", at + 1)) {
    ++sets;
  }
  EXPECT_EQ(sets, 1u);
}

// The summary's totals are defined once: every image of the plan once (a
// component both releases name counts once, each release image once); copied,
// skipped, failed and not attempted add up to it — with two releases, cosign
// signatures travelling beside the images (counted apart), a rerun and a shard.
TEST_F(UpgradePaths, TheSummaryCountsEachImageOnceWhateverTheRunHolds) {
  FixtureArgs a;
  a.components = 12;
  a.sigstore_every = 3;
  a.version = "4.20.8";
  auto r8 = push_fixture(source_, a);
  a.version = "4.20.9";
  a.revision = 1;
  auto r9 = push_fixture(source_, a);
  std::set<std::string> images;
  for (const auto* f : {&r8, &r9}) {
    images.insert(f->release.digest);
    for (const auto& c : f->components) images.insert(c.digest);
  }
  const std::uint64_t total = images.size();
  ASSERT_LT(total, r8.components.size() + r9.components.size() + 2) << "the releases should share images";

  struct Counts {
    std::uint64_t images, copied, skipped, failed, not_attempted, blobs_in;
  };
  auto counts = [&](const std::string& report_path) {
    auto report = load_json(report_path);
    const auto& sum = report["summary"];
    return Counts{sum["images"].GetUint64(),        sum["copied"].GetUint64(),
                  sum["skipped"].GetUint64(),       sum["failed"].GetUint64(),
                  sum["not_attempted"].GetUint64(), sum.HasMember("blobs_in") ? sum["blobs_in"].GetUint64() : 0};
  };
  TestRegistry dest;
  auto run = [&](const std::string& name, std::vector<std::string> extra) {
    auto args = source_args(source_);
    args.insert(args.end(), {"--version", "4.20.8,4.20.9", "--dest-registry", dest.host(), "--pull-secret", secret_,
                             "--report", dir_.file(name)});
    args.insert(args.end(), extra.begin(), extra.end());
    return run_fastsync(args);
  };

  // A shard first: its images are counted by what happened to their blobs.
  auto shard = run("shard.json", {"--shard", "0/2"});
  ASSERT_EQ(shard.exit_code, 0) << shard.err;
  auto c = counts(dir_.file("shard.json"));
  EXPECT_EQ(c.images, total);
  EXPECT_EQ(c.blobs_in + c.skipped + c.failed + c.not_attempted, total);
  EXPECT_NE(shard.out.find(fmt::format("0 failed, of {}", total)), std::string::npos) << shard.out;

  auto full = run("full.json", {});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  c = counts(dir_.file("full.json"));
  EXPECT_EQ(c.images, total);
  EXPECT_EQ(c.copied, total);
  EXPECT_EQ(c.skipped + c.failed + c.not_attempted, 0u);
  EXPECT_NE(full.out.find(fmt::format("images:  {} copied, 0 skipped (already there), 0 failed, of {}", total, total)),
            std::string::npos)
      << full.out;
  auto report = load_json(dir_.file("full.json"));
  for (const auto& rel : report["releases"].GetArray()) {
    const auto& f = std::string(rel["version"].GetString()) == "4.20.8" ? r8 : r9;
    EXPECT_EQ(rel["components"].GetUint64(), f.components.size());
    EXPECT_EQ(rel["copied"].GetUint64() + rel["skipped"].GetUint64(), f.components.size());
  }
  EXPECT_GT(report["sigstore"]["copied"].GetUint64(), 0u) << "cosign signatures travel, counted apart from images";

  auto rerun = run("rerun.json", {});
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  c = counts(dir_.file("rerun.json"));
  EXPECT_EQ(c.images, total);
  EXPECT_EQ(c.skipped, total);
  EXPECT_NE(rerun.out.find(fmt::format("images:  0 copied, {} skipped (already there), 0 failed, of {}", total, total)),
            std::string::npos)
      << rerun.out;
}

// --version as a list, straight from tags; and the dry run of a shortest path
// across two channels shows the path and the risk of its conditional edge.
TEST_F(UpgradePaths, AShortestPathAcrossChannelsShowsItsRisks) {
  auto r19 = push("4.19.5", 2);
  auto r8 = push("4.20.8", 0);
  auto r9 = push("4.20.9", 1);
  GraphServer graph(
      dir_, {{"stable-4.19",
              graph_json({{"4.19.4", "sha256:" + std::string(64, '4')}, {"4.19.5", r19.release.digest}}, {{0, 1}})},
             {"stable-4.20",
              graph_json({{"4.19.5", r19.release.digest}, {"4.20.8", r8.release.digest}, {"4.20.9", r9.release.digest}},
                         {{1, 2}}, {{"4.19.5", "4.20.8"}})}});
  auto args = source_args(source_);
  args.insert(args.end(), {"--channel", "stable-4.19", "--channel", "stable-4.20", "--min-version", "4.19.5",
                           "--max-version", "4.20.9", "--shortest-path", "--graph-url", graph.url(), "--dest-registry",
                           "127.0.0.1:1", "--pull-secret", secret_, "--dry-run"});
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("3 release(s) from channel stable-4.19, stable-4.20 (shortest upgrade path 4.19.5 -> 4.20.9)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("risk OVNRestart: Pods may lose networking briefly (https://issues.redhat.example/OCPBUGS-1)"),
            std::string::npos)
      << r.out;
  for (const auto& f : {r19, r8, r9}) {
    EXPECT_NE(r.out.find("release " + f.version + "-x86_64: " + source_.host() + "/openshift-release-dev/ocp-release@" +
                         f.release.digest),
              std::string::npos)
        << f.version << "\n"
        << r.out;
  }

  // The same releases by --version, into a registry.
  TestRegistry dest;
  auto list = source_args(source_);
  list.insert(list.end(), {"--version", "4.19.5,4.20.8", "--version", "4.20.9", "--dest-registry", dest.host(),
                           "--pull-secret", secret_});
  auto mirrored = run_fastsync(list);
  ASSERT_EQ(mirrored.exit_code, 0) << mirrored.err;
  for (const auto& f : {r19, r8, r9})
    EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", f).empty()) << f.version;
  EXPECT_NE(mirrored.out.find("releases 4.19.5, 4.20.8, 4.20.9 (x86_64)"), std::string::npos) << mirrored.out;
}

// What the graph cannot give: one line naming the channel and URL, exit 3, nothing pushed.
TEST_F(UpgradePaths, BadGraphAnswersAreOneLineEach) {
  auto r8 = push("4.20.8", 0);
  std::string good = graph_json({{"4.20.8", r8.release.digest}}, {});
  TestRegistry dest;
  auto run = [&](const GraphServer& graph, const std::vector<std::string>& extra,
                 const std::string& channel = "stable-4.20") {
    auto args = source_args(source_);
    args.insert(args.end(), {"--channel", channel, "--graph-url", graph.url(), "--dest-registry", dest.host(),
                             "--pull-secret", secret_});
    args.insert(args.end(), extra.begin(), extra.end());
    return run_fastsync(args);
  };
  auto one_line = [](const std::string& err) { return std::count(err.begin(), err.end(), '\n') == 1; };

  GraphServer refusing(dir_, {{"stable-4.20", good}}, "406");
  auto r = run(refusing, {});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("update graph for channel stable-4.20 (" + refusing.url()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("406"), std::string::npos) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;

  GraphServer html(dir_, {{"stable-4.20", good}}, "not-json");
  r = run(html, {});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("not JSON"), std::string::npos) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;

  GraphServer normal(dir_, {{"stable-4.20", good}});
  r = run(normal, {"--min-version", "4.20.3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "fastsync: error: --min-version 4.20.3 is not in channel stable-4.20 (it holds 4.20.8 … 4.20.8)\n");

  auto unknown = run(normal, {}, "fast-4.99");
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.err.find("update graph for channel fast-4.99"), std::string::npos) << unknown.err;
  EXPECT_TRUE(one_line(unknown.err)) << unknown.err;
  EXPECT_TRUE(catalog(dest).empty());
}

// One archive carries several releases; --from-dir mirrors them all.
TEST_F(UpgradePaths, OneArchiveCarriesSeveralReleases) {
  auto r8 = push("4.20.8", 0);
  auto r9 = push("4.20.9", 1);
  auto args = source_args(source_);
  args.insert(args.end(), {"--version", "4.20.8,4.20.9", "--to-dir", dir_.file("archive"), "--pull-secret", secret_});
  auto out = run_fastsync(args);
  ASSERT_EQ(out.exit_code, 0) << out.err;
  TestRegistry dest;
  auto in = run_fastsync({"--from-dir", dir_.file("archive"), "--dest-registry", dest.host(), "--pull-secret", secret_,
                          "-q", "--no-signatures"});
  ASSERT_EQ(in.exit_code, 0) << in.err;
  EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", r8).empty());
  EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", r9).empty());
}

}  // namespace
}  // namespace fastsync::testing
