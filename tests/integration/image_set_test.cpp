// Image sets (--config, oc-mirror v2's ImageSetConfiguration) against real
// registries: a release chosen from a channel, additional images by tag and by
// digest (sharing layers with the release), a blocked component; checked with
// skopeo and the source registry's own log.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "registry/core/digest.h"
#include "tests/support/mirror_check.h"
#include "tests/support/process.h"
#include "tests/support/registries.h"
#include "tests/support/update_graph_server.h"

namespace fastsync::testing {
namespace {

// Every "source:" of a mirror set file, with the mirror listed above it.
std::set<std::pair<std::string, std::string>> mirror_entries(const std::string& yaml) {
  std::set<std::pair<std::string, std::string>> entries;
  std::string mirror;
  std::size_t at = 0;
  while (at < yaml.size()) {
    auto end = yaml.find('\n', at);
    std::string line = yaml.substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? yaml.size() : end + 1;
    if (auto m = line.find("    - "); m == 0) mirror = line.substr(6);
    if (auto s = line.find("    source: "); s == 0) entries.emplace(line.substr(12), mirror);
  }
  return entries;
}

class ImageSets : public ::testing::Test {
 protected:
  void SetUp() override {
    FixtureArgs a;
    a.components = 8;
    release_ = push_fixture(source_, a);
    // Another product from the same base layers: its image by tag, one of its parts by digest.
    FixtureArgs t = a;
    t.components = 3;
    t.release_repo = "example/tool";
    t.components_repo = "example/tool-parts";
    tool_ = push_fixture(source_, t);
    graph_ = std::make_unique<GraphServer>(
        dir_,
        std::map<std::string, std::string>{{"stable-4.20", graph_json({{"4.20.8", release_.release.digest}}, {})}});
  }

  std::string write_config(const std::string& extra = "") {
    std::string path = dir_.file("isc.yaml");
    write_file(path, fmt::format(R"(kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    architectures: [amd64]
    channels:
    - name: stable-4.20
      minVersion: 4.20.8
      maxVersion: 4.20.8
  additionalImages:
  - name: {0}/example/tool:4.20.8-x86_64
  - name: docker://{0}/example/tool-parts@{1}
{2})",
                                 source_.host(), part().digest, extra));
    return path;
  }

  RunResult mirror(const std::string& config, const TestRegistry& dest, const std::string& out_dir,
                   const std::vector<std::string>& extra = {}, const std::string& prefix = "") {
    std::vector<std::string> args = {"--config",
                                     config,
                                     "--dest-registry",
                                     dest.host() + prefix,
                                     "--pull-secret",
                                     secret_,
                                     "--source-registry",
                                     source_.host() + "/openshift-release-dev/ocp-release",
                                     "--graph-url",
                                     graph_->url(),
                                     "--out-dir",
                                     out_dir,
                                     "--no-signatures",
                                     "--insecure",
                                     "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_fastsync(args);
  }

  const FixtureImage& part() const { return tool_.components.at(1); }

  TestRegistry source_;
  TempDir dir_{"fastsync-imageset"};
  std::string secret_ = write_pull_secret(dir_.file("ps.json"), {});
  FixtureRelease release_, tool_;
  std::unique_ptr<GraphServer> graph_;
};

// The whole set in one run: the release exact, the additional images at
// <dest>/<their path> by digest (and the tagged one under its tag), each
// unique blob fetched once across the set, the mirror sets naming exactly
// what landed; a rerun moves nothing.
TEST_F(ImageSets, AReleaseAndAdditionalImagesInOneRunEachBlobOnce) {
  TestRegistry dest;
  std::string out = dir_.file("out");
  auto r = mirror(write_config(), dest, out);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", release_).empty());

  std::string tagged = skopeo_raw_manifest(dest, "example/tool:4.20.8-x86_64");
  ASSERT_FALSE(tagged.empty());
  EXPECT_EQ(sha256_digest(tagged), tool_.release.digest);
  std::string pinned = skopeo_raw_manifest(dest, "example/tool-parts@" + part().digest);
  ASSERT_FALSE(pinned.empty());
  EXPECT_EQ(sha256_digest(pinned), part().digest);
  EXPECT_TRUE(list_tags(dest, "example/tool-parts").empty()) << "named by digest: no tag";

  // The set shares its base layers with the release: each unique blob came once.
  auto gets = source_.blob_gets();
  std::set<std::string> unique(gets.begin(), gets.end());
  EXPECT_EQ(gets.size(), unique.size());
  std::set<std::string> shared;
  for (const auto& b : part().blobs) {
    for (const auto& c : release_.components) {
      if (std::find(c.blobs.begin(), c.blobs.end(), b) != c.blobs.end()) shared.insert(b);
    }
  }
  EXPECT_FALSE(shared.empty()) << "the fixture should share layers between the products";

  auto itms = mirror_entries(read_file(out + "/itms-oc-mirror.yaml"));
  EXPECT_EQ(itms, (std::set<std::pair<std::string, std::string>>{
                      {source_.host() + "/example/tool", dest.host() + "/example/tool"}}));
  auto idms = mirror_entries(read_file(out + "/idms-oc-mirror.yaml"));
  EXPECT_TRUE(idms.count({source_.host() + "/example/tool-parts", dest.host() + "/example/tool-parts"}));
  for (const auto& [source, mirror] : idms) {
    if (source.find("/example/") == std::string::npos) {
      EXPECT_EQ(mirror, dest.host() + "/openshift/release") << source;  // a release repository
    } else {
      EXPECT_EQ(source, source_.host() + "/example/tool-parts") << "by tag: the ITMS only";
    }
  }
  EXPECT_GE(idms.size(), 2u) << "the release's repositories and the pinned image";

  // A rerun: everything is there, nothing moves.
  auto again = mirror(write_config(), dest, out);
  ASSERT_EQ(again.exit_code, 0) << again.err << again.out;
  EXPECT_EQ(source_.blob_gets().size(), gets.size());
  EXPECT_NE(again.out.find("0 copied"), std::string::npos) << again.out;
}

// What a cluster does with the mirror sets: podman pulls the additional images
// by their original names (one by tag, one by digest) through a
// registries.conf made from the ITMS and IDMS, and gets them from the mirror:
// the source serves no blob for it.
TEST_F(ImageSets, PodmanPullsTheOriginalNamesThroughTheMirrorSets) {
  TestRegistry dest;
  std::string out = dir_.file("podman");
  auto r = mirror(write_config(), dest, out);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  // As the machine-config operator writes them: a tag-only mirror for the
  // ITMS, digest-only for the IDMS.
  std::string conf;
  auto add = [&](const std::string& yaml, const char* mode) {
    for (const auto& [source, mirror] : mirror_entries(yaml)) {
      conf += fmt::format(
          "[[registry]]\nlocation = \"{}\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{}\"\n"
          "insecure = true\npull-from-mirror = \"{}\"\n\n",
          source, mirror, mode);
    }
  };
  add(read_file(out + "/itms-oc-mirror.yaml"), "tag-only");
  add(read_file(out + "/idms-oc-mirror.yaml"), "digest-only");
  write_file(dir_.file("registries.conf"), conf);
  auto gets_before = source_.blob_gets().size();
  for (const auto& name :
       {source_.host() + "/example/tool:4.20.8-x86_64", source_.host() + "/example/tool-parts@" + part().digest}) {
    auto pulled = run_command({"podman", "--root", dir_.file("storage"), "--runroot", dir_.file("run"),
                               "--storage-driver", "vfs", "pull", "--quiet", name},
                              {"CONTAINERS_REGISTRIES_CONF=" + dir_.file("registries.conf")});
    EXPECT_EQ(pulled.exit_code, 0) << name << ": " << pulled.err << "\n" << conf;
  }
  EXPECT_EQ(source_.blob_gets().size(), gets_before) << "podman fetched from the source, not the mirror";
}

// A registry that allows two path components (Quay's org/repo): everything
// under the --dest-registry prefix, deeper paths flattened as oc-mirror does,
// the mirror sets naming where the images really are.
TEST_F(ImageSets, UnderAPrefixWithTwoPathComponentsAtMost) {
  TestRegistry dest;
  std::string out = dir_.file("nested");
  auto r = mirror(write_config(), dest, out, {"--max-nested-paths", "2"}, "/mirror");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(check_mirror(source_, dest, "mirror/openshift-release", release_).empty());
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "mirror/example-tool:4.20.8-x86_64")), tool_.release.digest);
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "mirror/example-tool-parts@" + part().digest)), part().digest);
  for (const auto& repo : catalog(dest)) {
    EXPECT_EQ(std::count(repo.begin(), repo.end(), '/'), 1) << repo;
    EXPECT_EQ(repo.rfind("mirror/", 0), 0u) << repo;
  }
  EXPECT_EQ(mirror_entries(read_file(out + "/itms-oc-mirror.yaml")),
            (std::set<std::pair<std::string, std::string>>{
                {source_.host() + "/example/tool", dest.host() + "/mirror/example-tool"}}));
  auto idms = mirror_entries(read_file(out + "/idms-oc-mirror.yaml"));
  EXPECT_TRUE(idms.count({source_.host() + "/example/tool-parts", dest.host() + "/mirror/example-tool-parts"}));
  for (const auto& [source, mirror] : idms) {
    if (source.find("/example/") == std::string::npos) {
      EXPECT_EQ(mirror, dest.host() + "/mirror/openshift-release");
    }
  }
}

// A blocked component: never copied, the release's tag kept away (the release
// would be incomplete), the rest mirrored, the summary saying which and why.
TEST_F(ImageSets, ABlockedComponentIsNeverCopiedAndKeepsItsReleaseTagAway) {
  const auto& blocked = release_.components.at(2);
  std::string entry = fmt::format("{}/{}@{}", source_.host(), blocked.repository, blocked.digest);
  TestRegistry dest;
  auto r = mirror(write_config(fmt::format("  blockedImages:\n  - name: {}\n", entry)), dest, dir_.file("out"));
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  EXPECT_NE(r.out.find("blocked (never copied)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fmt::format("blockedImages entry \"{}\"", entry)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fmt::format("its component {} is blocked", blocked.name)), std::string::npos) << r.out;
  EXPECT_TRUE(skopeo_raw_manifest(dest, "openshift/release@" + blocked.digest).empty());
  auto tags = list_tags(dest, "openshift/release");
  EXPECT_EQ(std::find(tags.begin(), tags.end(), "4.20.8-x86_64"), tags.end()) << "the release tag stays away";
  for (const auto& c : release_.components) {
    if (c.digest == blocked.digest) continue;
    EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "openshift/release@" + c.digest)), c.digest) << c.name;
  }
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "example/tool:4.20.8-x86_64")), tool_.release.digest);
  // The failures, with their reasons, beside the cluster resources.
  std::string errors = read_file(dir_.file("out") + "/mirroring-errors.txt");
  EXPECT_NE(errors.find(fmt::format("release 4.20.8 {}/openshift-release-dev/ocp-release@{}", source_.host(),
                                    release_.release.digest)),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("is blocked by blockedImages entry"), std::string::npos) << errors;
}

// A dry run lists every image of the set and what is blocked, writes
// mapping.txt (source=destination, as oc-mirror v2 does) and nothing else.
TEST_F(ImageSets, ADryRunWritesTheMappingAndTouchesNoRegistryButTheSource) {
  const auto& blocked = release_.components.at(3);
  std::string entry = fmt::format("{}/{}@{}", source_.host(), blocked.repository, blocked.digest);
  TestRegistry dest;
  std::string out = dir_.file("dry");
  auto r = run_fastsync({"--config", write_config(fmt::format("  blockedImages:\n  - name: {}\n", entry)),
                         "--dest-registry", dest.host(), "--pull-secret", secret_, "--source-registry",
                         source_.host() + "/openshift-release-dev/ocp-release", "--graph-url", graph_->url(),
                         "--out-dir", out, "--no-signatures", "--insecure", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find(fmt::format("blocked  {}", entry)), std::string::npos) << r.out;
  std::set<std::string> lines;
  std::string mapping = read_file(out + "/mapping.txt");
  for (std::size_t at = 0, end; (end = mapping.find('\n', at)) != std::string::npos; at = end + 1) {
    lines.insert(mapping.substr(at, end - at));
  }
  std::set<std::string> expected = {
      fmt::format("docker://{0}/example/tool@{1}=docker://{2}/example/tool:4.20.8-x86_64", source_.host(),
                  tool_.release.digest, dest.host()),
      fmt::format("docker://{0}/example/tool-parts@{1}=docker://{2}/example/tool-parts@{1}", source_.host(),
                  part().digest, dest.host()),
      fmt::format("docker://{0}/openshift-release-dev/ocp-release@{1}=docker://{2}/openshift/release:4.20.8-x86_64",
                  source_.host(), release_.release.digest, dest.host())};
  for (const auto& c : release_.components) {
    if (c.digest == blocked.digest) continue;
    expected.insert(fmt::format("docker://{}/{}@{}=docker://{}/openshift/release:4.20.8-x86_64-{}", source_.host(),
                                c.repository, c.digest, dest.host(), c.name));
  }
  EXPECT_EQ(lines, expected);
  EXPECT_TRUE(catalog(dest).empty());
}

// What the file asks and this version cannot do, or a flag that chooses what the
// file chooses: one line, exit 2, nothing pushed.
TEST_F(ImageSets, OperatorsOrAConflictingFlagAreOneLineAndNothingMoves) {
  TestRegistry dest;
  std::string config = write_config("  operators:\n  - catalog: registry.example.com/index:v4.20\n");
  auto r = mirror(config, dest, dir_.file("out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, fmt::format("fastsync: error: {}:14: mirror.operators[0]: catalog registry.example.com/index:v4.20: "
                               "operator catalogs are not mirrored by this version of fastsync; remove the operators "
                               "section to mirror the rest\n",
                               config));
  auto both = run_fastsync(
      {"--config", write_config(), "--version", "4.20.8", "--dest-registry", dest.host(), "--pull-secret", secret_});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_EQ(both.err, fmt::format("fastsync: error: --version: the image set file {} chooses what to mirror; give "
                                  "one of them\n",
                                  dir_.file("isc.yaml")));
  EXPECT_TRUE(catalog(dest).empty());
  EXPECT_TRUE(source_.blob_gets().empty());
}

}  // namespace
}  // namespace fastsync::testing
