// Image sets (--config, oc-mirror v2's ImageSetConfiguration) against real
// registries: a release chosen from a channel, additional images by tag and by
// digest (sharing layers with the release), a blocked component; checked with
// skopeo and the source registry's own log.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
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

// Across the air gap with the same file: --to-dir carries the release and the
// additional images (the archive's index naming each image's section and
// origin), --from-dir pushes them with the source switched off, and the mirror
// sets name the original repositories. A file naming an image the archive does
// not hold is one line, and nothing is pushed.
TEST_F(ImageSets, TheSameFileAcrossTheAirGap) {
  std::string archive = dir_.file("archive");
  std::string config = write_config();
  auto to_dir = run_fastsync({"--config", config, "--to-dir", archive, "--pull-secret", secret_, "--source-registry",
                              source_.host() + "/openshift-release-dev/ocp-release", "--graph-url", graph_->url(),
                              "--no-signatures", "--insecure", "-q"});
  ASSERT_EQ(to_dir.exit_code, 0) << to_dir.err << to_dir.out;
  std::string index = read_file(archive + "/fastsync-archive.json");
  EXPECT_NE(index.find("\"section\": \"additionalImages\""), std::string::npos) << index;
  EXPECT_NE(index.find(fmt::format("\"source\": \"{}/example/tool-parts\"", source_.host())), std::string::npos)
      << index;

  TestRegistry dest;
  std::string out = dir_.file("far-side");
  source_.stop();  // the far side has no way to the source
  auto from_dir = run_fastsync({"--config", config, "--from-dir", archive, "--dest-registry", dest.host(),
                                "--pull-secret", secret_, "--out-dir", out, "--no-signatures", "--insecure", "-q"});
  source_.start();
  ASSERT_EQ(from_dir.exit_code, 0) << from_dir.err << from_dir.out;
  EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", release_).empty());
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "example/tool:4.20.8-x86_64")), tool_.release.digest);
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "example/tool-parts@" + part().digest)), part().digest);
  EXPECT_TRUE(list_tags(dest, "example/tool-parts").empty()) << "named by digest: no tag";
  EXPECT_EQ(mirror_entries(read_file(out + "/itms-oc-mirror.yaml")),
            (std::set<std::pair<std::string, std::string>>{
                {source_.host() + "/example/tool", dest.host() + "/example/tool"}}));
  auto idms = mirror_entries(read_file(out + "/idms-oc-mirror.yaml"));
  EXPECT_TRUE(idms.count({source_.host() + "/example/tool-parts", dest.host() + "/example/tool-parts"}));
  for (const auto& [source, mirror] : idms) {
    if (source.find("/example/") == std::string::npos) continue;  // the releases' (image-references names them)
    EXPECT_EQ(source.rfind(source_.host() + "/", 0), 0u) << "the cluster asks for the original names: " << source;
  }

  // Another file, naming an image the archive does not carry.
  std::string other = dir_.file("other.yaml");
  write_file(other, fmt::format("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n"
                                "  additionalImages:\n  - name: {}/example/elsewhere:v1\n",
                                source_.host()));
  TestRegistry empty;
  auto refused = run_fastsync({"--config", other, "--from-dir", archive, "--dest-registry", empty.host(),
                               "--pull-secret", secret_, "--out-dir", out, "--no-signatures", "--insecure", "-q"});
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_EQ(refused.err,
            fmt::format("fastsync: error: {}:5: mirror.additionalImages: {}/example/elsewhere:v1 is not in archive {} "
                        "(was it written from another image set file, or did that image fail there?); nothing was "
                        "pushed\n",
                        other, source_.host(), archive));
  EXPECT_TRUE(catalog(empty).empty());
}

// graph: true — the update service's graph data as an image on a base
// image: the base's layers and one more holding the graph-data tarball's files
// under /var/lib/cincinnati-graph-data (read back with tar), its command
// copying them where the service reads them, an UpdateService naming it by
// digest and the mirrored releases; a rerun builds the same bytes and skips it.
TEST_F(ImageSets, TheGraphImageHoldsTheGraphDataOnItsBase) {
  std::string data_dir = dir_.file("graph-data");
  std::filesystem::create_directories(data_dir + "/channels");
  std::filesystem::create_directories(data_dir + "/blocked-edges");
  write_file(data_dir + "/channels/stable-4.20.yaml", "name: stable-4.20\nversions:\n- 4.20.8\n");
  write_file(data_dir + "/blocked-edges/4.20.7.yaml", "to: 4.20.7\nfrom: .*\n");
  write_file(data_dir + "/version", "1.2.0\n");
  std::string tarball = dir_.file("graph-data.tar.gz");
  ASSERT_EQ(run_command({"tar", "-C", data_dir, "-czf", tarball, "."}).exit_code, 0);
  GraphServer graph(dir_, {{"stable-4.20", graph_json({{"4.20.8", release_.release.digest}}, {})}}, "normal", tarball);
  std::string config = dir_.file("graph.yaml");
  write_file(config, R"(kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    graph: true
    channels:
    - name: stable-4.20
)");
  std::string base = source_.host() + "/example/tool:4.20.8-x86_64";
  TestRegistry dest;
  std::string out = dir_.file("graph-out");
  std::vector<std::string> args = {"--config",
                                   config,
                                   "--dest-registry",
                                   dest.host(),
                                   "--pull-secret",
                                   secret_,
                                   "--source-registry",
                                   source_.host() + "/openshift-release-dev/ocp-release",
                                   "--graph-url",
                                   graph.url(),
                                   "--graph-data",
                                   graph.graph_data_url(),
                                   "--graph-base-image",
                                   base,
                                   "--out-dir",
                                   out,
                                   "--no-signatures",
                                   "--insecure",
                                   "-q"};
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(check_mirror(source_, dest, "openshift/release", release_).empty());

  std::string manifest = skopeo_raw_manifest(dest, "openshift/graph-image:latest");
  ASSERT_FALSE(manifest.empty());
  rapidjson::Document built;
  built.Parse(manifest.c_str());
  rapidjson::Document original;
  original.Parse(skopeo_raw_manifest(source_, "example/tool:4.20.8-x86_64").c_str());
  ASSERT_EQ(built["layers"].Size(), original["layers"].Size() + 1);
  for (rapidjson::SizeType i = 0; i < original["layers"].Size(); ++i) {
    EXPECT_EQ(std::string(built["layers"][i]["digest"].GetString()), original["layers"][i]["digest"].GetString());
  }
  std::string top = built["layers"][original["layers"].Size()]["digest"].GetString();
  std::string layer_file = dir_.file("top-layer.tar.gz");
  write_file(layer_file, curl_blob(dest, "openshift/graph-image", top));
  auto listed = run_command({"tar", "-tzf", layer_file});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("var/lib/cincinnati-graph-data/channels/stable-4.20.yaml"), std::string::npos)
      << listed.out;
  auto content = run_command({"tar", "-xzOf", layer_file, "var/lib/cincinnati-graph-data/blocked-edges/4.20.7.yaml"});
  EXPECT_EQ(content.out, "to: 4.20.7\nfrom: .*\n");
  auto inspected = run_command({"skopeo", "inspect", "--config", "--tls-verify=false",
                                "docker://" + dest.host() + "/openshift/graph-image:latest"});
  ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
  EXPECT_NE(inspected.out.find("exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data"),
            std::string::npos)
      << inspected.out;

  std::string service = read_file(out + "/updateService.yaml");
  EXPECT_NE(
      service.find(fmt::format("graphDataImage: {}/openshift/graph-image@{}", dest.host(), sha256_digest(manifest))),
      std::string::npos)
      << service;
  EXPECT_NE(service.find(fmt::format("releases: {}/openshift/release\n", dest.host())), std::string::npos) << service;

  auto again = run_fastsync(args);
  ASSERT_EQ(again.exit_code, 0) << again.err << again.out;
  EXPECT_EQ(skopeo_raw_manifest(dest, "openshift/graph-image:latest"), manifest) << "byte-stable";
  EXPECT_NE(again.out.find("0 copied"), std::string::npos) << again.out;
}

// Two architectures in one file: each one's releases from its own graph,
// both mirrored and tagged in one run.
TEST_F(ImageSets, SeveralArchitecturesInOneRun) {
  FixtureArgs arm;
  arm.components = 6;
  arm.arch = "aarch64";
  arm.seed = 11;
  auto arm_release = push_fixture(source_, arm);
  GraphServer graph(dir_, {{"stable-4.20", graph_json({{"4.20.8", release_.release.digest}}, {})},
                           {"stable-4.20@arm64", graph_json({{"4.20.8", arm_release.release.digest}}, {})}});
  std::string config = dir_.file("arches.yaml");
  write_file(config, R"(kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    architectures: [amd64, arm64]
    channels:
    - name: stable-4.20
)");
  TestRegistry dest;
  auto r = run_fastsync({"--config", config, "--dest-registry", dest.host(), "--pull-secret", secret_,
                         "--source-registry", source_.host() + "/openshift-release-dev/ocp-release", "--graph-url",
                         graph.url(), "--out-dir", dir_.file("arches-out"), "--no-signatures", "--insecure", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto problems = check_mirror(source_, dest, "openshift/release", release_);
  EXPECT_TRUE(problems.empty()) << problems.front();
  problems = check_mirror(source_, dest, "openshift/release", arm_release);
  EXPECT_TRUE(problems.empty()) << problems.front();
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

// A dry run lists every image of the set by section and what is blocked,
// asks the destination (read-only) what it lacks, and writes mapping.txt
// (source=destination, as oc-mirror v2 does) and missing.txt (what the
// destination lacks); it writes nothing to any registry.
TEST_F(ImageSets, ADryRunWritesTheMappingAndWhatTheDestinationLacksAndPushesNothing) {
  const auto& blocked = release_.components.at(3);
  std::string entry = fmt::format("{}/{}@{}", source_.host(), blocked.repository, blocked.digest);
  TestRegistry dest;
  // Another tool, or an earlier run, left the tagged additional image there.
  ASSERT_EQ(skopeo_copy(source_, "example/tool:4.20.8-x86_64", dest, "example/tool:4.20.8-x86_64"), "");
  auto writes = [&dest] {
    std::size_t n = 0;
    for (const auto& r : dest.requests()) n += r.method == "PUT" || r.method == "POST" || r.method == "PATCH";
    return n;
  };
  std::size_t written_before = writes();
  std::string out = dir_.file("dry");
  auto r = run_fastsync({"--config", write_config(fmt::format("  blockedImages:\n  - name: {}\n", entry)),
                         "--dest-registry", dest.host(), "--pull-secret", secret_, "--source-registry",
                         source_.host() + "/openshift-release-dev/ocp-release", "--graph-url", graph_->url(),
                         "--out-dir", out, "--no-signatures", "--insecure", "--dry-run"});
  // The release cannot be tagged (its component is blocked): a run would exit 1, and so does its dry run.
  ASSERT_EQ(r.exit_code, 1) << r.err << r.out;
  EXPECT_NE(r.out.find(fmt::format("[cannot be mirrored: not tagged: its component {} is blocked", blocked.name)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(fmt::format("blockedImages:\n  blocked  {}", entry)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fmt::format("additionalImages:\n  {}/example/tool:4.20.8-x86_64", source_.host())),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(fmt::format("{}/example/tool:4.20.8-x86_64  [already there]", dest.host())), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(fmt::format("{} images planned ({} missing at the destination, 1 already there, 1 cannot be "
                                   "mirrored), 1 blocked",
                                   release_.components.size() + 2, release_.components.size())),
            std::string::npos)
      << r.out;
  auto lines_of = [](const std::string& text) {
    std::set<std::string> lines;
    for (std::size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
      lines.insert(text.substr(at, end - at));
    }
    return lines;
  };
  std::string tool_line = fmt::format("docker://{0}/example/tool@{1}=docker://{2}/example/tool:4.20.8-x86_64",
                                      source_.host(), tool_.release.digest, dest.host());
  std::string release_line =
      fmt::format("docker://{0}/openshift-release-dev/ocp-release@{1}=docker://{2}/openshift/release:4.20.8-x86_64",
                  source_.host(), release_.release.digest, dest.host());
  std::set<std::string> missing = {
      fmt::format("docker://{0}/example/tool-parts@{1}=docker://{2}/example/tool-parts@{1}", source_.host(),
                  part().digest, dest.host())};
  for (const auto& c : release_.components) {
    if (c.digest == blocked.digest) continue;
    missing.insert(fmt::format("docker://{}/{}@{}=docker://{}/openshift/release:4.20.8-x86_64-{}", source_.host(),
                               c.repository, c.digest, dest.host(), c.name));
  }
  EXPECT_EQ(lines_of(read_file(out + "/missing.txt")), missing);
  auto all = missing;
  all.insert(tool_line);
  all.insert(release_line);
  EXPECT_EQ(lines_of(read_file(out + "/mapping.txt")), all);
  EXPECT_EQ(writes(), written_before);
  EXPECT_EQ(catalog(dest), std::vector<std::string>{"example/tool"});
}

// A flag that chooses what the file chooses: one line, exit 2, nothing pushed.
TEST_F(ImageSets, AConflictingFlagIsOneLineAndNothingMoves) {
  TestRegistry dest;
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
