// The registry client against real docker-registry processes: plain HTTP, TLS,
// Basic and Bearer auth, redirects to another host, streamed copies.
// Results are checked independently with skopeo and the curl CLI.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>

#include "registry/client/client.h"
#include "registry/core/digest.h"
#include "registry/transfer/blob_copy.h"
#include "tests/support/mirror_check.h"
#include "tests/support/registries.h"

namespace fastsync {
namespace {

using testing::TempDir;
using testing::TestRegistry;
using testing::TestRegistryOptions;

struct Harness {
  explicit Harness(const std::string& pull_secret_json = R"({"auths":{}})", RegistryOptions options = {})
      : auth(AuthFile::parse(pull_secret_json, "test-pull-secret").value()) {
    options.retry.base_delay = std::chrono::milliseconds(50);
    client = std::make_unique<RegistryClient>(engine, auth, options);
  }
  HttpEngine engine;
  AuthFile auth;
  std::unique_ptr<RegistryClient> client;
  Registry& reg(const TestRegistry& r) { return client->registry(r.host()); }
};

std::string secret_for(const std::string& host, const std::string& user, const std::string& password) {
  return R"({"auths":{")" + host + R"(":{"auth":")" + base64_encode(user + ":" + password) + R"("}}})";
}

struct TestImage {
  std::string config;
  std::string layer;
  ManifestData manifest;
};

TestImage make_image(const std::string& seed) {
  TestImage img;
  img.config =
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":")" + seed + "\"}";
  img.layer = "layer bytes for " + seed + std::string(1000, 'x');
  img.manifest.media_type = std::string(media_type::kOciManifest);
  img.manifest.bytes =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":)" +
      std::to_string(img.config.size()) + R"(,"digest":")" + sha256_digest(img.config) +
      R"("},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":)" +
      std::to_string(img.layer.size()) + R"(,"digest":")" + sha256_digest(img.layer) + R"("}]})";
  img.manifest.digest = sha256_digest(img.manifest.bytes);
  return img;
}

Status push_image(Registry& reg, const std::string& repo, const std::string& tag, const TestImage& img) {
  auto s = sync_wait(reg.upload_blob(repo, sha256_digest(img.config), std::make_shared<const std::string>(img.config)));
  if (!s) return s;
  s = sync_wait(reg.upload_blob(repo, sha256_digest(img.layer), std::make_shared<const std::string>(img.layer)));
  if (!s) return s;
  return sync_wait(reg.put_manifest(repo, tag, img.manifest));
}

TEST(RegistryClient, PlainHttpPushPullAndReadableErrors) {
  TestRegistry registry;
  Harness h;
  Registry& reg = h.reg(registry);
  auto img = make_image("plain");
  auto pushed = push_image(reg, "team/app", "v1", img);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;

  auto head = sync_wait(reg.head_manifest("team/app", "v1"));
  ASSERT_TRUE(head.ok()) << head.error().message;
  EXPECT_EQ(head->digest, img.manifest.digest);
  EXPECT_EQ(head->media_type, media_type::kOciManifest);

  auto got = sync_wait(reg.get_manifest("team/app", img.manifest.digest));
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->bytes, img.manifest.bytes);  // byte for byte

  // Independently: skopeo sees the same manifest bytes, curl the same blob bytes.
  EXPECT_EQ(testing::skopeo_raw_manifest(registry, "team/app:v1"), img.manifest.bytes);
  EXPECT_EQ(testing::curl_blob(registry, "team/app", sha256_digest(img.layer)), img.layer);

  auto missing = sync_wait(reg.get_manifest("team/app", "nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::NotFound);
  EXPECT_NE(missing.error().message.find(registry.host() + "/team/app"), std::string::npos) << missing.error().message;
  EXPECT_NE(missing.error().message.find("GET manifest nope"), std::string::npos) << missing.error().message;
  EXPECT_NE(missing.error().message.find("MANIFEST_UNKNOWN"), std::string::npos) << missing.error().message;

  auto no_blob = sync_wait(reg.head_blob("team/app", sha256_digest("absent")));
  ASSERT_FALSE(no_blob.ok());
  EXPECT_EQ(no_blob.error().kind, ErrorKind::NotFound);

  EXPECT_EQ(testing::list_tags(registry, "team/app"), std::vector<std::string>{"v1"});
}

TEST(RegistryClient, ManifestDigestIsVerifiedAgainstTheReference) {
  TestRegistry registry;
  Harness h;
  Registry& reg = h.reg(registry);
  auto img = make_image("verify");
  ASSERT_TRUE(push_image(reg, "team/app", "v1", img).ok());
  // Asking for the manifest by a digest it does not have is a 404, and a tag
  // lookup returns the exact digest of the bytes.
  auto wrong = sync_wait(reg.get_manifest("team/app", sha256_digest("other")));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::NotFound);
  auto by_tag = sync_wait(reg.get_manifest("team/app", "v1"));
  ASSERT_TRUE(by_tag.ok());
  EXPECT_EQ(by_tag->digest, img.manifest.digest);
}

TEST(RegistryClient, TlsIsRefusedWithoutTrustAndWorksWithCaFileOrInsecure) {
  TestRegistryOptions opts;
  opts.tls = true;
  TestRegistry registry(opts);
  auto img = make_image("tls");
  {
    Harness untrusted;
    auto r = push_image(untrusted.reg(registry), "team/app", "v1", img);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::Tls);
    EXPECT_NE(r.error().message.find("--ca-file"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(registry.host()), std::string::npos) << r.error().message;
  }
  {
    RegistryOptions with_ca;
    with_ca.trust.ca_files = {registry.ca_file()};
    Harness trusted(R"({"auths":{}})", with_ca);
    auto r = push_image(trusted.reg(registry), "team/app", "v1", img);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  {
    RegistryOptions insecure;
    insecure.insecure = true;
    Harness h(R"({"auths":{}})", insecure);
    auto got = sync_wait(h.reg(registry).get_manifest("team/app", "v1"));
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->digest, img.manifest.digest);
  }
  EXPECT_EQ(testing::skopeo_raw_manifest(registry, "team/app:v1"), img.manifest.bytes);
}

// libcurl keeps one parsed CA bundle for every connection of a run; a CA from a
// registry's certs.d directory must still vouch for that registry only. The test
// registry's certificate names both 127.0.0.1 and localhost, so one server is two
// hosts here. And SSL_CERT_DIR, a hashed directory, is trusted for every host.
TEST(RegistryClient, ACertsDirCaVouchesForItsHostOnlyAndSslCertDirForEveryHost) {
  TestRegistryOptions opts;
  opts.tls = true;
  TestRegistry registry(opts);
  TempDir dir("fastsync-trust-scope");
  const std::string by_ip = registry.host();
  const std::string by_name = "localhost" + by_ip.substr(by_ip.rfind(':'));
  std::filesystem::create_directories(dir.file("certs.d/" + by_ip));
  testing::write_file(dir.file("certs.d/" + by_ip + "/ca.crt"), testing::read_file(registry.ca_file()));
  Call ping;
  ping.target = "/v2/";
  ping.what = "ping";
  {
    RegistryOptions o;
    o.trust.certs_dirs = {dir.file("certs.d")};
    Harness h(R"({"auths":{}})", o);
    auto vouched = sync_wait(h.client->registry(by_ip).send(ping));
    ASSERT_TRUE(vouched.ok()) << vouched.error().message;
    auto other = sync_wait(h.client->registry(by_name).send(ping));
    ASSERT_FALSE(other.ok()) << by_name << " was trusted through " << by_ip << "'s certs.d";
    EXPECT_EQ(other.error().kind, ErrorKind::Tls) << other.error().message;
  }
  {
    std::filesystem::create_directories(dir.file("hashed"));
    testing::write_file(dir.file("hashed/test-ca.pem"), testing::read_file(registry.ca_file()));
    auto rehash = testing::run_command({"openssl", "rehash", dir.file("hashed")});
    ASSERT_EQ(rehash.exit_code, 0) << rehash.err;
    RegistryOptions o;
    o.trust.system_dir = dir.file("hashed");
    Harness h(R"({"auths":{}})", o);
    for (const auto& host : {by_ip, by_name}) {
      auto resp = sync_wait(h.client->registry(host).send(ping));
      EXPECT_TRUE(resp.ok()) << host << ": " << resp.error().message;
    }
  }
}

// Whether an image has a cosign signature: a repository whose tags fit in one
// tags/list page is listed once, and only a signature tag on the list costs a
// HEAD; one that does not fit is asked per image, and finds the same.
TEST(RegistryClient, SignatureTagsFromOneTagListWhenItFitsElsePerImage) {
  TestRegistry registry;
  std::vector<TestImage> images;
  for (const char* seed : {"one", "two", "three"}) {
    images.push_back(make_image(seed));
    Harness pusher;
    ASSERT_TRUE(push_image(pusher.reg(registry), "team/app", seed, images.back()).ok());
  }
  // The first two are "signed": their .sig tags name any manifest.
  for (int i = 0; i < 2; ++i) {
    Harness pusher;
    auto put = sync_wait(
        pusher.reg(registry).put_manifest("team/app", sigstore_tag(images[i].manifest.digest), images[2].manifest));
    ASSERT_TRUE(put.ok()) << put.error().message;
  }
  const Repository repo{registry.host(), "team/app"};
  for (std::size_t page_size : {std::size_t{1000}, std::size_t{2}}) {
    SCOPED_TRACE(page_size);
    RegistryOptions o;
    o.tag_page_size = page_size;
    Harness h(R"({"auths":{}})", o);
    auto before = registry.requests().size();
    for (std::size_t i = 0; i < images.size(); ++i) {
      auto found = sync_wait(h.client->attachments(repo, images[i].manifest.digest));
      ASSERT_TRUE(found.ok()) << found.error().message;
      if (i < 2) {
        ASSERT_EQ(found->size(), 1u);
        EXPECT_EQ(found->front().tag, sigstore_tag(images[i].manifest.digest));
        EXPECT_EQ(found->front().digest, images[2].manifest.digest);
      } else {
        EXPECT_TRUE(found->empty());
      }
    }
    std::size_t sig_heads = 0, lists = 0;
    auto requests = registry.requests();
    for (std::size_t i = before; i < requests.size(); ++i) {
      sig_heads += requests[i].method == "HEAD" && requests[i].uri.find(".sig") != std::string::npos;
      lists += requests[i].uri.find("/tags/list") != std::string::npos;
    }
    EXPECT_EQ(lists, 1u);
    // Five tags: they fit in a page of 1000, not in one of 2.
    EXPECT_EQ(sig_heads, page_size == 2 ? 3u : 2u);
  }
}

TEST(RegistryClient, Http11ByDefaultAndHttp2WhenAsked) {
  TestRegistryOptions opts;
  opts.tls = true;
  TestRegistry registry(opts);
  for (bool h2 : {false, true}) {
    RegistryOptions o;
    o.trust.ca_files = {registry.ca_file()};
    o.http2 = h2;
    Harness h(R"({"auths":{}})", o);
    Call ping;
    ping.target = "/v2/";
    ping.what = "ping";
    auto resp = sync_wait(h.reg(registry).send(ping));
    ASSERT_TRUE(resp.ok()) << resp.error().message;
    EXPECT_EQ(resp->http_version, h2 ? 20 : 11);
    auto img = make_image(h2 ? "h2" : "h1");
    auto pushed = push_image(h.reg(registry), "team/app", h2 ? "h2" : "h1", img);
    ASSERT_TRUE(pushed.ok()) << pushed.error().message;
    EXPECT_EQ(testing::skopeo_raw_manifest(registry, std::string("team/app:") + (h2 ? "h2" : "h1")),
              img.manifest.bytes);
  }
}

TEST(RegistryClient, BasicAuthWorksAndAWrongPasswordIsAClearError) {
  TestRegistryOptions opts;
  opts.basic_user = "mirror:correct-horse";
  TestRegistry registry(opts);
  auto img = make_image("basic");
  {
    Harness good(secret_for(registry.host(), "mirror", "correct-horse"));
    auto r = push_image(good.reg(registry), "team/app", "v1", img);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  {
    Harness wrong(secret_for(registry.host(), "mirror", "battery-staple"));
    auto r = sync_wait(wrong.reg(registry).get_manifest("team/app", "v1"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::AuthDenied);
    EXPECT_NE(r.error().message.find(registry.host()), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("battery-staple"), std::string::npos);  // never the password
  }
  {
    Harness none;
    auto r = sync_wait(none.reg(registry).get_manifest("team/app", "v1"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::NoCredentials);
    EXPECT_NE(r.error().message.find("no credentials for " + registry.host()), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(testing::skopeo_raw_manifest(registry, "team/app:v1", "mirror:correct-horse"), img.manifest.bytes);
}

TEST(RegistryClient, BearerTokensAreFetchedOncePerScopeAndWrongCredentialsFail) {
  TestRegistryOptions opts;
  opts.token_users = {"robot:t0ken-pass"};
  TestRegistry registry(opts);
  auto img = make_image("bearer");
  Harness good(secret_for(registry.host(), "robot", "t0ken-pass"));
  Registry& reg = good.reg(registry);
  ASSERT_TRUE(push_image(reg, "team/app", "v1", img).ok());

  // Twenty concurrent pulls share one token for the pull scope.
  std::vector<Task<Result<ManifestHead>>> tasks;
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) {
    spawn(
        reg.head_manifest("team/other", "v1"),
        [&](Result<ManifestHead> r) {
          if (!r.ok() && r.error().kind == ErrorKind::NotFound) ok++;
          done++;
          done.notify_all();
        },
        [&](std::exception_ptr) {
          done++;
          done.notify_all();
        });
  }
  for (int d = done.load(); d < 20; d = done.load()) done.wait(d);
  EXPECT_EQ(ok.load(), 20);
  std::string log = registry.token_log();
  size_t pull_tokens = 0;
  for (size_t pos = 0; (pos = log.find("repository:team/other:pull\"", pos)) != std::string::npos; ++pos) ++pull_tokens;
  EXPECT_EQ(pull_tokens, 1u) << log;
  EXPECT_NE(log.find("repository:team/app:pull,push"), std::string::npos) << log;

  // A mount asks one token for push on the target and pull on the source repository.
  auto mounted = sync_wait(good.client->mount_blob({registry.host(), "team/mounted"}, sha256_digest(img.layer),
                                                   {registry.host(), "team/app"}));
  ASSERT_TRUE(mounted.ok()) << mounted.error().message;
  EXPECT_TRUE(mounted->mounted);
  EXPECT_NE(registry.token_log().find(R"("repository:team/mounted:pull,push", "repository:team/app:pull")"),
            std::string::npos)
      << registry.token_log();

  Harness wrong(secret_for(registry.host(), "robot", "nope"));
  auto r = sync_wait(wrong.reg(registry).get_manifest("team/app", "v1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::AuthDenied);
  EXPECT_NE(r.error().message.find("refused the pull secret's credentials"), std::string::npos) << r.error().message;

  Harness anonymous;
  auto anon = sync_wait(anonymous.reg(registry).get_manifest("team/app", "v1"));
  ASSERT_FALSE(anon.ok());
  EXPECT_EQ(anon.error().kind, ErrorKind::NoCredentials);
  EXPECT_EQ(testing::skopeo_raw_manifest(registry, "team/app:v1", "robot:t0ken-pass"), img.manifest.bytes);
}

TEST(RegistryClient, RedirectedBlobGetNeverCarriesAuthorizationToTheOtherHost) {
  TestRegistry upstream;
  Harness plain;
  auto img = make_image("redirect");
  ASSERT_TRUE(push_image(plain.reg(upstream), "team/app", "v1", img).ok());

  TempDir dir("fastsync-front");
  testing::Process front({"/usr/bin/python3", testing::source_dir() + "/tests/servers/redirect_front.py", "--upstream",
                          upstream.host(), "--user", "alice:front-secret", "--log", dir.file("cdn.log")},
                         dir.file("front.err"));
  auto ports = front.wait_ready();
  std::string front_host = "127.0.0.1:" + ports.at("front");

  Harness h(secret_for(front_host, "alice", "front-secret"));
  Registry& reg = h.client->registry(front_host);
  // Read through the streamed download path (verified as it arrives).
  auto read_all = [&](const std::string& bytes) {
    Descriptor blob{"", sha256_digest(bytes), bytes.size(), {}};
    auto reader = h.client->open_blob({front_host, "team/app"}, blob);
    std::string got;
    char buf[256];
    while (true) {
      auto n = reader->read(buf, sizeof buf);
      if (!n.ok()) return "error: " + n.error().message;
      if (*n == 0) return got;
      got.append(buf, *n);
    }
  };
  EXPECT_EQ(read_all(img.layer), img.layer);
  EXPECT_EQ(read_all(img.config), img.config);

  // Pushing through the front: its upload Locations are host-relative with their own query.
  auto pushed_img = make_image("through-front");
  auto pushed = push_image(reg, "team/pushed", "v1", pushed_img);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  EXPECT_EQ(testing::skopeo_raw_manifest(upstream, "team/pushed:v1"), pushed_img.manifest.bytes);

  std::string log = testing::read_file(dir.file("cdn.log"));
  ASSERT_NE(log.find(sha256_digest(img.layer)), std::string::npos) << "the blob GET was not redirected: " << log;
  EXPECT_NE(log.find(sha256_digest(img.config)), std::string::npos) << log;
  EXPECT_EQ(log.find("\"authorization\": \""), std::string::npos) << "Authorization leaked to the CDN: " << log;
  EXPECT_NE(log.find("\"authorization\": null"), std::string::npos) << log;
}

void write_random_file(const std::string& path, size_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::ofstream out(path, std::ios::binary);
  std::vector<std::uint64_t> chunk(1 << 17);
  for (size_t written = 0; written < size;) {
    for (auto& w : chunk) w = rng();
    size_t n = std::min(size - written, chunk.size() * sizeof(std::uint64_t));
    out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
    written += n;
  }
}

// The process's peak resident memory (VmHWM), in KiB.
long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// Starts the peak over from the current resident memory, so what an earlier
// test held (a 100 MB blob read back to check it) does not hide this one's.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

TEST(BlobCopy, StreamsA100MBBlobBetweenRegistriesInBoundedMemory) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-big");
  constexpr size_t kSize = 100u << 20;
  write_random_file(dir.file("blob"), kSize, 42);
  std::string digest = testing::curl_push_blob(source, "big/src", dir.file("blob"));

  Harness h;
  reset_peak_rss();
  long before = peak_rss_kib();
  Descriptor blob{"", digest, kSize, {}};
  auto copied = sync_wait(copy_blob(h.reg(source), "big/src", h.reg(dest), "big/dst", blob));
  long after = peak_rss_kib();
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_EQ(*copied, kSize);
  // Nothing close to the blob's size was ever held in memory.
  std::printf("peak RSS before %ld KiB, after %ld KiB\n", before, after);
#if !defined(FASTSYNC_ASAN)  // ASan's quarantine keeps freed memory resident: RSS says nothing there
  EXPECT_LT(after - before, 24 * 1024) << "peak RSS grew by " << (after - before) << " KiB";
#endif
  EXPECT_EQ(sha256_digest(testing::curl_blob(dest, "big/dst", digest)), digest);
}

// The same blob in Range segments, several at a time: what waits out of order
// stays within the segment memory, and the bytes land exact.
TEST(BlobCopy, A100MBBlobInParallelSegmentsStaysWithinTheSegmentMemory) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-big-segments");
  constexpr size_t kSize = 100u << 20;
  write_random_file(dir.file("blob"), kSize, 43);
  std::string digest = testing::curl_push_blob(source, "big/src", dir.file("blob"));

  RegistryOptions options;
  options.segment_size = 4u << 20;
  options.segments_always = true;  // the reorder machinery, not the decision to split
  options.segment_memory = 16u << 20;
  options.blob_pool = 8;
  Harness h(R"({"auths":{}})", options);
  reset_peak_rss();
  long before = peak_rss_kib();
  Descriptor blob{"", digest, kSize, {}};
  auto copied =
      sync_wait(h.client->receive_blob(*h.client, {source.host(), "big/src"}, {dest.host(), "big/dst"}, blob, ""));
  long after = peak_rss_kib();
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  std::printf("peak RSS before %ld KiB, after %ld KiB\n", before, after);
#if !defined(FASTSYNC_ASAN) && !defined(FASTSYNC_TSAN_BUILD)  // shadow memory grows with what is touched
  EXPECT_LT(after - before, (16 + 24) * 1024) << "peak RSS grew by " << (after - before) << " KiB";
#endif
  EXPECT_EQ(sha256_digest(testing::curl_blob(dest, "big/dst", digest)), digest);
  std::size_t segments = 0;
  for (const auto& q : source.requests()) segments += q.method == "GET" && q.status == 206;
  EXPECT_EQ(segments, kSize / options.segment_size);
}

// Adaptive segments (the default) for one 24 MiB blob through a slow link.
struct AdaptiveCopy {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir{"fastsync-adaptive"};
  std::string digest;
  static constexpr std::size_t kSize = 24u << 20;
  static constexpr std::uint64_t kSegment = 512u << 10;
  std::uint64_t segment_memory = 8u << 20;  // segments are a quarter of it, at most
  AdaptiveCopy() {
    write_random_file(dir.file("blob"), kSize, 44);
    digest = testing::curl_push_blob(source, "big/src", dir.file("blob"));
  }
  // Copies the blob from `source` through `link` (wanproxy arguments) and
  // returns the source's GETs of it that were answered 206. `first` runs
  // before, on the same client and link (what the run did before the blob).
  // `dest_link`, when given, is the destination's own (its uploads).
  // `after` runs once the blob is copied, on the same client.
  std::size_t copy_through(std::vector<std::string> link,
                           const std::function<void(Harness&, const std::string& wan_host)>& first = {},
                           std::vector<std::string> dest_link = {}, const std::function<void()>& after = {}) {
    // A proxy in front of `target` with `args`; its address.
    auto start_proxy = [&](std::optional<testing::Process>& proxy, const std::string& target,
                           const std::vector<std::string>& args, const std::string& log) {
      std::vector<std::string> argv = {testing::tool_path("fastsync-wanproxy"), "--target", target};
      argv.insert(argv.end(), args.begin(), args.end());
      proxy.emplace(argv, dir.file(log));
      return "127.0.0.1:" + proxy->wait_ready().at("port");
    };
    std::optional<testing::Process> wan, dest_wan;
    std::string wan_host = start_proxy(wan, source.host(), link, "wan.log");
    std::string dest_host =
        dest_link.empty() ? dest.host() : start_proxy(dest_wan, dest.host(), dest_link, "dest-wan.log");
    RegistryOptions options;
    options.segment_size = kSegment;
    options.segment_memory = segment_memory;
    Harness h(R"({"auths":{}})", options);
    if (first) first(h, wan_host);
    Descriptor blob{"", digest, kSize, {}};
    auto copied = sync_wait(h.client->receive_blob(*h.client, {wan_host, "big/src"}, {dest_host, "big/dst"}, blob, ""));
    EXPECT_TRUE(copied.ok()) << copied.error().message;
    if (after) after();
    EXPECT_EQ(sha256_digest(testing::curl_blob(dest, "big/dst", digest)), digest);
    std::size_t ranges = 0;
    for (const auto& q : source.requests()) ranges += q.method == "GET" && q.status == 206;
    return ranges;
  }
  // The source's GETs of the blob, whatever they were answered.
  std::size_t gets_of_blob() const {
    std::size_t gets = 0;
    for (const auto& q : source.requests()) gets += q.method == "GET" && q.uri.ends_with(digest);
    return gets;
  }
  // `count` other blobs of `size` on the source (random, from seeds `seed` on).
  std::vector<Descriptor> push_others(std::size_t count, std::size_t size, int seed) {
    std::vector<Descriptor> blobs;
    for (std::size_t i = 0; i < count; ++i) {
      std::string path = dir.file("other" + std::to_string(seed + static_cast<int>(i)));
      write_random_file(path, size, seed + static_cast<int>(i));
      blobs.push_back({"", testing::curl_push_blob(source, "big/src", path), size, {}});
    }
    return blobs;
  }
  // Copies of other blobs on the large one's client and link (from `first`),
  // counted as they end.
  std::atomic<std::size_t> others_ended{0};
  std::atomic<std::size_t> others_copied{0};
  void start_others(Harness& h, const std::string& wan_host, const std::vector<Descriptor>& blobs) {
    for (const auto& blob : blobs) {
      spawn(
          h.client->receive_blob(*h.client, {wan_host, "big/src"}, {dest.host(), "big/dst"}, blob, ""),
          [this](Result<std::uint64_t> r) {
            others_copied += r.ok();
            ++others_ended;
            others_ended.notify_all();
          },
          [this](std::exception_ptr) {
            ++others_ended;
            others_ended.notify_all();
          });
    }
  }
  void wait_for_others(std::size_t ended) {
    for (std::size_t e = others_ended.load(); e < ended; e = others_ended.load()) others_ended.wait(e);
  }
};

// Each connection capped (a source far away): the blob is split and lanes
// are added while they pay, so it comes in many Range requests.
TEST(BlobCopy, AdaptiveSegmentsSplitABlobWhereEachConnectionIsSlow) {
  AdaptiveCopy c;
  std::size_t ranges = c.copy_through({"--rate-mbps", "3"});
  EXPECT_GE(ranges, 10u) << "the blob was not split across lanes";
}

// Each source connection capped, as above, but the destination's link takes
// less than one of them fetches (a destination farther or slower than the
// source): lanes would only fetch further ahead of the upload. Once a few
// drains show it, the lanes go and the rest of the blob is one request:
// about 11 in all, against 20 (a segment for every 1 MiB) where lanes were
// only judged by what they fetched.
TEST(BlobCopy, AdaptiveSegmentsWithdrawLanesWhereTheUploadTakesLessThanOneConnectionFetches) {
  AdaptiveCopy c;
  c.segment_memory = 4u << 20;
  std::size_t ranges = c.copy_through({"--rate-mbps", "5"}, {}, {"--total-mbps", "3"});
  EXPECT_GE(ranges, 1u);
  EXPECT_LE(ranges, 15u) << "lanes were kept that fetched ahead of an upload that could not take them";
}

// One interface every connection shares, and this blob alone on it: one
// connection already takes it all, so the lane tried is withdrawn and the
// rest comes in one request — a handful of requests, not the 48 fixed
// segments would make.
TEST(BlobCopy, AdaptiveSegmentsWithdrawLanesThatDoNotPayBehindOneSharedInterface) {
  AdaptiveCopy c;
  std::size_t ranges = c.copy_through({"--total-mbps", "8"});
  EXPECT_GE(ranges, 1u);
  EXPECT_LE(ranges, 8u) << "lanes were kept that only shared the interface";
}

// The same interface, but the run first fetched eight blobs at once through
// it (its best rate, over many connections): the large blob, alone on its one
// connection, fetches about that, so no lane is tried and it comes whole —
// not split for a trial whose lane is withdrawn after fetching ahead of the upload.
TEST(BlobCopy, AdaptiveSegmentsTryNoLaneWhereOneConnectionFetchesWhatManyDid) {
  AdaptiveCopy c;
  constexpr std::size_t kSmall = 8;
  auto small = c.push_others(kSmall, 2u << 20, 100);
  auto copy_small_ones_at_once = [&](Harness& h, const std::string& wan_host) {
    c.start_others(h, wan_host, small);
    c.wait_for_others(kSmall);
    EXPECT_EQ(c.others_copied.load(), kSmall);
  };
  c.copy_through({"--total-mbps", "8"}, copy_small_ones_at_once);
  EXPECT_EQ(c.gets_of_blob(), 1u) << "the large blob was split for a lane that could only share the interface";
}

// Behind one shared interface, sixteen copies of the same size fetch what the
// interface carries; then the large blob and five smaller ones fetch as much
// with six connections, so what caps the run is shared (a pod's interface),
// not each connection, and a lane could only take a share from the other
// copies (and fetch ahead of an upload that gets one share). The large blob,
// the last by far, is not split. Without the rule it is: each lane takes a
// share as large as its own connection's, so lanes look as if they pay. The
// rule reads only windows where the CPU had room, so this suite runs alone
// (tests/CMakeLists.txt).
TEST(SharedLink, AdaptiveSegmentsTryNoLaneOnceTheRunShowsItsLinkIsShared) {
  AdaptiveCopy c;
  constexpr std::size_t kMany = 16, kFew = 5;
  // Equal sizes: no copy of a phase is the last by far, so none is split.
  auto many = c.push_others(kMany, 2u << 20, 200);
  auto few = c.push_others(kFew, 12u << 20, 300);
  auto before_the_large_one = [&](Harness& h, const std::string& wan_host) {
    c.start_others(h, wan_host, many);
    c.wait_for_others(kMany);
    c.start_others(h, wan_host, few);
  };
  c.copy_through({"--total-mbps", "16"}, before_the_large_one, {}, [&] { c.wait_for_others(kMany + kFew); });
  EXPECT_EQ(c.others_copied.load(), kMany + kFew);
  EXPECT_EQ(c.gets_of_blob(), 1u) << "the large blob was split for lanes that could only share the interface";
}

TEST(BlobCopy, BytesThatDoNotMatchTheDigestAreDetectedAndNothingIsCommitted) {
  TestRegistry source;
  TestRegistry dest;
  TempDir dir("fastsync-mismatch");
  testing::write_file(dir.file("blob"), std::string(300000, 'q'));
  std::string digest = testing::curl_push_blob(source, "a/src", dir.file("blob"));
  // Corrupt the source's stored copy (the filesystem driver serves it without re-checking).
  std::string hex = digest.substr(7);
  std::string stored = source.dir() + "/data/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
  std::string bytes = testing::read_file(stored);
  ASSERT_EQ(bytes.size(), 300000u);
  bytes[150000] = 'X';
  testing::write_file(stored, bytes);

  RegistryOptions opts;
  opts.retry.retries = 1;
  Harness h(R"({"auths":{}})", opts);
  Descriptor blob{"", digest, 300000, {}};
  auto copied = sync_wait(copy_blob(h.reg(source), "a/src", h.reg(dest), "a/dst", blob));
  ASSERT_FALSE(copied.ok());
  EXPECT_EQ(copied.error().kind, ErrorKind::DigestMismatch) << copied.error().message;
  EXPECT_NE(copied.error().message.find(digest), std::string::npos) << copied.error().message;
  EXPECT_EQ(testing::curl_blob_status(dest, "a/dst", digest), 404);

  // A descriptor that understates the size is caught the same way.
  testing::write_file(stored, std::string(300000, 'q'));
  Descriptor understated{"", digest, 299999, {}};
  auto short_size = sync_wait(copy_blob(h.reg(source), "a/src", h.reg(dest), "a/dst", understated));
  ASSERT_FALSE(short_size.ok());
  EXPECT_EQ(short_size.error().kind, ErrorKind::DigestMismatch) << short_size.error().message;
  EXPECT_EQ(testing::curl_blob_status(dest, "a/dst", digest), 404);
}

TEST(RegistryClient, MountsAcrossRepositoriesAndFallsBackWhenItCannot) {
  TestRegistry registry;
  Harness h;
  Registry& reg = h.reg(registry);
  auto img = make_image("mount");
  ASSERT_TRUE(push_image(reg, "team/app", "v1", img).ok());
  std::string layer = sha256_digest(img.layer);
  auto mounted = sync_wait(h.client->mount_blob({registry.host(), "other/app"}, layer, {registry.host(), "team/app"}));
  ASSERT_TRUE(mounted.ok()) << mounted.error().message;
  EXPECT_TRUE(mounted->mounted);
  EXPECT_EQ(testing::curl_blob(registry, "other/app", layer), img.layer);

  // A mount the registry cannot do is answered 202 with an upload session: the
  // blob goes up through that session, with no second POST and no DELETE.
  std::string absent_bytes = "bytes the source repository does not have";
  std::string absent = sha256_digest(absent_bytes);
  auto not_there =
      sync_wait(h.client->mount_blob({registry.host(), "third/app"}, absent, {registry.host(), "team/app"}));
  ASSERT_TRUE(not_there.ok()) << not_there.error().message;
  EXPECT_FALSE(not_there->mounted);
  ASSERT_FALSE(not_there->upload_session.empty());
  auto posts_before = reg.counters().count(CallKind::UploadStart);
  auto uploaded =
      sync_wait(h.client->upload_blob({registry.host(), "third/app"}, absent,
                                      std::make_shared<const std::string>(absent_bytes), not_there->upload_session));
  ASSERT_TRUE(uploaded.ok()) << uploaded.error().message;
  EXPECT_EQ(reg.counters().count(CallKind::UploadStart), posts_before);
  EXPECT_EQ(reg.counters().count(CallKind::UploadCancel), 0u);
  EXPECT_EQ(testing::curl_blob(registry, "third/app", absent), absent_bytes);
  std::size_t deletes = 0;
  for (const auto& r : registry.requests()) deletes += r.method == "DELETE";
  EXPECT_EQ(deletes, 0u);
}

}  // namespace
}  // namespace fastsync
