// Air gap: --to-dir writes an archive, --from-dir mirrors it into a registry.
// Real registries and real files; archives checked with tar and skopeo
// (which share no code with fastsync), mirrors checked by digest.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/mount.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "registry/core/digest.h"
#include "tests/support/fronts.h"
#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

namespace fs = std::filesystem;
const std::string kRepo = "openshift/release";

struct ArchiveEntry {
  std::string digest;
  std::uint64_t size = 0;
  int volume = 0;
  std::uint64_t offset = 0;
};

struct ArchiveView {
  rapidjson::Document doc;
  explicit ArchiveView(const std::string& dir) {
    std::string text = read_file(dir + "/fastsync-archive.json");
    doc.Parse(text.c_str());
  }
  bool complete() const { return doc["complete"].GetBool(); }
  std::vector<ArchiveEntry> blobs() const {
    std::vector<ArchiveEntry> out;
    for (const auto& b : doc["blobs"].GetArray()) {
      out.push_back({b["digest"].GetString(), b["size"].GetUint64(), b["volume"].GetInt(), b["offset"].GetUint64()});
    }
    return out;
  }
  std::set<std::string> blob_digests() const {
    std::set<std::string> out;
    for (const auto& b : blobs()) out.insert(b.digest);
    return out;
  }
  std::size_t relies_on() const { return doc["relies_on"].GetArray().Size(); }
  std::size_t volumes() const { return doc["volumes"].GetArray().Size(); }
};

std::string file_sha256(const std::string& path) { return sha256_digest(read_file(path)); }

struct Airgap {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir{"fastsync-airgap"};
  FixtureRelease fixture;
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  explicit Airgap(int components = 12, double scale = 0.05) {
    FixtureArgs fa;
    fa.components = components;
    fa.scale = scale;
    fixture = push_fixture(source, fa);
  }
  std::vector<std::string> to_dir(const std::string& archive, std::vector<std::string> extra = {},
                                  const std::string& version = "4.20.8", const std::string& source_host = {}) {
    std::vector<std::string> a = {
        "--version",
        version,
        "--source-registry",
        (source_host.empty() ? source.host() : source_host) + "/openshift-release-dev/ocp-release",
        "--to-dir",
        archive,
        "--pull-secret",
        secret,
        "--quiet",
        "--retry-delay-ms",
        "20"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::vector<std::string> from_dir(const std::string& archive, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"--from-dir", archive,   "--dest-registry",  dest.host(), "--pull-secret",
                                  secret,       "--quiet", "--retry-delay-ms", "20"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void expect_exact(const FixtureRelease& f) {
    auto problems = check_mirror(source, dest, kRepo, f);
    EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front();
  }
};

TEST(Airgap, ToDirThenFromDirMirrorsExactlyAndTheVolumesAreAnOciLayout) {
  Airgap a;
  std::string archive = a.dir.file("archive");
  auto w = run_fastsync(a.to_dir(archive, {"--archive-size", "4MiB"}));
  ASSERT_EQ(w.exit_code, 0) << w.out << w.err;
  EXPECT_NE(w.out.find("--from-dir " + archive), std::string::npos) << "the next step is told: " << w.out;

  ArchiveView view(archive);
  EXPECT_TRUE(view.complete());
  EXPECT_GE(view.volumes(), 3u) << "4 MiB volumes should split a ~17 MB release";
  // Every volume is at most 4 MiB, unless it carries one blob larger than that
  // (announced), and its size and SHA-256 are as the index says.
  std::map<int, std::size_t> entries_per_volume;
  for (const auto& b : view.blobs()) ++entries_per_volume[b.volume];
  int i = 0;
  for (const auto& v : view.doc["volumes"].GetArray()) {
    ++i;
    std::string path = archive + "/" + v["name"].GetString();
    EXPECT_EQ(fs::file_size(path), v["size"].GetUint64()) << path;
    EXPECT_EQ(file_sha256(path), v["sha256"].GetString()) << path;
    if (fs::file_size(path) > (4u << 20)) {
      EXPECT_EQ(entries_per_volume[i], 1u) << path << " is over the size and holds more than one large blob";
      EXPECT_NE(w.err.find("gets volume " + std::string(v["name"].GetString()) + " of its own"), std::string::npos)
          << w.err;
    }
  }
  // Each blob is where the index says, as its bytes.
  for (const auto& b : view.blobs()) {
    std::string volume = read_file(archive + "/" + fmt::format("fastsync-{:06d}.tar", b.volume));
    EXPECT_EQ(sha256_digest(std::string_view(volume).substr(b.offset, b.size)), b.digest);
  }

  // Extracted with tar, the volumes are an OCI layout that skopeo reads by ref name.
  std::string layout = a.dir.file("layout");
  fs::create_directories(layout);
  for (const auto& v : view.doc["volumes"].GetArray()) {
    auto r = run_command({"tar", "-xf", archive + "/" + v["name"].GetString(), "-C", layout});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto raw = run_command({"skopeo", "inspect", "--raw", "oci:" + layout + ":4.20.8-x86_64"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(sha256_digest(raw.out), a.fixture.release.digest);
  for (const auto& c : a.fixture.components) {
    auto m = run_command({"skopeo", "inspect", "--raw", "oci:" + layout + ":4.20.8-x86_64-" + c.name});
    EXPECT_EQ(sha256_digest(m.out), c.digest) << c.name << m.err;
    if (c.media_type == "application/vnd.oci.image.manifest.v1+json") {
      // OCI images also inspect fully (config, layers).
      auto full = run_command({"skopeo", "inspect", "oci:" + layout + ":4.20.8-x86_64-" + c.name});
      EXPECT_EQ(full.exit_code, 0) << c.name << full.err;
    }
  }
  // ...and copies out of it keep their digests.
  auto copied =
      run_command({"skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false", "oci:" + layout + ":4.20.8-x86_64",
                   "docker://" + a.dest.host() + "/via/skopeo:4.20.8-x86_64"});
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(a.dest, "via/skopeo:4.20.8-x86_64")), a.fixture.release.digest);

  // The far side: no --version needed, the archive says.
  auto r = run_fastsync(a.from_dir(archive));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  a.expect_exact(a.fixture);
  EXPECT_NE(r.out.find("source: quay.io/openshift-release-dev/ocp-v4.0-art-dev"), std::string::npos) << r.out;
  // A rerun finds everything there.
  auto again = run_fastsync(a.from_dir(archive, {"--report", a.dir.file("again.json")}));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("0 copied"), std::string::npos) << again.out;
}

TEST(Airgap, SinceCarriesOnlyNewBlobsAndNeedsTheEarlierArchiveAtTheFarSide) {
  Airgap a;
  FixtureArgs next;
  next.components = 12;
  next.scale = 0.05;
  next.version = "4.20.9";
  auto fixture2 = push_fixture(a.source, next);
  std::string first = a.dir.file("ocp-4.20.8"), second = a.dir.file("ocp-4.20.9");
  auto w1 = run_fastsync(a.to_dir(first));
  ASSERT_EQ(w1.exit_code, 0) << w1.err;
  auto w2 = run_fastsync(a.to_dir(second, {"--since", first}, "4.20.9"));
  ASSERT_EQ(w2.exit_code, 0) << w2.err;

  ArchiveView v1(first), v2(second);
  auto carried1 = v1.blob_digests(), carried2 = v2.blob_digests();
  std::size_t both = 0;
  auto all1 = a.fixture.all_blobs();
  std::set<std::string> fixture1_blobs(all1.begin(), all1.end());
  for (const auto& d : carried2) both += fixture1_blobs.count(d);
  EXPECT_EQ(both, 0u) << "the second archive carries blobs the first already did";
  EXPECT_GT(v2.relies_on(), 0u);
  std::uint64_t bytes1 = 0, bytes2 = 0;
  for (const auto& b : v1.blobs()) bytes1 += b.size;
  for (const auto& b : v2.blobs()) bytes2 += b.size;
  EXPECT_LT(bytes2 * 4, bytes1) << "4.20.9's archive should hold little more than its new release image";

  // Into an empty mirror it cannot complete: refused before any manifest goes up.
  auto refused = run_fastsync(a.from_dir(second));
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_NE(refused.err.find("relies on are missing"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("ocp-4.20.8"), std::string::npos) << refused.err;
  EXPECT_TRUE(catalog(a.dest).empty()) << "something was pushed";

  // Onto the mirror of 4.20.8 it completes.
  ASSERT_EQ(run_fastsync(a.from_dir(first)).exit_code, 0);
  auto r = run_fastsync(a.from_dir(second));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  a.expect_exact(a.fixture);
  a.expect_exact(fixture2);
}

TEST(Airgap, AFlippedByteInAVolumeFailsThatImageAndNeverReachesTheMirror) {
  Airgap a;
  std::string archive = a.dir.file("archive");
  ASSERT_EQ(run_fastsync(a.to_dir(archive)).exit_code, 0);
  // rhel-coreos's own big layer: damaged in its volume.
  const FixtureImage* victim = a.fixture.component("rhel-coreos");
  ASSERT_NE(victim, nullptr);
  std::string bad = victim->blobs.back();
  ArchiveView view(archive);
  bool flipped = false;
  for (const auto& b : view.blobs()) {
    if (b.digest != bad) continue;
    std::string path = archive + "/" + fmt::format("fastsync-{:06d}.tar", b.volume);
    std::string bytes = read_file(path);
    bytes[b.offset + b.size / 2] ^= 0x20;
    write_file(path, bytes);
    flipped = true;
  }
  ASSERT_TRUE(flipped);
  auto r = run_fastsync(a.from_dir(archive));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("rhel-coreos: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("content hashes to"), std::string::npos) << r.out;
  EXPECT_EQ(curl_blob_status(a.dest, kRepo, bad), 404) << "a wrong blob was committed";
  auto tags = list_tags(a.dest, kRepo);
  EXPECT_EQ(std::count(tags.begin(), tags.end(), "4.20.8-x86_64"), 0) << "release tagged with a component missing";
  EXPECT_EQ(tags.size(), a.fixture.components.size() - 1);
}

// The other way: a blob the source serves wrong is caught on the way into
// the archive (hashed by the writer's thread as it reads), so it is not in
// the index and the archive is not complete; the rest is.
TEST(Airgap, ABlobTheSourceServesWrongIsNeverInTheArchive) {
  Airgap a;
  const FixtureImage* victim = a.fixture.component("rhel-coreos");
  ASSERT_NE(victim, nullptr);
  std::string bad = victim->blobs.back();
  FaultProxy proxy(a.source, {R"({"method":"GET","path":")" + bad + R"(","action":"flip","times":1000})"}, a.dir);
  std::string archive = a.dir.file("archive");
  auto r = run_fastsync(a.to_dir(archive, {}, "4.20.8", proxy.host()));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find(bad + ": content hashes to"), std::string::npos) << r.out;
  ArchiveView view(archive);
  EXPECT_FALSE(view.complete());
  auto held = view.blob_digests();
  EXPECT_EQ(held.count(bad), 0u) << "a wrong blob is in the archive";
  for (const auto& digest : victim->blobs) {
    if (digest == bad) continue;
    EXPECT_EQ(held.count(digest), 1u) << digest;
  }
  // Every blob the index vouches for is right where it says.
  for (const auto& b : view.blobs()) {
    std::string volume = read_file(archive + "/" + fmt::format("fastsync-{:06d}.tar", b.volume));
    EXPECT_EQ(sha256_digest(std::string_view(volume).substr(b.offset, b.size)), b.digest);
  }
}

TEST(Airgap, AMissingOrShortVolumeIsNamedBeforeAnythingIsPushed) {
  Airgap a(8, 0.03);
  std::string archive = a.dir.file("archive");
  ASSERT_EQ(run_fastsync(a.to_dir(archive, {"--archive-size", "2MiB"})).exit_code, 0);
  ASSERT_GE(ArchiveView(archive).volumes(), 3u);
  fs::remove(archive + "/fastsync-000002.tar");
  fs::resize_file(archive + "/fastsync-000003.tar", fs::file_size(archive + "/fastsync-000003.tar") - 512);
  auto r = run_fastsync(a.from_dir(archive));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("fastsync-000002.tar is missing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fastsync-000003.tar is"), std::string::npos) << r.err;
  EXPECT_TRUE(catalog(a.dest).empty());
}

class InterruptedArchive : public ::testing::TestWithParam<int> {};

// Stopped mid-write — cleanly (SIGINT) or not at all (SIGKILL, a crash) — a
// rerun into the same directory keeps every complete blob, fetches the rest,
// and the archive mirrors exactly.
TEST_P(InterruptedArchive, ToDirResumesKeepingEveryCompleteBlob) {
  const int sig = GetParam();
  Airgap a(16, 0.05);
  Process slow({tool_path("fastsync-wanproxy"), "--target", a.source.host(), "--rate-mbps", "3"},
               a.dir.file("wan.log"));
  std::string slow_host = "127.0.0.1:" + slow.wait_ready().at("port");
  std::string archive = a.dir.file("archive");
  auto argv = a.to_dir(archive, {"--archive-size", "4MiB"}, "4.20.8", slow_host);
  argv = fastsync_argv(argv);
  {
    Process run(argv, a.dir.file("run.err"), {}, a.dir.file("run.out"));
    // Once the index vouches for some blobs, stop it.
    while (run.running()) {
      if (fs::exists(archive + "/fastsync-archive.json") && ArchiveView(archive).blobs().size() >= 10) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling interval
    }
    ASSERT_TRUE(run.running()) << "finished before it could be interrupted";
    auto signalled = std::chrono::steady_clock::now();
    run.signal(sig);
    int code = run.wait();
    EXPECT_EQ(code, 128 + sig);
    EXPECT_LE(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(5)) << "a stop takes seconds at most";
    if (sig == SIGINT) {
      EXPECT_NE(read_file(a.dir.file("run.out")).find("stopped: interrupted by SIGINT"), std::string::npos);
    }
  }
  auto kept = ArchiveView(archive).blob_digests();
  ASSERT_GE(kept.size(), 10u);

  auto r = run_fastsync(a.to_dir(archive, {"--archive-size", "4MiB"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Counted over the registry's whole log: it writes a GET's line once the
  // reply is sent, which under load can come after the interrupted run has
  // exited, so a split of the log at that moment can credit the first run's
  // GET to the rerun. A kept blob was fetched completely once, in the first run.
  std::map<std::string, int> fetches;
  for (const auto& d : a.source.blob_gets()) ++fetches[d];
  auto release_blobs = a.fixture.release.blobs;
  for (const auto& d : kept) {
    bool of_release = std::find(release_blobs.begin(), release_blobs.end(), d) != release_blobs.end();
    EXPECT_EQ(fetches[d], 1) << d << " was kept, yet fetched " << fetches[d] << " times"
                             << (of_release ? " (a blob of the release image)" : "");
  }
  ArchiveView done(archive);
  EXPECT_TRUE(done.complete());
  for (const auto& v : done.doc["volumes"].GetArray()) {
    std::string path = archive + "/" + v["name"].GetString();
    EXPECT_EQ(file_sha256(path), v["sha256"].GetString()) << path;
  }
  ASSERT_EQ(run_fastsync(a.from_dir(archive)).exit_code, 0);
  a.expect_exact(a.fixture);
}

INSTANTIATE_TEST_SUITE_P(Signals, InterruptedArchive, ::testing::Values(SIGINT, SIGKILL),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == SIGINT ? "SIGINT" : "SIGKILL";
                         });

class InterruptedFromDir : public ::testing::TestWithParam<int> {};

// Stopped while an archive streams into a slow destination (large blobs, each
// read from its volume on a thread of its own): the stop takes seconds, nothing
// half-pushed is left, and a rerun completes the mirror exactly.
TEST_P(InterruptedFromDir, StopsWithinSecondsAndARerunCompletesTheMirror) {
  const int sig = GetParam();
  Airgap a(12, 0.15);
  std::string archive = a.dir.file("archive");
  ASSERT_EQ(run_fastsync(a.to_dir(archive)).exit_code, 0);
  Process slow({tool_path("fastsync-wanproxy"), "--target", a.dest.host(), "--rate-mbps", "2"}, a.dir.file("wan.log"));
  std::string slow_dest = "127.0.0.1:" + slow.wait_ready().at("port");
  auto argv =
      fastsync_argv({"--from-dir", archive, "--dest-registry", slow_dest, "--pull-secret", a.secret, "--quiet"});
  Process run(argv, a.dir.file("run.err"), {}, a.dir.file("run.out"));
  auto blob_puts = [&] {
    std::size_t n = 0;
    for (const auto& r : a.dest.requests())
      n += r.method == "PUT" && r.uri.find("/blobs/uploads/") != std::string::npos;
    return n;
  };
  while (run.running() && blob_puts() < 4) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling
  ASSERT_TRUE(run.running()) << "finished before it could be interrupted";
  auto signalled = std::chrono::steady_clock::now();
  run.signal(sig);
  EXPECT_EQ(run.wait(), 128 + sig);
  EXPECT_LE(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(5)) << "a stop takes seconds at most";
  EXPECT_NE(read_file(a.dir.file("run.out"))
                .find(sig == SIGINT ? "stopped: interrupted by SIGINT" : "stopped: terminated by SIGTERM"),
            std::string::npos);
  auto dangling = check_no_dangling_manifests(a.dest, kRepo);
  EXPECT_TRUE(dangling.empty()) << dangling.front();
  auto tags = list_tags(a.dest, kRepo);
  EXPECT_EQ(std::count(tags.begin(), tags.end(), "4.20.8-x86_64"), 0);

  // The rerun as a user makes it, with the default backoff: the registry may
  // still be finishing what the stopped run left mid-request (under load that
  // can take longer than the suite's 20 ms retry delays last).
  auto rerun =
      run_fastsync({"--from-dir", archive, "--dest-registry", a.dest.host(), "--pull-secret", a.secret, "--quiet"});
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err << rerun.out;
  a.expect_exact(a.fixture);
}

INSTANTIATE_TEST_SUITE_P(Signals, InterruptedFromDir, ::testing::Values(SIGINT, SIGTERM),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == SIGINT ? "SIGINT" : "SIGTERM";
                         });

// A small tmpfs of our own for the archive.
class SmallDisk {
 public:
  SmallDisk(const std::string& path, const std::string& size) : path_(path) {
    fs::create_directories(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST(Airgap, ADiskTooSmallIsRefusedUpFrontAndADiskThatFillsStopsTheRunCleanly) {
  Airgap a(12, 0.05);  // ~17 MB of blobs
  SmallDisk tiny(a.dir.file("tiny"), "8m");
  if (!tiny.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (CI runs this as root)";
  auto r = run_fastsync(a.to_dir(a.dir.file("tiny/archive")));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("not enough free space in " + a.dir.file("tiny/archive")), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // Room at the start, but something else fills the disk while it writes.
  SmallDisk disk(a.dir.file("disk"), "40m");
  ASSERT_TRUE(disk.mounted());
  Process slow({tool_path("fastsync-wanproxy"), "--target", a.source.host(), "--rate-mbps", "0.5"},
               a.dir.file("wan.log"));
  std::string slow_host = "127.0.0.1:" + slow.wait_ready().at("port");
  std::string archive = a.dir.file("disk/archive");
  auto argv = a.to_dir(archive, {}, "4.20.8", slow_host);
  argv = fastsync_argv(argv);
  Process run(argv, a.dir.file("run.err"), {}, a.dir.file("run.out"));
  while (run.running() &&
         !(fs::exists(archive + "/fastsync-archive.json") && ArchiveView(archive).blobs().size() >= 5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling interval
  }
  ASSERT_TRUE(run.running());
  // Fill it: dd stops at "No space left on device", which is the point. (What
  // fastsync then rolls back frees a little again: no assertion on the space.)
  run_command({"dd", "if=/dev/zero", "of=" + a.dir.file("disk/filler"), "bs=64k"});
  EXPECT_EQ(run.wait(), 3) << read_file(a.dir.file("run.err"));
  std::string err = read_file(a.dir.file("run.err"));
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  // With the space back, a rerun completes what is there.
  fs::remove(a.dir.file("disk/filler"));
  auto rerun = run_fastsync(a.to_dir(archive));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  ASSERT_EQ(run_fastsync(a.from_dir(archive)).exit_code, 0);
  a.expect_exact(a.fixture);
}

TEST(Airgap, BadArchiveCommandLinesAreOneLineEach) {
  TempDir dir("fastsync-airgap-cli");
  std::string secret = write_pull_secret(dir.file("ps.json"), {});
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  for (const auto& c : std::vector<Case>{
           {{"--version", "4.20.8", "--to-dir", dir.path(), "--dest-registry", "r.example"},
            "--to-dir takes the place of --dest-registry"},
           {{"--to-dir", dir.path(), "--from-dir", dir.path()}, "cannot be combined"},
           {{"--from-dir", dir.path(), "--source-registry", "r.example/x/y", "--dest-registry", "r.example"},
            "--from-dir takes the place of --source-registry"},
           {{"--version", "4.20.8", "--to-dir", dir.path(), "--archive-size", "lots"}, "--archive-size \"lots\""},
           {{"--version", "4.20.8", "--dest-registry", "r.example", "--since", dir.path()},
            "--since goes with --to-dir"},
       }) {
    auto args = c.args;
    args.push_back("--pull-secret");
    args.push_back(secret);
    auto r = run_fastsync(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
  }
  auto not_archive =
      run_fastsync({"--from-dir", dir.path(), "--dest-registry", "127.0.0.1:1", "--pull-secret", secret});
  EXPECT_EQ(not_archive.exit_code, 3);
  EXPECT_NE(not_archive.err.find("is not a fastsync archive"), std::string::npos) << not_archive.err;
}

}  // namespace
}  // namespace fastsync::testing
