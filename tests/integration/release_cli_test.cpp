// Release resolution through the fastsync binary against real registries
// holding generated releases: dry run, multi-arch, layer overrides and
// whiteouts, malformed image-references, version problems.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

class ReleaseCli : public ::testing::Test {
 protected:
  TestRegistry source;
  TestRegistry dest;
  TempDir dir{"fastsync-release-cli"};
  std::string secret = write_pull_secret(dir.file("pull-secret.json"), {});

  std::vector<std::string> args(const std::string& version = "4.20.8", const std::string& arch = "x86_64") {
    return {"--version",       version,        "--arch",           arch,
            "--source-registry", source.host() + "/openshift-release-dev/ocp-release",
            "--dest-registry", dest.host(),    "--pull-secret",    secret,
            "--quiet",         "--retry-delay-ms", "20"};
  }
  RunResult dry_run(std::vector<std::string> extra = {}, const std::string& version = "4.20.8",
                    const std::string& arch = "x86_64") {
    auto a = args(version, arch);
    a.push_back("--dry-run");
    a.insert(a.end(), extra.begin(), extra.end());
    return run_fastsync(a);
  }
  std::string only_line(const std::string& err) {
    std::string trimmed = err;
    while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
    EXPECT_EQ(trimmed.find('\n'), std::string::npos) << "expected one line, got:\n" << err;
    return trimmed;
  }
};

TEST_F(ReleaseCli, DryRunPlansEveryComponentWithItsDigestAndWritesNothing) {
  FixtureArgs fa;
  fa.refs_host = "quay.io";  // image-references names quay.io, as a real release does
  auto fixture = push_fixture(source, fa);
  auto r = dry_run({"--report", dir.file("report.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  rapidjson::Document report;
  std::string json = read_file(dir.file("report.json"));
  report.Parse(json.c_str());
  ASSERT_FALSE(report.HasParseError()) << json;
  EXPECT_STREQ(report["release"]["digest"].GetString(), fixture.release.digest.c_str());
  EXPECT_STREQ(report["release"]["status"].GetString(), "planned");
  const auto& images = report["images"];
  ASSERT_EQ(images.Size(), fixture.components.size());
  for (rapidjson::SizeType i = 0; i < images.Size(); ++i) {
    const auto& want = fixture.components[i];
    EXPECT_EQ(images[i]["name"].GetString(), want.name);
    EXPECT_EQ(images[i]["digest"].GetString(), want.digest);
    // quay.io in image-references, pulled from the --source-registry host instead.
    EXPECT_EQ(images[i]["source"].GetString(), source.host() + "/" + want.repository + "@" + want.digest);
    EXPECT_EQ(images[i]["dest"].GetString(), dest.host() + "/openshift/release:4.20.8-x86_64-" + want.name);
    EXPECT_STREQ(images[i]["status"].GetString(), "planned");
    EXPECT_NE(r.out.find(want.name), std::string::npos);
  }
  EXPECT_TRUE(report["summary"]["dry_run"].GetBool());
  // Nothing at the destination, and it was not even contacted.
  EXPECT_TRUE(catalog(dest).empty());
  for (const auto& req : dest.requests()) EXPECT_NE(req.user_agent.rfind("fastsync", 0), 0u) << req.method << " " << req.uri;
}

TEST_F(ReleaseCli, MultiArchReleaseIsReadThroughItsList) {
  FixtureArgs fa;
  fa.arch = "multi";
  fa.components = 6;
  auto fixture = push_fixture(source, fa);
  for (std::string platform : {"", "linux/arm64"}) {
    std::vector<std::string> extra = {"--report", dir.file("multi.json")};
    if (!platform.empty()) {
      extra.push_back("--release-platform");
      extra.push_back(platform);
    }
    auto r = dry_run(extra, "4.20.8", "multi");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    rapidjson::Document report;
    std::string json = read_file(dir.file("multi.json"));
    report.Parse(json.c_str());
    EXPECT_EQ(report["release"]["digest"].GetString(), fixture.release.digest);  // the list itself is mirrored
    ASSERT_EQ(report["images"].Size(), 6u);
    for (rapidjson::SizeType i = 0; i < 6; ++i) {
      EXPECT_EQ(report["images"][i]["digest"].GetString(), fixture.components[i].digest);
      EXPECT_EQ(fixture.components[i].children.size(), 2u);
    }
  }
  auto missing = dry_run({"--release-platform", "linux/s390x"}, "4.20.8", "multi");
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(only_line(missing.err).find("no linux/s390x image"), std::string::npos) << missing.err;
}

TEST_F(ReleaseCli, ALaterLayerOverridesAnEarlierImageReferences) {
  FixtureArgs fa;
  fa.layout = "override";
  auto fixture = push_fixture(source, fa);
  auto r = dry_run({"--report", dir.file("report.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("stale-component"), std::string::npos) << r.out;
  rapidjson::Document report;
  std::string json = read_file(dir.file("report.json"));
  report.Parse(json.c_str());
  EXPECT_EQ(report["images"].Size(), fixture.components.size());
}

class HiddenImageReferences : public ReleaseCli, public ::testing::WithParamInterface<std::string> {};

TEST_P(HiddenImageReferences, IsAClearError) {
  FixtureArgs fa;
  fa.layout = GetParam();
  fa.release_only = true;
  (void)push_fixture(source, fa);
  auto r = dry_run();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(only_line(r.err).find("has no release-manifests/image-references"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Layouts, HiddenImageReferences, ::testing::Values("whiteout", "opaque"));

struct Malformed {
  std::string label;
  std::string content;
  std::string expected;
};

void PrintTo(const Malformed& m, std::ostream* os) { *os << m.label; }

class MalformedImageReferences : public ReleaseCli, public ::testing::WithParamInterface<Malformed> {};

TEST_P(MalformedImageReferences, FailWithOneLineNamingTheProblemAndPushNothing) {
  write_file(dir.file("refs.json"), GetParam().content);
  FixtureArgs fa;
  fa.release_only = true;
  fa.image_references_file = dir.file("refs.json");
  (void)push_fixture(source, fa);
  auto r = run_fastsync(args());  // a real run, not a dry run: it must stop before writing anything
  EXPECT_EQ(r.exit_code, 3);
  std::string line = only_line(r.err);
  EXPECT_NE(line.find(GetParam().expected), std::string::npos) << line;
  EXPECT_TRUE(catalog(dest).empty());
}

const std::string kPinned = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + std::string(64, 'c');

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedImageReferences,
    ::testing::Values(
        Malformed{"NotJson", "this is not json", "image-references: not valid JSON"},
        Malformed{"WrongKind", R"({"kind":"ConfigMap","spec":{"tags":[]}})", "kind is \"ConfigMap\", expected \"ImageStream\""},
        Malformed{"TagWithoutDigest",
                  R"({"kind":"ImageStream","spec":{"tags":[{"name":"etcd","from":{"kind":"DockerImage","name":"quay.io/ocp/etcd:4.20"}}]}})",
                  "tag \"etcd\": from.name \"quay.io/ocp/etcd:4.20\" is not pinned by digest"},
        Malformed{"DuplicateNames",
                  R"({"kind":"ImageStream","spec":{"tags":[{"name":"cli","from":{"kind":"DockerImage","name":")" + kPinned +
                      R"("}},{"name":"cli","from":{"kind":"DockerImage","name":")" + kPinned + R"("}}]}})",
                  "tag \"cli\" appears more than once"},
        Malformed{"Empty", R"({"kind":"ImageStream","spec":{"tags":[]}})", "spec.tags is empty"}),
    [](const ::testing::TestParamInfo<Malformed>& param_info) { return param_info.param.label; });

TEST_F(ReleaseCli, MetadataVersionMustMatch) {
  FixtureArgs fa;
  fa.release_only = true;
  fa.metadata_version = "4.20.7";
  (void)push_fixture(source, fa);
  auto r = dry_run();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(only_line(r.err).find("release-metadata: version is \"4.20.7\", but --version is 4.20.8"), std::string::npos)
      << r.err;
}

TEST_F(ReleaseCli, AnUnknownVersionNamesTheRegistryAndRepository) {
  FixtureArgs fa;
  fa.release_only = true;
  (void)push_fixture(source, fa);
  auto r = run_fastsync(args("4.20.99"));
  EXPECT_EQ(r.exit_code, 3);
  std::string line = only_line(r.err);
  EXPECT_NE(line.find("release 4.20.99-x86_64 not found at " + source.host() + "/openshift-release-dev/ocp-release"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("MANIFEST_UNKNOWN"), std::string::npos) << line;  // the registry's own reason
  EXPECT_TRUE(catalog(dest).empty());
}

}  // namespace
}  // namespace fastsync::testing
