// The whole mirror through the fastsync binary, between real registries, with
// results checked by skopeo and the curl CLI: a full copy into a Bearer-auth
// destination, one GET per unique blob, skips, reruns, and interruption.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "registry/core/digest.h"
#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

const std::string kRepo = "openshift/release";

// `source_host`: where the source is reached (the registry itself, or a proxy in front of it).
std::vector<std::string> mirror_args(const std::string& source_host, const TestRegistry& dest,
                                     const std::string& secret) {
  return {"--version",
          "4.20.8",
          "--source-registry",
          source_host + "/openshift-release-dev/ocp-release",
          "--dest-registry",
          dest.host(),
          "--pull-secret",
          secret,
          "--quiet",
          "--retry-delay-ms",
          "20"};
}

std::vector<std::string> mirror_args(const TestRegistry& source, const TestRegistry& dest, const std::string& secret) {
  return mirror_args(source.host(), dest, secret);
}

std::map<std::string, std::string> statuses(const rapidjson::Document& report) {
  std::map<std::string, std::string> out;
  for (const auto& img : report["images"].GetArray()) out[img["name"].GetString()] = img["status"].GetString();
  return out;
}

TEST(MirrorCli, FullMirrorIntoABearerAuthDestination) {
  TestRegistry source;
  TestRegistryOptions token;
  token.token_users = {"mirror-bot:s3cret-pass"};
  TestRegistry dest(token);
  TempDir dir("fastsync-mirror");
  FixtureArgs fa;
  fa.components = 14;  // includes a manifest list (5), rhel-coreos (8) and the tiny-layer image (9)
  fa.scale = 0.02;
  auto fixture = push_fixture(source, fa);
  std::string secret = write_pull_secret(dir.file("ps.json"), {{dest.host(), "mirror-bot", "s3cret-pass"}});

  auto args = mirror_args(source, dest, secret);
  args.insert(args.end(), {"--report", dir.file("report.json"), "--idms-out", dir.file("idms.yaml")});
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // Independently: every tag, digest, manifest byte, list child and blob.
  auto problems = check_mirror(source, dest, kRepo, fixture, "mirror-bot:s3cret-pass");
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();

  // Every unique blob was fetched from the source exactly once.
  std::map<std::string, int> gets;
  for (const auto& d : source.blob_gets()) gets[d]++;
  auto expected = fixture.all_blobs();
  EXPECT_EQ(gets.size(), expected.size());
  for (const auto& d : expected) EXPECT_EQ(gets[d], 1) << d;

  auto report = load_json(dir.file("report.json"));
  EXPECT_EQ(report["summary"]["copied"].GetUint64(), fixture.components.size() + 1);
  EXPECT_EQ(report["summary"]["blobs"]["unique"].GetUint64(), fixture.unique_blobs);
  EXPECT_EQ(report["summary"]["bytes_moved"].GetUint64(), fixture.unique_blob_bytes);
  EXPECT_STREQ(report["release"]["status"].GetString(), "copied");
  for (const auto& [name, status] : statuses(report)) EXPECT_EQ(status, "copied") << name;

  // The summary and the mirror set name what users apply.
  EXPECT_NE(r.out.find("done"), std::string::npos) << r.out;
  std::string idms = read_file(dir.file("idms.yaml"));
  EXPECT_NE(idms.find("kind: ImageDigestMirrorSet"), std::string::npos) << idms;
  EXPECT_NE(idms.find("source: quay.io/openshift-release-dev/ocp-v4.0-art-dev"), std::string::npos) << idms;
  EXPECT_NE(idms.find("- " + dest.host() + "/" + kRepo), std::string::npos) << idms;
  EXPECT_NE(r.out.find("imageDigestSources:"), std::string::npos);
  // Never a credential in what we print or write.
  EXPECT_EQ((r.out + r.err + read_file(dir.file("report.json"))).find("s3cret-pass"), std::string::npos);
}

TEST(MirrorCli, MirroredImagesPullWithPodman) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-podman");
  FixtureArgs fa;
  fa.components = 10;
  auto fixture = push_fixture(source, fa);
  auto r = run_fastsync(mirror_args(source, dest, write_pull_secret(dir.file("ps.json"), {})));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // podman checks every layer against the config's diff_ids on pull.
  for (const std::string name : {"tools", "cluster-version-operator"}) {
    auto pull =
        run_command({"podman", "--root", dir.file("storage"), "--runroot", dir.file("run"), "--storage-driver", "vfs",
                     "pull", "--quiet", "--tls-verify=false", dest.host() + "/" + kRepo + ":4.20.8-x86_64-" + name});
    EXPECT_EQ(pull.exit_code, 0) << name << ": " << pull.err;
  }
}

TEST(MirrorCli, ADestinationHoldingHalfTheImagesGetsOnlyTheRest) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-half");
  FixtureArgs fa;
  fa.components = 12;
  auto fixture = push_fixture(source, fa);
  // Put half the components there with skopeo; one of them under another tag.
  std::set<std::string> preloaded;
  for (std::size_t i = 0; i < fixture.components.size(); i += 2) {
    const auto& c = fixture.components[i];
    std::string tag = i == 4 ? "some-other-tag" : "4.20.8-x86_64-" + c.name;
    ASSERT_EQ(skopeo_copy(source, c.repository + "@" + c.digest, dest, kRepo + ":" + tag), "");
    preloaded.insert(c.name);
  }
  std::set<std::string> preloaded_blobs;
  for (const auto& c : fixture.components) {
    if (preloaded.count(c.name)) preloaded_blobs.insert(c.blobs.begin(), c.blobs.end());
  }
  std::size_t gets_before = source.blob_gets().size();

  auto args = mirror_args(source, dest, write_pull_secret(dir.file("ps.json"), {}));
  args.push_back("--report");
  args.push_back(dir.file("report.json"));
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto report = load_json(dir.file("report.json"));
  for (const auto& [name, status] : statuses(report)) {
    EXPECT_EQ(status, preloaded.count(name) ? "skipped" : "copied") << name;
  }
  // The skipped image under another tag got its expected tag too.
  EXPECT_TRUE(check_mirror(source, dest, kRepo, fixture).empty());
  // Only blobs that were missing were fetched.
  auto gets = source.blob_gets();
  std::vector<std::string> new_gets(gets.begin() + static_cast<std::ptrdiff_t>(gets_before), gets.end());
  std::set<std::string> needed;
  for (const auto& c : fixture.components) {
    if (!preloaded.count(c.name)) needed.insert(c.blobs.begin(), c.blobs.end());
  }
  needed.insert(fixture.release.blobs.begin(), fixture.release.blobs.end());
  for (const auto& d : new_gets) {
    EXPECT_TRUE(needed.count(d) && !preloaded_blobs.count(d)) << "fetched a blob the destination had: " << d;
  }
}

// A repository with no tags yet costs the destination two requests per blob:
// the mount from the repository itself answers "there" (201) or opens the
// upload (202), which the PUT then uses; no HEADs. Blobs already there
// without a tag (an image pushed by digest, as an interrupted run leaves
// them) are found that way and not sent again.
TEST(MirrorCli, IntoARepositoryWithoutTagsEachBlobCostsTwoRequestsAndNoneIsSentTwice) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-fresh-repo");
  FixtureArgs fa;
  fa.components = 10;
  auto fixture = push_fixture(source, fa);
  const auto& preloaded = fixture.components[1];
  ASSERT_EQ(skopeo_copy(source, preloaded.repository + "@" + preloaded.digest, dest, kRepo + "@" + preloaded.digest),
            "");
  std::set<std::string> there(preloaded.blobs.begin(), preloaded.blobs.end());
  std::set<std::string> unique;
  for (const auto& c : fixture.components) unique.insert(c.blobs.begin(), c.blobs.end());
  unique.insert(fixture.release.blobs.begin(), fixture.release.blobs.end());
  std::size_t shared = 0;  // blobs of other images that the preloaded one brought
  for (const auto& c : fixture.components) {
    if (c.name == preloaded.name) continue;
    for (const auto& b : c.blobs) shared += there.count(b);
  }
  ASSERT_GT(shared, 0u) << "the fixture's images share no layer: the case is not exercised";
  auto requests_before = dest.requests().size();

  // The preloaded image needs nothing from the source and is tagged at once;
  // the others wait for their manifests from a source 300 ms away. So our own
  // tag lands before any blob is probed, every time: the run must still judge
  // the repository as it found it (CI under load once saw that tag and HEADed all).
  Process far({tool_path("fastsync-wanproxy"), "--target", source.host(), "--delay-ms", "150"}, dir.file("wan.log"));
  std::string far_host = "127.0.0.1:" + far.wait_ready().at("port");
  auto r = run_fastsync(mirror_args(far_host, dest, write_pull_secret(dir.file("ps.json"), {})));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto problems = check_mirror(source, dest, kRepo, fixture);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();

  // Blob HEADs only where stage 1 looks for the release image's layers (a rerun
  // reads those from the destination), once each.
  std::map<std::string, int> heads;
  std::size_t mounts = 0;
  std::set<std::string> put;
  auto requests = dest.requests();
  for (std::size_t i = requests_before; i < requests.size(); ++i) {
    const auto& q = requests[i];
    if (q.method == "HEAD" && q.uri.find("/blobs/") != std::string::npos) {
      ++heads[q.uri.substr(q.uri.find("/blobs/") + 7)];
    }
    if (q.method == "POST" && q.uri.find("mount=") != std::string::npos) ++mounts;
    if (q.method == "PUT" && q.uri.find("digest=") != std::string::npos) {
      std::string digest = q.uri.substr(q.uri.find("digest=") + 7);
      digest = digest.substr(0, digest.find('&'));
      if (auto colon = digest.find("%3A"); colon != std::string::npos) digest.replace(colon, 3, ":");
      if (auto colon = digest.find("%3a"); colon != std::string::npos) digest.replace(colon, 3, ":");
      EXPECT_FALSE(there.count(digest)) << "sent again: " << digest;
      EXPECT_TRUE(put.insert(digest).second) << "sent twice: " << digest;
    }
  }
  std::size_t tag_list = requests.size(), first_tag = requests.size();
  for (std::size_t i = requests_before; i < requests.size(); ++i) {
    const auto& q = requests[i];
    if (q.method == "GET" && q.uri.find("/tags/list") != std::string::npos) tag_list = std::min(tag_list, i);
    bool tag_put = q.method == "PUT" && q.uri.find("/manifests/") != std::string::npos &&
                   q.uri.find("/manifests/sha256:") == std::string::npos;
    if (tag_put) first_tag = std::min(first_tag, i);
  }
  ASSERT_LT(first_tag, requests.size()) << "no tag was pushed";
  EXPECT_LT(tag_list, first_tag) << "the repository's tags were asked for after this run tagged it";
  const auto& release_blobs = fixture.release.blobs;
  for (const auto& [digest, n] : heads) {
    EXPECT_NE(std::find(release_blobs.begin(), release_blobs.end(), digest), release_blobs.end())
        << "HEAD for " << digest << ", not a layer of the release image";
    EXPECT_EQ(n, 1) << digest;
  }
  std::size_t missing = 0;
  for (const auto& b : unique) missing += !there.count(b);
  EXPECT_EQ(put.size(), missing);
  EXPECT_LE(mounts, unique.size());  // one per blob of the images it copied, at most
  EXPECT_GE(mounts, missing);
}

TEST(MirrorCli, ARerunWithEverythingPresentPullsNothing) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-rerun");
  FixtureArgs fa;
  fa.components = 10;
  auto fixture = push_fixture(source, fa);
  auto args = mirror_args(source, dest, write_pull_secret(dir.file("ps.json"), {}));
  ASSERT_EQ(run_fastsync(args).exit_code, 0);
  std::size_t gets_before = source.blob_gets().size();
  auto requests_before = source.requests().size();
  auto dest_before = dest.requests().size();

  args.push_back("--report");
  args.push_back(dir.file("report.json"));
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto report = load_json(dir.file("report.json"));
  EXPECT_EQ(report["summary"]["skipped"].GetUint64(), fixture.components.size() + 1);
  EXPECT_EQ(report["summary"]["copied"].GetUint64(), 0u);
  EXPECT_EQ(source.blob_gets().size(), gets_before) << "a rerun fetched blobs";
  // Resolving the release is all the source sees: ping, the release manifest;
  // besides, whether each image has cosign signatures, which it does not: each
  // source repository's tags are listed once (they fit in one page), so no
  // image's .sig tag needs a HEAD; and the referrers API.
  std::size_t manifest_gets = 0, signature_heads = 0;
  std::map<std::string, int> tag_lists;  // repository -> requests
  auto requests = source.requests();
  for (std::size_t i = requests_before; i < requests.size(); ++i) {
    const auto& q = requests[i];
    if (q.method == "GET" && q.uri.find("/manifests/") != std::string::npos) {
      ++manifest_gets;
    } else if (q.method == "HEAD" && q.uri.find(".sig") != std::string::npos) {
      ++signature_heads;
    } else if (auto at = q.uri.find("/tags/list"); at != std::string::npos) {
      ++tag_lists[q.uri.substr(0, at)];
    } else if (q.uri.find("/referrers/") == std::string::npos && q.uri != "/v2/") {
      ADD_FAILURE() << q.method << " " << q.uri;
    }
  }
  EXPECT_EQ(manifest_gets, 1u);
  EXPECT_EQ(signature_heads, 0u);
  EXPECT_EQ(tag_lists.size(), 2u) << ::testing::PrintToString(
      tag_lists);  // the release's and the components' repositories
  for (const auto& [repository, n] : tag_lists) EXPECT_EQ(n, 1) << repository;
  // The destination: one manifest request per image, by its tag, which settles
  // both that the image is there and that it is tagged (and gives the bytes
  // the signature check reads); besides, stage 1's HEAD of the release by
  // digest (to read its layers there rather than at the source). Nothing is pushed.
  std::map<std::string, int> asked;  // reference -> requests
  auto dest_requests = dest.requests();
  for (std::size_t i = dest_before; i < dest_requests.size(); ++i) {
    const auto& q = dest_requests[i];
    EXPECT_NE(q.method, "PUT") << q.uri;
    if (auto at = q.uri.find("/manifests/"); at != std::string::npos) ++asked[q.uri.substr(at + 11)];
  }
  std::size_t by_tag = 0, by_digest = 0;
  for (const auto& [reference, n] : asked) {
    EXPECT_EQ(n, 1) << reference << " asked " << n << " times";
    (reference.starts_with("sha256:") ? by_digest : by_tag) += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(by_tag, fixture.components.size() + 1) << ::testing::PrintToString(asked);
  EXPECT_EQ(by_digest, 1u) << ::testing::PrintToString(asked);
  EXPECT_EQ(asked.count("4.20.8-x86_64"), 1u) << "the release image was not asked by its tag";
  EXPECT_NE(r.out.find("0 copied, " + std::to_string(fixture.components.size() + 1) + " skipped"), std::string::npos)
      << r.out;

  // The older ImageContentSourcePolicy, for clusters before 4.13.
  args.push_back("--icsp");
  auto icsp = run_fastsync(args);
  ASSERT_EQ(icsp.exit_code, 0) << icsp.err;
  EXPECT_NE(icsp.out.find("kind: ImageContentSourcePolicy"), std::string::npos) << icsp.out;
  EXPECT_NE(icsp.out.find("repositoryDigestMirrors:"), std::string::npos) << icsp.out;
  EXPECT_EQ(icsp.out.find("kind: ImageDigestMirrorSet"), std::string::npos) << icsp.out;
}

// Waits (by reading the log, no sleeping on a guess) until the destination has
// completed `count` blob uploads.
void wait_for_blob_puts(const TestRegistry& dest, std::size_t count, Process& fastsync) {
  while (fastsync.running()) {
    std::size_t puts = 0;
    for (const auto& r : dest.requests())
      puts += r.method == "PUT" && r.uri.find("/blobs/uploads/") != std::string::npos;
    if (puts >= count) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling interval, not a synchronisation guess
  }
}

class Interrupted : public ::testing::TestWithParam<int> {};

TEST_P(Interrupted, StopsCleanlyAndARerunCompletesTheSameMirror) {
  const int sig = GetParam();
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-interrupt");
  FixtureArgs fa;
  fa.components = 16;
  fa.scale = 0.05;
  auto fixture = push_fixture(source, fa);
  // The source sits behind a slow link so the run is surely still going when the signal lands.
  Process slow({tool_path("fastsync-wanproxy"), "--target", source.host(), "--delay-ms", "5", "--rate-mbps", "4"},
               dir.file("proxy.log"));
  std::string slow_host = "127.0.0.1:" + slow.wait_ready().at("port");
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  std::vector<std::string> argv = {tool_path("fastsync"),
                                   "--version",
                                   "4.20.8",
                                   "--source-registry",
                                   slow_host + "/openshift-release-dev/ocp-release",
                                   "--dest-registry",
                                   dest.host(),
                                   "--pull-secret",
                                   secret,
                                   "--quiet",
                                   "--blob-concurrency",
                                   "4",
                                   "--no-signatures"};
  Process run(argv, dir.file("run.err"), {}, dir.file("run.out"));
  wait_for_blob_puts(dest, 3, run);
  ASSERT_TRUE(run.running()) << "finished before it could be interrupted";
  run.signal(sig);
  int code = run.wait();
  EXPECT_EQ(code, 128 + sig) << read_file(dir.file("run.err"));
  std::string out = read_file(dir.file("run.out"));
  EXPECT_NE(out.find(sig == SIGINT ? "stopped: interrupted by SIGINT" : "stopped: terminated by SIGTERM"),
            std::string::npos)
      << out;
  // Nothing half-done: no tag names a manifest whose blobs are not all there,
  // and the release tag is not there at all.
  auto dangling = check_no_dangling_manifests(dest, kRepo);
  EXPECT_TRUE(dangling.empty()) << dangling.front();
  auto tags = list_tags(dest, kRepo);
  EXPECT_EQ(std::count(tags.begin(), tags.end(), "4.20.8-x86_64"), 0);
  EXPECT_LT(tags.size(), fixture.components.size());

  // A rerun (without the slow link) finishes the job, with the same result as an uninterrupted run.
  auto rerun = run_fastsync(mirror_args(source, dest, secret));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  auto problems = check_mirror(source, dest, kRepo, fixture);
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(list_tags(dest, kRepo).size(), fixture.components.size() + 1);
}

INSTANTIATE_TEST_SUITE_P(Signals, Interrupted, ::testing::Values(SIGINT, SIGTERM),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return std::string(param_info.param == SIGINT ? "SIGINT" : "SIGTERM");
                         });

}  // namespace
}  // namespace fastsync::testing
