// Release signatures and cosign signatures, end to end: a release signed with
// a test key (gpg), a local signature store, real registries; results read
// back with skopeo, the curl CLI and the files themselves.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>

#include "registry/core/digest.h"
#include "tests/support/mirror_check.h"
#include "tests/support/process.h"
#include "tests/support/registries.h"

namespace fastsync::testing {
namespace {

// A GnuPG home with one signing key (no passphrase), made with the gpg CLI.
// `faked_time`: the key's creation time, for signatures that have expired.
class TestKey {
 public:
  TestKey(const std::string& dir, const std::string& name, const std::string& faked_time = {})
      : home_(dir + "/gnupg-" + name) {
    std::filesystem::create_directories(home_);
    ::chmod(home_.c_str(), 0700);
    std::vector<std::string> argv = {"gpg", "--batch", "--homedir", home_, "--passphrase", ""};
    if (!faked_time.empty()) argv.insert(argv.end(), {"--faked-system-time", faked_time});
    argv.insert(argv.end(), {"--quick-gen-key", name + " <" + name + "@example.com>", "ed25519", "sign", "never"});
    auto made = run_command(argv);
    if (made.exit_code != 0) throw std::runtime_error("gpg --quick-gen-key: " + made.err);
    auto listed = run_command({"gpg", "--batch", "--homedir", home_, "--with-colons", "--list-keys"});
    for (std::size_t at = listed.out.find("\nfpr:"); at != std::string::npos;) {
      auto end = listed.out.find('\n', at + 1);
      std::string line = listed.out.substr(at + 1, end - at - 1);
      fingerprint_ = line.substr(0, line.rfind(':'));
      fingerprint_ = fingerprint_.substr(fingerprint_.rfind(':') + 1);
      break;
    }
    public_key_ = dir + "/" + name + ".asc";
    auto exported = run_command({"gpg", "--batch", "--homedir", home_, "--armor", "--export", fingerprint_});
    write_file(public_key_, exported.out);
    if (fingerprint_.empty() || exported.out.empty()) throw std::runtime_error("gpg: no key made");
  }
  ~TestKey() { run_command({"gpgconf", "--homedir", home_, "--kill", "all"}); }
  TestKey(const TestKey&) = delete;
  TestKey& operator=(const TestKey&) = delete;

  const std::string& home() const { return home_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& public_key() const { return public_key_; }

  // An OpenPGP signed message of `document`, as `gpg --sign` makes it.
  std::string sign(const std::string& document, const std::vector<std::string>& extra = {}) const {
    write_file(home_ + "/document", document);
    std::vector<std::string> argv = {"gpg", "--batch", "--homedir", home_, "--yes", "--output", home_ + "/signed"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {"--sign", home_ + "/document"});
    auto r = run_command(argv);
    if (r.exit_code != 0) throw std::runtime_error("gpg --sign: " + r.err);
    return read_file(home_ + "/signed");
  }

 private:
  std::string home_;
  std::string fingerprint_;
  std::string public_key_;
};

// The document Red Hat signs for a release.
std::string signed_document(const std::string& digest) {
  return R"({"critical":{"identity":{"docker-reference":"quay.io/openshift-release-dev/ocp-release:4.20.8-x86_64"},)"
         R"("image":{"docker-manifest-digest":")" +
         digest + R"("},"type":"atomic container signature"},"optional":{}})";
}

class SignatureStore {
 public:
  explicit SignatureStore(const std::string& root)
      : root_(root),
        log_(root + ".log"),
        server_({"/usr/bin/python3", source_dir() + "/tests/servers/signature_store.py", "--root", root}, log_) {
    url_ = "http://127.0.0.1:" + server_.wait_ready().at("port");
  }
  const std::string& url() const { return url_; }
  std::string requests() const { return read_file(log_); }
  void put(const std::string& digest, int n, const std::string& bytes) const {
    std::string dir = root_ + "/sha256=" + digest.substr(7);
    std::filesystem::create_directories(dir);
    write_file(dir + "/signature-" + std::to_string(n), bytes);
  }
  void stop() { server_.stop(); }

 private:
  std::string root_;
  std::string log_;
  Process server_;
  std::string url_;
};

struct ConfigMap {
  std::string name, namespace_, label;
  bool labelled = false;
  std::vector<std::pair<std::string, std::string>> binary;  // key, decoded bytes
};

ConfigMap read_config_map(const std::string& path) {
  rapidjson::Document d;
  std::string text = read_file(path);
  d.Parse(text.c_str());
  if (d.HasParseError() || !d.IsObject()) throw std::runtime_error(path + ": not JSON");
  ConfigMap m;
  EXPECT_STREQ(d["apiVersion"].GetString(), "v1");
  EXPECT_STREQ(d["kind"].GetString(), "ConfigMap");
  m.name = d["metadata"]["name"].GetString();
  m.namespace_ = d["metadata"]["namespace"].GetString();
  const auto& labels = d["metadata"]["labels"];
  m.labelled = labels.HasMember("release.openshift.io/verification-signatures");
  if (m.labelled) m.label = labels["release.openshift.io/verification-signatures"].GetString();
  for (const auto& e : d["binaryData"].GetObject()) {
    m.binary.emplace_back(e.name.GetString(), base64_decode(e.value.GetString()).value_or("<not base64>"));
  }
  return m;
}

std::string config_map_path(const std::string& dir, const std::string& digest) {
  return dir + "/signature-sha256-" + digest.substr(7, 16) + ".json";
}

std::vector<std::string> mirror_args(const TestRegistry& source, const TestRegistry& dest, const std::string& secret) {
  return {"--version",       "4.20.8",    "--source-registry", source.host() + "/openshift-release-dev/ocp-release",
          "--dest-registry", dest.host(), "--pull-secret",     secret,
          "--insecure",      "-q"};
}

class Signatures : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::make_unique<TestKey>(dir_.path(), "release-key");
    store_ = std::make_unique<SignatureStore>(dir_.file("store"));
    secret_ = write_pull_secret(dir_.file("ps.json"), {});
  }
  // A release whose payload carries the test key, signed into the store, with
  // cosign signatures for the release, every 2nd component and one list's children.
  FixtureRelease push_signed(const TestRegistry& reg, bool sign = true) {
    FixtureArgs a;
    a.components = 10;
    a.verification_key_file = key_->public_key();
    if (sign) {
      a.sign_key = key_->fingerprint();
      a.gnupg_home = key_->home();
      a.signature_store_dir = dir_.file("store");
    }
    a.sigstore_every = 2;
    return push_fixture(reg, a);
  }

  TempDir dir_{"fastsync-signatures"};
  std::unique_ptr<TestKey> key_;
  std::unique_ptr<SignatureStore> store_;
  std::string secret_;
};

// The ConfigMap holds exactly the bytes the store served, named as oc names
// it; the keys came from the payload (no --signature-keyring); every .sig tag
// is at the destination, byte for byte.
TEST_F(Signatures, ConfigMapHoldsWhatTheStoreServedAndSigTagsArrive) {
  TestRegistry source, dest;
  auto fixture = push_signed(source);
  ASSERT_FALSE(fixture.release_signature.empty());
  ASSERT_GE(fixture.sigstore.size(), 6u);
  bool child_signed = false;
  for (const auto& c : fixture.components) {
    for (const auto& sig : fixture.sigstore) {
      for (const auto& child : c.children) child_signed = child_signed || sig.subject == child;
    }
  }
  ASSERT_TRUE(child_signed) << "the fixture should sign a manifest list's children";

  auto args = mirror_args(source, dest, secret_);
  args.insert(args.end(), {"--signature-store", store_->url(), "--signature-dir", dir_.file("out"), "--report",
                           dir_.file("report.json")});
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(check_mirror(source, dest, "openshift/release", fixture).empty());

  std::string digest = fixture.release.digest;
  auto cm = read_config_map(config_map_path(dir_.file("out"), digest));
  EXPECT_EQ(cm.name, "sha256-" + digest.substr(7));
  EXPECT_EQ(cm.namespace_, "openshift-config-managed");
  EXPECT_TRUE(cm.labelled);
  EXPECT_EQ(cm.label, "");
  ASSERT_EQ(cm.binary.size(), 1u);
  EXPECT_EQ(cm.binary[0].first, "sha256-" + digest.substr(7) + "-1");
  EXPECT_EQ(cm.binary[0].second, read_file(fixture.release_signature));
  EXPECT_NE(r.out.find("oc apply -f " + config_map_path(dir_.file("out"), digest)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verifier-public-key-fastsync-test"), std::string::npos) << r.out;

  for (const auto& sig : fixture.sigstore) {
    std::string at_source = skopeo_raw_manifest(source, sig.repository + ":" + sig.tag);
    ASSERT_FALSE(at_source.empty()) << sig.tag;
    EXPECT_EQ(skopeo_raw_manifest(dest, "openshift/release:" + sig.tag), at_source) << sig.tag;
    EXPECT_EQ(sha256_digest(at_source), sig.digest);
  }
  rapidjson::Document report;
  std::string text = read_file(dir_.file("report.json"));
  report.Parse(text.c_str());
  ASSERT_TRUE(report.IsObject());
  EXPECT_EQ(report["signatures"]["verified"].Size(), 1u);
  EXPECT_EQ(report["sigstore"]["copied"].GetUint64(), fixture.sigstore.size());
  EXPECT_EQ(report["sigstore"]["failed"].GetUint64(), 0u);

  // Again: everything present, signatures included; nothing copied.
  auto again = run_fastsync(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find(fmt::format("sigstore: {} found, 0 copied, {} already present", fixture.sigstore.size(),
                                       fixture.sigstore.size())),
            std::string::npos)
      << again.out;
}

// A wrong key or no signature at all, with --require-signatures: exit 3,
// one line saying why, nothing tagged at the destination, no ConfigMap.
TEST_F(Signatures, RequireSignaturesRefusesWrongKeyAndMissingSignature) {
  TestRegistry source, dest;
  auto fixture = push_signed(source);
  TestKey other(dir_.path(), "someone-else");

  auto wrong_key = mirror_args(source, dest, secret_);
  wrong_key.insert(wrong_key.end(), {"--signature-store", store_->url(), "--signature-keyring", other.public_key(),
                                     "--signature-dir", dir_.file("out"), "--require-signatures"});
  auto r = run_fastsync(wrong_key);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("no verified signature"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not among the keys"), std::string::npos) << r.err;
  EXPECT_TRUE(catalog(dest).empty());
  EXPECT_FALSE(std::filesystem::exists(config_map_path(dir_.file("out"), fixture.release.digest)));

  TempDir empty_store_dir("fastsync-empty-store");
  SignatureStore empty_store(empty_store_dir.file("store"));
  std::filesystem::create_directories(empty_store_dir.file("store"));
  auto missing = mirror_args(source, dest, secret_);
  missing.insert(missing.end(),
                 {"--signature-store", empty_store.url(), "--signature-dir", dir_.file("out"), "--require-signatures"});
  r = run_fastsync(missing);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("none found"), std::string::npos) << r.err;
  EXPECT_NE(empty_store.requests().find("signature-1"), std::string::npos) << "the store was never asked";
  EXPECT_TRUE(catalog(dest).empty());

  // Without --require-signatures the mirror goes ahead, with one warning line.
  missing.pop_back();
  r = run_fastsync(missing);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("fastsync: warning: release 4.20.8-x86_64"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("signatures: warning:"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(config_map_path(dir_.file("out"), fixture.release.digest)));
}

// Signatures that fail verification are never written: a flipped byte, one
// signing another digest, and an expired one sit beside the good one; the
// ConfigMap holds the good one only.
TEST_F(Signatures, OnlyVerifiedSignaturesAreWritten) {
  TestRegistry source, dest;
  auto fixture = push_signed(source, /*sign=*/false);
  std::string digest = fixture.release.digest;
  std::string good = key_->sign(signed_document(digest));
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x01);
  std::string other_digest = key_->sign(signed_document(sha256_digest("another release")));
  // Made in 2020 with a day's validity: expired now (the key must predate it).
  TestKey old_key(dir_.path(), "old-key", "20190101T000000!");
  std::string expired =
      old_key.sign(signed_document(digest), {"--faked-system-time", "20200101T000000!", "--default-sig-expire", "1d"});
  store_->put(digest, 1, flipped);
  store_->put(digest, 2, other_digest);
  store_->put(digest, 3, expired);
  store_->put(digest, 4, good);

  // Both keys trusted: the expired signature fails on its expiry, not its key.
  std::string keyring = dir_.file("keyring.asc");
  write_file(keyring, read_file(key_->public_key()) + read_file(old_key.public_key()));
  auto args = mirror_args(source, dest, secret_);
  args.insert(args.end(), {"--signature-store", store_->url(), "--signature-keyring", keyring, "--signature-dir",
                           dir_.file("out"), "--require-signatures"});
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto cm = read_config_map(config_map_path(dir_.file("out"), digest));
  ASSERT_EQ(cm.binary.size(), 1u);
  EXPECT_EQ(cm.binary[0].second, good);
  EXPECT_NE(r.out.find("signature-1: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("it signs " + sha256_digest("another release")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("expired"), std::string::npos) << r.out;
}

// Across the gap: --to-dir carries the verified signature and the .sig tags;
// --from-dir, with the store gone, writes the same ConfigMap and pushes the tags.
TEST_F(Signatures, TravelAcrossTheAirGap) {
  TestRegistry source, dest;
  auto fixture = push_signed(source);
  auto out_args = std::vector<std::string>{"--version",
                                           "4.20.8",
                                           "--source-registry",
                                           source.host() + "/openshift-release-dev/ocp-release",
                                           "--to-dir",
                                           dir_.file("archive"),
                                           "--pull-secret",
                                           secret_,
                                           "--insecure",
                                           "-q",
                                           "--signature-store",
                                           store_->url(),
                                           "--require-signatures"};
  auto out = run_fastsync(out_args);
  ASSERT_EQ(out.exit_code, 0) << out.err;
  store_->stop();

  auto in = run_fastsync({"--from-dir", dir_.file("archive"), "--dest-registry", dest.host(), "--pull-secret", secret_,
                          "--insecure", "-q", "--signature-dir", dir_.file("far-side"), "--require-signatures"});
  ASSERT_EQ(in.exit_code, 0) << in.err;
  auto cm = read_config_map(config_map_path(dir_.file("far-side"), fixture.release.digest));
  ASSERT_EQ(cm.binary.size(), 1u);
  EXPECT_EQ(cm.binary[0].second, read_file(fixture.release_signature));
  for (const auto& sig : fixture.sigstore) {
    EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "openshift/release:" + sig.tag)), sig.digest) << sig.tag;
  }
  EXPECT_TRUE(check_mirror(source, dest, "openshift/release", fixture).empty());
}

// A mirror made without cosign signatures gets them on the next run.
TEST_F(Signatures, RerunAddsMissingSigTags) {
  TestRegistry source, dest;
  auto fixture = push_signed(source, /*sign=*/false);
  auto args = mirror_args(source, dest, secret_);
  args.push_back("--no-signatures");
  auto without = args;
  without.push_back("--no-sigstore");
  ASSERT_EQ(run_fastsync(without).exit_code, 0);
  auto tags = list_tags(dest, "openshift/release");
  for (const auto& t : tags) EXPECT_EQ(t.find(".sig"), std::string::npos) << t;

  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& sig : fixture.sigstore) {
    EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, "openshift/release:" + sig.tag)), sig.digest) << sig.tag;
  }
  EXPECT_TRUE(check_mirror(source, dest, "openshift/release", fixture).empty());
}

// OCI 1.1 referrers (an SBOM, say) travel with the image they refer to when the
// source answers the referrers API: pushed by digest, byte for byte, with blobs.
TEST_F(Signatures, ReferrersTravelWhereTheSourceAnswersTheApi) {
  TestRegistry source, dest;
  FixtureArgs a;
  a.components = 6;
  auto fixture = push_fixture(source, a);
  const auto& subject = fixture.components.at(2);
  const std::string repo = "openshift-release-dev/ocp-v4.0-art-dev";

  // A referrer pushed with the curl CLI: an SBOM-like artifact whose subject is one component.
  write_file(dir_.file("config.json"), "{}");
  write_file(dir_.file("sbom.json"), R"({"spdxVersion":"SPDX-2.3","name":"component"})");
  std::string config = curl_push_blob(source, repo, dir_.file("config.json"));
  std::string sbom = curl_push_blob(source, repo, dir_.file("sbom.json"));
  std::string subject_manifest = skopeo_raw_manifest(source, repo + "@" + subject.digest);
  std::string referrer = fmt::format(
      R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json",)"
      R"("config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},)"
      R"("layers":[{{"mediaType":"application/spdx+json","digest":"{}","size":{}}}],)"
      R"("subject":{{"mediaType":"{}","digest":"{}","size":{}}}}})",
      config, sbom, read_file(dir_.file("sbom.json")).size(), subject.media_type, subject.digest,
      subject_manifest.size());
  std::string referrer_digest = sha256_digest(referrer);
  write_file(dir_.file("referrer.json"), referrer);
  auto put = curl_command(source);
  for (std::string arg :
       {std::string("-f"), std::string("-X"), std::string("PUT"), std::string("-H"),
        std::string("Content-Type: application/vnd.oci.image.manifest.v1+json"), std::string("--data-binary"),
        "@" + dir_.file("referrer.json"), source.url() + "/v2/" + repo + "/manifests/" + referrer_digest}) {
    put.push_back(arg);
  }
  ASSERT_EQ(run_command(put).exit_code, 0);
  write_file(dir_.file("referrers.json"),
             fmt::format(R"({{"{}@{}":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}",)"
                         R"("size":{},"artifactType":"application/spdx+json"}}]}})",
                         repo, subject.digest, referrer_digest, referrer.size()));
  Process front({"/usr/bin/python3", source_dir() + "/tests/servers/referrers_front.py", "--upstream", source.host(),
                 "--referrers", dir_.file("referrers.json")},
                dir_.file("front.log"));
  std::string front_host = "127.0.0.1:" + front.wait_ready().at("port");

  auto args = std::vector<std::string>{
      "--version",       "4.20.8",    "--source-registry", front_host + "/openshift-release-dev/ocp-release",
      "--dest-registry", dest.host(), "--pull-secret",     secret_,
      "--insecure",      "-q",        "--no-signatures"};
  auto r = run_fastsync(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(read_file(dir_.file("front.log")).find("/referrers/" + subject.digest), std::string::npos);
  EXPECT_EQ(skopeo_raw_manifest(dest, "openshift/release@" + referrer_digest), referrer);
  EXPECT_EQ(curl_blob(dest, "openshift/release", sbom), read_file(dir_.file("sbom.json")));
  EXPECT_NE(r.out.find("sigstore: 1 found, 1 copied"), std::string::npos) << r.out;

  auto again = run_fastsync(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("sigstore: 1 found, 0 copied, 1 already present"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace fastsync::testing
