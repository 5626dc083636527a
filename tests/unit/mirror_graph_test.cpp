// The whole five-stage graph against the in-memory fake: order, dedupe, skip,
// failure handling. (Real registries are in tests/integration.)
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "release/fixture/fixture.h"
#include "graph/mirror_graph.h"
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
        digest = fake.add_image(art, {"base-1", "base-2", "own-" + name + std::string(static_cast<size_t>(i) * 100, 'x')},
                                i % 2 == 0);
      }
      components.emplace_back(name, digest);
    }
    std::string tags;
    for (const auto& [name, digest] : components) {
      // image-references names quay.io: fastsync must pull from the source host instead.
      tags += fmt::format(R"({}{{"name":"{}","from":{{"kind":"DockerImage","name":"quay.io/openshift-release-dev/ocp-v4.0-art-dev@{}"}}}})",
                          tags.empty() ? "" : ",", name, digest);
    }
    std::string refs = fmt::format(R"({{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{{"name":"4.20.8"}},"spec":{{"tags":[{}]}}}})", tags);
    auto layer = fixture::make_layer({{"release-manifests/", "", true},
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
  auto result = graph::run_mirror(rel.fake, run, rel.spec(), small_limits());
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

TEST(MirrorGraph, ARerunSkipsEverythingAndPullsNothing) {
  FakeRelease rel(5);
  stages::RunControl first;
  (void)graph::run_mirror(rel.fake, first, rel.spec(), small_limits());
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
  auto result = graph::run_mirror(rel.fake, second, rel.spec(), small_limits());
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
  auto result = graph::run_mirror(rel.fake, run, rel.spec(), small_limits());
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
  auto result = graph::run_mirror(rel.fake, run, rel.spec(), small_limits());
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
  auto result = graph::run_mirror(rel.fake, run, spec, small_limits());
  EXPECT_FALSE(result.plan);
  ASSERT_TRUE(result.resolve_error);
  EXPECT_EQ(result.resolve_error->kind, ErrorKind::NotFound);
  EXPECT_NE(result.resolve_error->message.find("release 4.20.99-x86_64 not found at src.example:5000/openshift-release-dev/ocp-release"),
            std::string::npos)
      << result.resolve_error->message;
}

}  // namespace
}  // namespace fastsync
