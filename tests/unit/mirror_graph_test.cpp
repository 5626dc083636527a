// The whole five-stage graph against the in-memory fake: order, dedupe, skip,
// failure handling. (Real registries are in tests/integration.)
#include "graph/mirror_graph.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "tests/fixture/fixture.h"
#include "tests/unit/fake_registry.h"

namespace fastsync {
namespace {

using stages::ImageStatus;
using testing::FakeRegistry;

struct FakeRelease {
  FakeRegistry fake;
  Repository release_repo{"src.example:5000", "openshift-release-dev/ocp-release"};
  Repository art{"src.example:5000", "openshift-release-dev/ocp-v4.0-art-dev"};
  Repository dest{"mirror.example", "openshift/release"};
  std::vector<std::pair<std::string, std::string>> components;  // name, digest
  std::string release_digest;
  std::string manifests_layer_digest;

  explicit FakeRelease(int n) {
    for (int i = 0; i < n; ++i) {
      std::string name = fmt::format("comp-{}", i);
      std::string digest;
      if (i == 1) {  // one manifest list
        std::string amd = fake.add_image(art, {"base-1", "base-2", "amd-" + name});
        std::string arm = fake.add_image(art, {"arm-base", "arm-" + name}, /*oci=*/true);
        digest = fake.add_list(art, {amd, arm});
      } else {
        digest = fake.add_image(
            art, {"base-1", "base-2", "own-" + name + std::string(static_cast<size_t>(i) * 100, 'x')}, i % 2 == 0);
      }
      components.emplace_back(name, digest);
    }
    std::string tags;
    for (const auto& [name, digest] : components) {
      // image-references names quay.io: fastsync must pull from the source host instead.
      tags += fmt::format(
          R"({}{{"name":"{}","from":{{"kind":"DockerImage","name":"quay.io/openshift-release-dev/ocp-v4.0-art-dev@{}"}}}})",
          tags.empty() ? "" : ",", name, digest);
    }
    std::string refs = fmt::format(
        R"({{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{{"name":"4.20.8"}},"spec":{{"tags":[{}]}}}})",
        tags);
    auto layer = fixture::make_layer(
        {{"release-manifests/", "", true},
         {"release-manifests/image-references", refs, false},
         {"release-manifests/release-metadata", R"({"kind":"cincinnati-metadata-v0","version":"4.20.8"})", false}});
    manifests_layer_digest = layer.digest;
    release_digest = fake.add_image(release_repo, {"cvo-base", layer.compressed}, false, "4.20.8-x86_64");
  }

  stages::MirrorSpec spec() const {
    stages::MirrorSpec s;
    s.releases = {stages::ReleaseWanted{"4.20.8", {}}};
    s.arch = "x86_64";
    s.source = release_repo;
    s.dest = dest;
    return s;
  }
};

graph::StageLimits small_limits() { return graph::StageLimits{2, 2, 3, 2}; }

TEST(MirrorGraph, CopiesEverythingOnceInASafeOrder) {
  FakeRelease rel(6);
  stages::RunControl run;
  auto result = graph::run_mirror(rel.fake.ends(), run, rel.spec(), small_limits());
  ASSERT_TRUE(result.plan) << (result.resolve_error ? result.resolve_error->message : "");
  ASSERT_EQ(result.outcomes.size(), 7u);
  for (const auto& o : result.outcomes) {
    ASSERT_TRUE(o);
    EXPECT_EQ(o->status, ImageStatus::Copied) << o->error;
  }
  EXPECT_TRUE(rel.fake.violations().empty()) << rel.fake.violations().front();

  auto dest = rel.fake.snapshot(rel.dest);
  for (const auto& [name, digest] : rel.components) EXPECT_EQ(dest.tags.at("4.20.8-x86_64-" + name), digest);
  EXPECT_EQ(dest.tags.at("4.20.8-x86_64"), rel.release_digest);

  // Components were pulled from the source host, not the quay.io image-references names.
  for (const auto& e : rel.fake.events()) {
    if (e.op == "copy_blob" || e.op == "get_manifest") {
      EXPECT_EQ(e.repo.find("quay.io"), std::string::npos) << e.repo;
    }
  }
  // Each blob moved once; the release-manifests layer went up from memory.
  std::map<std::string, int> moves;
  for (const auto& e : rel.fake.events()) {
    if (e.op == "copy_blob" || e.op == "upload_blob") moves[e.ref]++;
  }
  for (const auto& [digest, n] : moves) EXPECT_EQ(n, 1) << digest;
  EXPECT_EQ(moves.size(), dest.blobs.size());
  EXPECT_EQ(rel.fake.count("open_blob"), 1u);
  EXPECT_EQ(rel.fake.count("upload_blob"), 1u);

  // The release image's tag is the very last write.
  auto events = rel.fake.events();
  std::string last_put;
  for (const auto& e : events) {
    if (e.op == "put_manifest") last_put = e.ref;
  }
  EXPECT_EQ(last_put, "4.20.8-x86_64");
  EXPECT_EQ(run.progress.images_copied.load(), 7u);
  EXPECT_EQ(run.progress.blobs_total.load(), dest.blobs.size());
}

// A checking dry run asks the destination and writes nothing: every image is
// Planned ("would copy") before the mirror, Skipped ("already there") after.
TEST(MirrorGraph, ACheckingDryRunWritesNothingAndSaysWhatIsAlreadyThere) {
  FakeRelease rel(4);
  auto writes = [&] {
    std::size_t n = 0;
    for (const auto& e : rel.fake.events()) {
      n += e.op == "put_manifest" || e.op == "copy_blob" || e.op == "upload_blob" || e.op == "mount" ? 1 : 0;
    }
    return n;
  };
  auto dry_run = [&](ImageStatus expected) {
    stages::RunControl run;
    auto result = graph::run_mirror(rel.fake.ends(), run, rel.spec(), small_limits(), {}, graph::RunMode::Check);
    ASSERT_EQ(result.outcomes.size(), 5u);
    for (const auto& o : result.outcomes) {
      ASSERT_TRUE(o);
      EXPECT_EQ(o->status, expected) << o->error;
    }
  };
  dry_run(ImageStatus::Planned);
  EXPECT_EQ(writes(), 0u);
  EXPECT_EQ(rel.fake.count("open_blob"), 1u) << "only the release's manifests layer, to plan";
  stages::RunControl mirror;
  (void)graph::run_mirror(rel.fake.ends(), mirror, rel.spec(), small_limits());
  std::size_t written = writes();
  ASSERT_GT(written, 0u);
  dry_run(ImageStatus::Skipped);
  EXPECT_EQ(writes(), written);
}

TEST(MirrorGraph, ARerunSkipsEverythingAndPullsNothing) {
  FakeRelease rel(5);
  stages::RunControl first;
  (void)graph::run_mirror(rel.fake.ends(), first, rel.spec(), small_limits());
  std::size_t copies = rel.fake.count("copy_blob");
  // Manifests read at the source (the destination's own copies may be read: a
  // present list's children are asked for cosign signatures).
  auto source_gets = [&] {
    std::size_t n = 0;
    for (const auto& e : rel.fake.events()) n += e.op == "get_manifest" && e.repo != rel.dest.str() ? 1 : 0;
    return n;
  };
  std::size_t gets = source_gets();
  stages::RunControl second;
  auto result = graph::run_mirror(rel.fake.ends(), second, rel.spec(), small_limits());
  for (const auto& o : result.outcomes) {
    ASSERT_TRUE(o);
    EXPECT_EQ(o->status, ImageStatus::Skipped);
  }
  EXPECT_EQ(rel.fake.count("copy_blob"), copies);
  EXPECT_EQ(source_gets(), gets + 1);  // only the release tag, to resolve it
  EXPECT_EQ(second.progress.blobs_total.load(), 0u);
}

TEST(MirrorGraph, AFailedComponentKeepsTheReleaseTagAway) {
  FakeRelease rel(4);
  rel.fake.fail_blob_copy[sha256_digest("own-comp-3" + std::string(300, 'x'))] =
      Error::make(ErrorKind::Server, "HTTP 503 after 3 retries", 503);
  stages::RunControl run;
  auto result = graph::run_mirror(rel.fake.ends(), run, rel.spec(), small_limits());
  ASSERT_TRUE(result.plan);
  EXPECT_EQ(result.outcomes[3]->status, ImageStatus::Failed);
  EXPECT_NE(result.outcomes[3]->error.find("503"), std::string::npos);
  EXPECT_EQ(result.outcomes[0]->status, ImageStatus::Copied);
  EXPECT_EQ(result.outcomes[4]->status, ImageStatus::Failed);  // the release
  EXPECT_NE(result.outcomes[4]->error.find("1 of 4 components failed"), std::string::npos) << result.outcomes[4]->error;
  auto dest = rel.fake.snapshot(rel.dest);
  EXPECT_FALSE(dest.tags.count("4.20.8-x86_64"));
  EXPECT_FALSE(dest.tags.count("4.20.8-x86_64-comp-3"));
  EXPECT_TRUE(rel.fake.violations().empty());
  EXPECT_FALSE(run.cancelled());  // one failing image does not stop the others
}

TEST(MirrorGraph, ADestinationThatRefusesUsStopsTheRun) {
  FakeRelease rel(4);
  rel.fake.fail_manifest_reads[rel.dest.str()] = Error::make(ErrorKind::AuthDenied, "credentials refused", 401);
  stages::RunControl run;
  auto result = graph::run_mirror(rel.fake.ends(), run, rel.spec(), small_limits());
  EXPECT_TRUE(run.cancelled());
  EXPECT_NE(run.reason().find("credentials refused"), std::string::npos);
  for (const auto& o : result.outcomes) {
    ASSERT_TRUE(o);
    EXPECT_EQ(o->status, ImageStatus::Failed);
  }
  EXPECT_EQ(rel.fake.count("put_manifest"), 0u);
}

TEST(MirrorGraph, ResolutionErrorsEndTheRunWithTheReason) {
  FakeRelease rel(2);
  stages::RunControl run;
  auto spec = rel.spec();
  spec.releases = {stages::ReleaseWanted{"4.20.99", {}}};
  auto result = graph::run_mirror(rel.fake.ends(), run, spec, small_limits());
  EXPECT_FALSE(result.plan);
  ASSERT_TRUE(result.resolve_error);
  EXPECT_EQ(result.resolve_error->kind, ErrorKind::NotFound);
  EXPECT_NE(result.resolve_error->message.find(
                "release 4.20.99-x86_64 not found at src.example:5000/openshift-release-dev/ocp-release"),
            std::string::npos)
      << result.resolve_error->message;
}

// Three shards on the same fake, then an ordinary run: each blob moves once, in
// exactly one shard; no shard writes a manifest; the last run only pushes manifests.
TEST(MirrorGraph, ShardsCopyEachBlobOnceAndTheManifestsPassMovesNone) {
  FakeRelease rel(8);
  constexpr std::size_t kShards = 3;
  std::map<std::string, std::size_t> mover;  // blob -> the shard that moved it
  std::uint64_t shared_out = 0;
  std::set<std::size_t> plan_blobs;  // as each shard counted them: the same
  for (std::size_t k = 0; k < kShards; ++k) {
    auto spec = rel.spec();
    spec.blobs_only = true;
    spec.shard = stages::Shard{k, kShards};
    std::size_t events_before = rel.fake.events().size();
    stages::RunControl run;
    auto result = graph::run_mirror(rel.fake.ends(), run, spec, small_limits());
    ASSERT_TRUE(result.plan && result.plan->shard);
    for (const auto& o : result.outcomes) {
      ASSERT_TRUE(o);
      EXPECT_EQ(o->status, ImageStatus::BlobsIn) << o->error;
    }
    auto events = rel.fake.events();
    std::set<std::string> moved;
    for (std::size_t i = events_before; i < events.size(); ++i) {
      const auto& e = events[i];
      EXPECT_NE(e.op, "put_manifest") << "shard " << k << " pushed " << e.ref;
      if (e.op == "copy_blob" || e.op == "upload_blob") {
        EXPECT_TRUE(mover.emplace(e.ref, k).second) << e.ref << " moved by shards " << mover[e.ref] << " and " << k;
        moved.insert(e.ref);
      }
    }
    EXPECT_EQ(moved, result.plan->shard->blobs) << "shard " << k << " moved other than its share";
    shared_out += result.plan->shard->blobs.size();
    plan_blobs.insert(result.plan->shard->plan_blobs);
  }
  EXPECT_TRUE(rel.fake.snapshot(rel.dest).tags.empty());

  std::size_t moves_before = rel.fake.count("copy_blob") + rel.fake.count("upload_blob");
  stages::RunControl run;
  auto result = graph::run_mirror(rel.fake.ends(), run, rel.spec(), small_limits());
  ASSERT_TRUE(result.plan);
  EXPECT_EQ(shared_out, mover.size());
  EXPECT_EQ(rel.fake.count("copy_blob") + rel.fake.count("upload_blob"), moves_before)
      << "the manifests pass moved blobs";
  for (const auto& o : result.outcomes) {
    ASSERT_TRUE(o);
    EXPECT_EQ(o->status, ImageStatus::Copied) << o->error;
  }
  auto dest = rel.fake.snapshot(rel.dest);
  for (const auto& [name, digest] : rel.components) EXPECT_EQ(dest.tags.at("4.20.8-x86_64-" + name), digest);
  EXPECT_EQ(dest.blobs.size(), mover.size());
  EXPECT_EQ(plan_blobs, std::set<std::size_t>{mover.size()});
  EXPECT_TRUE(rel.fake.violations().empty()) << rel.fake.violations().front();
}

TEST(Shard, ParsesKOfNFromZero) {
  auto s = stages::parse_shard("3/4");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->index, 3u);
  EXPECT_EQ(s->count, 4u);
  EXPECT_EQ(s->str(), "3/4");
  for (const char* bad : {"4/4", "1", "/4", "1/", "-1/4", "1/0", "a/4", "1/4x", "0/5000", ""}) {
    EXPECT_FALSE(stages::parse_shard(bad)) << bad;
  }
}

// Balanced by bytes, one owner per blob, the same whatever the order it is given in.
TEST(Shard, AssignmentIsBalancedAndIndependentOfOrder) {
  std::vector<Descriptor> blobs;
  std::mt19937_64 rng(15);
  blobs.push_back(Descriptor{"", "sha256:huge", 1000u << 20, {}});  // one 1 GB layer
  for (int i = 0; i < 400; ++i) {
    blobs.push_back(Descriptor{"", fmt::format("sha256:{:04d}", i), rng() % (40u << 20), {}});
  }
  blobs.push_back(blobs[7]);  // the same blob named by two images
  for (std::size_t n : {1u, 2u, 4u, 7u}) {
    auto owner = stages::assign_blobs(blobs, n);
    EXPECT_EQ(owner.size(), blobs.size() - 1);
    std::vector<std::uint64_t> load(n, 0);
    std::uint64_t total = 0;
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& b : blobs) sizes[b.digest] = b.size;
    for (const auto& [digest, k] : owner) {
      ASSERT_LT(k, n);
      load[k] += sizes[digest];
    }
    for (auto l : load) total += l;
    auto [least, most] = std::minmax_element(load.begin(), load.end());
    // Greedy largest-first: no share exceeds the fair share by more than one blob
    // (here: the 1 GB one may stand alone, the others absorb the rest).
    EXPECT_LE(*most, std::max<std::uint64_t>(total / n + (40u << 20), 1000u << 20)) << n << " shards";
    if (n <= 4) {
      EXPECT_LE(*most - *least, 40u << 20) << n << " shards";
    }
    auto shuffled = blobs;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    EXPECT_EQ(stages::assign_blobs(shuffled, n), owner) << n << " shards";
    std::size_t covered = 0;
    for (std::size_t k = 0; k < n; ++k) covered += stages::share_of(blobs, stages::Shard{k, n}).blobs.size();
    EXPECT_EQ(covered, owner.size());
  }
}

}  // namespace
}  // namespace fastsync
