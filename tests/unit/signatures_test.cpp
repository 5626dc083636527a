// Release signatures without the network: the payload's keys, the signed
// document's checks, oc's ConfigMap, and the resolve stage's verdict with a
// fake verifier and source; cosign attachments through the stages.
#include "release/signatures/signatures.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "registry/core/digest.h"
#include "release/payload/layer_files.h"
#include "stages/check_destination.h"
#include "stages/fetch_manifests.h"
#include "stages/push_manifests.h"
#include "stages/verify_release.h"
#include "tests/fixture/fixture.h"
#include "tests/unit/fake_registry.h"

namespace fastsync {
namespace {

using release::PublicKey;

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(VerificationKeys, ReadsBlockScalarsFromThePayloadsYaml) {
  std::string yaml =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n"
      "    release.openshift.io/verification-config-map: \"\"\n  name: release-verification\n"
      "data:\n  store-openshift-official-release: https://example.com/sigs\n"
      "  verifier-public-key-redhat: |\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n\n    mQINBF\n"
      "    =abcd\n    -----END PGP PUBLIC KEY BLOCK-----\n"
      "  verifier-public-key-beta: |-\n    KEY2\n      indented more\n"
      "  other: x\n";
  ASSERT_TRUE(release::is_verification_config_map(yaml));
  auto keys = release::parse_verification_keys(yaml, "f.yaml");
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].name, "verifier-public-key-redhat");
  EXPECT_EQ((*keys)[0].data,
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n");
  EXPECT_EQ((*keys)[1].name, "verifier-public-key-beta");
  EXPECT_EQ((*keys)[1].data, "KEY2\n  indented more");  // "|-": YAML strips the final line break

  EXPECT_FALSE(release::is_verification_config_map("kind: ConfigMap\nmetadata:\n  name: other\n"));
  auto inline_key = release::parse_verification_keys("data:\n  verifier-public-key-x: notablock\n", "g.yaml");
  ASSERT_FALSE(inline_key.ok());
  EXPECT_NE(inline_key.error().message.find("g.yaml: line 2: verifier-public-key-x is not a block of text"),
            std::string::npos)
      << inline_key.error().message;
  auto broken = release::parse_verification_keys("data:\n  verifier-public-key-x: |\n  - [unclosed\n", "h.yaml");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("h.yaml: line "), std::string::npos) << broken.error().message;
}

TEST(VerificationKeys, ReadsJsonConfigMaps) {
  auto keys = release::parse_verification_keys(
      R"({"kind":"ConfigMap","data":{"verifier-public-key-a":"KEY-A","store-x":"https://x"}})", "f.json");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].data, "KEY-A");
}

TEST(SignedDocument, ChecksTypeDigestAndIdentity) {
  auto doc = [](const std::string& type, const std::string& digest, const std::string& identity) {
    return R"({"critical":{"type":")" + type + R"(","image":{"docker-manifest-digest":")" + digest +
           R"("},"identity":{"docker-reference":")" + identity + R"("}},"optional":{}})";
  };
  auto ok = release::check_signed_document(doc("atomic container signature", kDigest, "quay.io/x:4"), kDigest);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "quay.io/x:4");
  auto wrong_type = release::check_signed_document(doc("cosign container image signature", kDigest, "q"), kDigest);
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.error().kind, ErrorKind::Unverified);
  auto other = "sha256:" + std::string(64, 'b');
  auto wrong_digest = release::check_signed_document(doc("atomic container signature", other, "q"), kDigest);
  ASSERT_FALSE(wrong_digest.ok());
  EXPECT_NE(wrong_digest.error().message.find("signs " + other), std::string::npos);
  EXPECT_FALSE(release::check_signed_document(doc("atomic container signature", kDigest, ""), kDigest).ok());
  EXPECT_FALSE(release::check_signed_document("not json", kDigest).ok());
}

TEST(SignatureConfigMap, IsWhatOcWrites) {
  EXPECT_EQ(release::signature_config_map_file(kDigest), "signature-sha256-aaaaaaaaaaaaaaaa.json");
  std::string json = release::signature_config_map_json(kDigest, {"first", std::string("sec\0ond", 7)});
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_TRUE(d.IsObject());
  EXPECT_STREQ(d["kind"].GetString(), "ConfigMap");
  EXPECT_EQ(std::string(d["metadata"]["name"].GetString()), "sha256-" + std::string(64, 'a'));
  EXPECT_STREQ(d["metadata"]["namespace"].GetString(), "openshift-config-managed");
  EXPECT_STREQ(d["metadata"]["labels"]["release.openshift.io/verification-signatures"].GetString(), "");
  const auto& data = d["binaryData"];
  ASSERT_EQ(data.MemberCount(), 2u);
  EXPECT_EQ(base64_decode(data[("sha256-" + std::string(64, 'a') + "-1").c_str()].GetString()), "first");
  EXPECT_EQ(base64_decode(data[("sha256-" + std::string(64, 'a') + "-2").c_str()].GetString()),
            std::string("sec\0ond", 7));
}

// The payload's ConfigMap is found by its annotation, whatever the file is called.
TEST(LayerFiles, SearchFindsAnnotatedManifestsRespectingWhiteouts) {
  struct Bytes : BlobReader {
    std::string data;
    std::size_t at = 0;
    explicit Bytes(std::string d) : data(std::move(d)) {}
    Result<std::size_t> read(char* buffer, std::size_t capacity) override {
      std::size_t n = std::min(capacity, data.size() - at);
      std::copy_n(data.data() + at, n, buffer);
      at += n;
      return n;
    }
  };
  std::string annotated = std::string("kind: ConfigMap\n  ") + release::kVerificationConfigMapAnnotation + ": \"\"\n";
  auto lower = fixture::make_layer({{"release-manifests/", "", true},
                                    {"release-manifests/old-keys.yaml", annotated + "# old\n", false},
                                    {"release-manifests/gone.yaml", annotated, false}});
  auto upper = fixture::make_layer({{"release-manifests/", "", true},
                                    {"release-manifests/image-references", "refs", false},
                                    {"release-manifests/.wh.gone.yaml", "", false},
                                    {"release-manifests/keys.yaml", annotated, false},
                                    {"release-manifests/other.yaml", "kind: ConfigMap\n", false}});
  std::vector<release::Layer> layers{{lower.digest, [&] { return std::make_unique<Bytes>(lower.compressed); }},
                                     {upper.digest, [&] { return std::make_unique<Bytes>(upper.compressed); }}};
  release::FileSearch search{"release-manifests", 1u << 20, [](const std::string&, std::string_view content) {
                               return release::is_verification_config_map(content);
                             }};
  // Wanting a file only the lower layer decides makes both layers read.
  auto files = release::read_layer_files(layers, {"release-manifests/image-references", "release-manifests/absent"},
                                         1u << 20, &search);
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(files->count("release-manifests/keys.yaml"), 1u);
  EXPECT_EQ(files->count("release-manifests/old-keys.yaml"), 1u);
  EXPECT_EQ(files->count("release-manifests/gone.yaml"), 0u);  // whited out above
  EXPECT_EQ(files->count("release-manifests/other.yaml"), 0u);
}

// --- the resolve stage's verdict, with a fake source and verifier ---

struct FakeSource : SignatureSource {
  FetchedSignatures answer;
  int asked = 0;
  Task<FetchedSignatures> release_signatures(const std::string&) override {
    ++asked;
    co_return answer;
  }
};

struct FakeVerifier : release::SignatureVerifier {
  Result<release::VerifiedSignature> verify(const SignatureCandidate& c, const std::string&) override {
    if (c.bytes.rfind("good", 0) == 0) return release::VerifiedSignature{c.origin, c.bytes, "test-key", "id"};
    return Error::make(ErrorKind::Unverified, c.origin + ": bad signature");
  }
};

release::Release a_release(std::vector<PublicKey> keys) {
  release::Release r;
  r.tag = "4.20.8-x86_64";
  r.manifest.digest = kDigest;
  r.verification_keys = std::move(keys);
  r.verification_file = "release-manifests/keys.yaml";
  return r;
}

TEST(VerifyRelease, KeepsVerifiedOnesOnceAndSaysWhyOthersWereRefused) {
  FakeSource source;
  source.answer.found = {{"store-a/1", "good-1"}, {"store-a/2", "evil"}, {"store-b/1", "good-1"}};
  source.answer.problems = {"signature store store-c: cannot connect"};
  std::vector<PublicKey> seen_keys;
  stages::SignatureSettings settings;
  settings.source = &source;
  settings.make_verifier =
      [&](const std::vector<PublicKey>& keys) -> Result<std::unique_ptr<release::SignatureVerifier>> {
    seen_keys = keys;
    return std::unique_ptr<release::SignatureVerifier>(std::make_unique<FakeVerifier>());
  };
  auto check = sync_wait(stages::verify_release_signatures(settings, a_release({{"verifier-public-key-x", "K"}})));
  EXPECT_TRUE(check.checked);
  ASSERT_EQ(check.verified.size(), 1u);  // the same bytes from two stores count once
  EXPECT_EQ(check.verified[0].origin, "store-a/1");
  ASSERT_EQ(check.rejected.size(), 1u);
  EXPECT_EQ(check.rejected[0], "store-a/2: bad signature");
  EXPECT_EQ(check.problems.size(), 1u);
  ASSERT_EQ(seen_keys.size(), 1u);
  EXPECT_EQ(seen_keys[0].name, "verifier-public-key-x");  // the payload's keys, no keyring given
  EXPECT_NE(check.keys.find("release-manifests/keys.yaml"), std::string::npos);
  EXPECT_TRUE(check.warning(a_release({})).empty());

  // A keyring given wins over the payload.
  settings.keyring = {{"/etc/keys.gpg", "K2"}};
  sync_wait(stages::verify_release_signatures(settings, a_release({{"verifier-public-key-x", "K"}})));
  ASSERT_EQ(seen_keys.size(), 1u);
  EXPECT_EQ(seen_keys[0].name, "/etc/keys.gpg");
}

TEST(VerifyRelease, NoKeysOrNoSignaturesIsAWarningNotASilentPass) {
  FakeSource source;
  stages::SignatureSettings settings;
  settings.source = &source;
  settings.make_verifier = [](const std::vector<PublicKey>&) -> Result<std::unique_ptr<release::SignatureVerifier>> {
    return std::unique_ptr<release::SignatureVerifier>(std::make_unique<FakeVerifier>());
  };
  auto no_keys = sync_wait(stages::verify_release_signatures(settings, a_release({})));
  EXPECT_TRUE(no_keys.verified.empty());
  EXPECT_EQ(source.asked, 0);
  EXPECT_NE(no_keys.warning(a_release({})).find("--signature-keyring"), std::string::npos);

  auto none = sync_wait(stages::verify_release_signatures(settings, a_release({{"k", "K"}})));
  EXPECT_EQ(source.asked, 1);
  EXPECT_NE(none.warning(a_release({})).find("none found"), std::string::npos);
  EXPECT_NE(none.warning(a_release({})).find("4.20.8-x86_64"), std::string::npos);

  stages::SignatureSettings off;  // --no-signatures
  auto skipped = sync_wait(stages::verify_release_signatures(off, a_release({{"k", "K"}})));
  EXPECT_FALSE(skipped.checked);
  EXPECT_TRUE(skipped.warning(a_release({})).empty());
}

// --- cosign attachments through the stages ---

const Repository kSrc{"quay.example", "ocp/art-dev"};
const Repository kDst{"mirror.example", "openshift/release"};

stages::ImageJob job_for(const std::string& digest) {
  stages::ImageJob job;
  job.name = "multi";
  job.source = kSrc;
  job.digest = digest;
  job.dest = kDst;
  job.tag = "4.20.8-x86_64-multi";
  return job;
}

TEST(Sigstore, SignaturesOfTheImageAndItsChildrenArePushedAfterIt) {
  testing::FakeRegistry fake;
  stages::RunControl run;
  std::string amd = fake.add_image(kSrc, {"base", "amd"});
  std::string arm = fake.add_image(kSrc, {"base", "arm"});
  std::string list = fake.add_list(kSrc, {amd, arm});
  std::string list_sig = fake.add_image(kSrc, {"signature of the list"}, /*oci=*/true, sigstore_tag(list));
  std::string amd_sig = fake.add_image(kSrc, {"signature of amd"}, /*oci=*/true, sigstore_tag(amd));

  stages::FetchManifests fetch(fake, run, /*sigstore=*/true);
  auto fetched = sync_wait(fetch(job_for(list)));
  ASSERT_FALSE(fetched.error) << fetched.error->message;
  ASSERT_EQ(fetched.job.attachments.size(), 2u);
  EXPECT_EQ(run.progress.attachments_found.load(), 2u);
  std::set<std::string> blobs;
  for (const auto& b : fetched.job.blobs) blobs.insert(b.digest);
  EXPECT_TRUE(blobs.count(sha256_digest("signature of the list")));  // copied in the shared blob pool

  // The blobs arrive as the graph would copy them, then the push.
  for (const auto& b : fetched.job.blobs) {
    auto bytes = fake.snapshot(kSrc).blobs.at(b.digest);
    ASSERT_TRUE(sync_wait(fake.upload_blob(kDst, b.digest, std::make_shared<const std::string>(bytes), "")).ok());
  }
  stages::PushManifests push(fake, run);
  auto outcome = sync_wait(push(fetched.job));
  ASSERT_EQ(outcome.status, stages::ImageStatus::Copied) << outcome.error;
  auto dest = fake.snapshot(kDst);
  EXPECT_EQ(dest.tags.at(sigstore_tag(list)), list_sig);
  EXPECT_EQ(dest.tags.at(sigstore_tag(amd)), amd_sig);
  EXPECT_EQ(dest.tags.count(sigstore_tag(arm)), 0u);
  EXPECT_EQ(run.progress.attachments_copied.load(), 2u);
  // Order: the image's tag before any signature.
  std::vector<std::string> puts;
  for (const auto& e : fake.events()) {
    if (e.op == "put_manifest") puts.push_back(e.ref);
  }
  auto tag_at = std::find(puts.begin(), puts.end(), "4.20.8-x86_64-multi");
  auto sig_at = std::find(puts.begin(), puts.end(), sigstore_tag(list));
  ASSERT_NE(tag_at, puts.end());
  EXPECT_LT(tag_at, sig_at);

  // Present with its signatures: skipped. A signature the destination lacks: copied again.
  stages::CheckDestination check(fake, fake, run, /*sigstore=*/true);
  auto present = sync_wait(check(job_for(list)));
  ASSERT_FALSE(present.error);
  EXPECT_TRUE(present.job.present);
  std::string arm_sig = fake.add_image(kSrc, {"signature of arm"}, /*oci=*/true, sigstore_tag(arm));
  auto stale = sync_wait(check(job_for(list)));
  ASSERT_FALSE(stale.error);
  EXPECT_FALSE(stale.job.present);
  (void)arm_sig;

  // Without sigstore nothing is looked up.
  stages::FetchManifests plain(fake, run);
  auto without = sync_wait(plain(job_for(list)));
  EXPECT_TRUE(without.job.attachments.empty());
}

// A referrer already found as a tagged signature is listed once, under its tag.
TEST(Sigstore, ReferrersAlreadyFoundAreListedOnce) {
  std::string sig = sha256_digest("sig"), sbom = sha256_digest("sbom");
  std::vector<Attachment> found{{"sha256-abc.sig", sig}};
  add_referrers(found, {sig, sbom, sbom});
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].tag, "sha256-abc.sig");
  EXPECT_EQ(found[1].tag, "");
  EXPECT_EQ(found[1].digest, sbom);
}

}  // namespace
}  // namespace fastsync
