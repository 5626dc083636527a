// image-references / release-metadata validation and layer merging rules.
#include <gtest/gtest.h>

#include <cstring>

#include "registry/core/digest.h"
#include "release/payload/image_references.h"
#include "release/payload/layer_files.h"
#include "tests/fixture/fixture.h"

namespace fastsync::release {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'b');

std::string refs_with(const std::string& tags, const std::string& kind = "ImageStream") {
  return R"({"kind":")" + kind +
         R"(","apiVersion":"image.openshift.io/v1","metadata":{"name":"4.20.8"},"spec":{"tags":[)" + tags + "]}}";
}
std::string tag(const std::string& name, const std::string& from, const std::string& kind = "DockerImage") {
  return R"({"name":")" + name + R"(","from":{"kind":")" + kind + R"(","name":")" + from + R"("}})";
}

TEST(ImageReferences, ParsesPinnedComponents) {
  auto refs =
      parse_image_references(refs_with(tag("etcd", "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + kDigest) + "," +
                                       tag("cli", "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + kDigest)));
  ASSERT_TRUE(refs.ok()) << refs.error().message;
  EXPECT_EQ(refs->name, "4.20.8");
  ASSERT_EQ(refs->components.size(), 2u);
  EXPECT_EQ(refs->components[0].name, "etcd");
  EXPECT_EQ(refs->components[0].image.registry, "quay.io");
  EXPECT_EQ(refs->components[0].image.repository, "openshift-release-dev/ocp-v4.0-art-dev");
  EXPECT_EQ(refs->components[1].image.digest, kDigest);
}

struct BadCase {
  std::string label;
  std::string json;
  std::string expected;  // must appear in the message
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.label; }

class ImageReferencesRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ImageReferencesRejects, WithOneLineNamingTheProblem) {
  auto refs = parse_image_references(GetParam().json);
  ASSERT_FALSE(refs.ok());
  EXPECT_EQ(refs.error().kind, ErrorKind::Invalid);
  EXPECT_NE(refs.error().message.find(GetParam().expected), std::string::npos) << refs.error().message;
  EXPECT_EQ(refs.error().message.find('\n'), std::string::npos);
  EXPECT_EQ(refs.error().message.rfind("image-references:", 0), 0u) << refs.error().message;
}

const std::string kFrom = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + kDigest;

INSTANTIATE_TEST_SUITE_P(
    Malformed, ImageReferencesRejects,
    ::testing::Values(
        BadCase{"NotJson", "{\"kind\": \"ImageStream\", ", "not valid JSON"},
        BadCase{"WrongKind", refs_with(tag("etcd", kFrom), "ImageStreamList"), "kind is \"ImageStreamList\""},
        BadCase{"NoDigest", refs_with(tag("etcd", "quay.io/openshift-release-dev/ocp-v4.0-art-dev:latest")),
                "tag \"etcd\": from.name \"quay.io/openshift-release-dev/ocp-v4.0-art-dev:latest\" is not pinned"},
        BadCase{"Duplicate", refs_with(tag("etcd", kFrom) + "," + tag("etcd", kFrom)),
                "tag \"etcd\" appears more than once"},
        BadCase{"Empty", refs_with(""), "spec.tags is empty"},
        BadCase{"NoName", refs_with(R"({"from":{"kind":"DockerImage","name":")" + kFrom + R"("}})"),
                "spec.tags[0] has no name"},
        BadCase{"WrongFromKind", refs_with(tag("etcd", kFrom, "ImageStreamTag")), "from.kind is \"ImageStreamTag\""},
        BadCase{"BadReference", refs_with(tag("etcd", "not a reference@" + kDigest)), "tag \"etcd\""},
        BadCase{"NoTags", R"({"kind":"ImageStream","spec":{}})", "spec.tags is missing"}),
    [](const ::testing::TestParamInfo<BadCase>& param_info) { return param_info.param.label; });

TEST(ReleaseMetadata, ParsesAndRejects) {
  auto meta =
      parse_release_metadata(R"({"kind":"cincinnati-metadata-v0","version":"4.20.8","previous":["4.20.7","4.19.3"]})");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->version, "4.20.8");
  EXPECT_EQ(meta->previous.size(), 2u);
  auto none = parse_release_metadata(R"({"kind":"cincinnati-metadata-v0"})");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("release-metadata: version is missing"), std::string::npos);
  EXPECT_FALSE(parse_release_metadata("[").ok());
}

// In-memory layers for read_layer_files.
class Bytes : public BlobReader {
 public:
  Bytes(std::string b, std::string digest) : b_(std::move(b)), digest_(std::move(digest)) {}
  Result<std::size_t> read(char* buf, std::size_t cap) override {
    std::size_t n = std::min(cap, b_.size() - pos_);
    std::memcpy(buf, b_.data() + pos_, n);
    pos_ += n;
    if (n == 0 && sha256_digest(b_) != digest_) return Error::make(ErrorKind::DigestMismatch, "layer digest mismatch");
    return n;
  }

 private:
  std::string b_;
  std::string digest_;
  std::size_t pos_ = 0;
};

struct Layers {
  std::vector<Layer> layers;
  std::vector<int> opened;
  void add(const std::vector<fixture::TarEntry>& entries, bool corrupt = false) {
    auto l = fixture::make_layer(entries);
    std::string bytes = l.compressed;
    if (corrupt) bytes[bytes.size() / 2] ^= 0x55;
    int index = static_cast<int>(layers.size());
    layers.push_back(Layer{l.digest, [this, bytes, d = l.digest, index] {
                             opened.push_back(index);
                             return std::make_unique<Bytes>(bytes, d);
                           }});
  }
};

const std::vector<std::string> kWanted = {"release-manifests/image-references", "release-manifests/release-metadata"};

TEST(LayerFiles, TopLayerWinsAndLowerLayersAreNotRead) {
  Layers l;
  l.add({{"release-manifests/image-references", "old", false},
         {"release-manifests/release-metadata", "old-meta", false}});
  l.add({{"release-manifests/", "", true},
         {"./release-manifests/image-references", "new", false},
         {"release-manifests/release-metadata", "new-meta", false}});
  auto files = read_layer_files(l.layers, kWanted);
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(files->at("release-manifests/image-references"), "new");
  EXPECT_EQ(files->at("release-manifests/release-metadata"), "new-meta");
  EXPECT_EQ(l.opened, std::vector<int>{1});  // the base layer was never downloaded
}

TEST(LayerFiles, FilesSplitAcrossLayersAreMerged) {
  Layers l;
  l.add({{"release-manifests/release-metadata", "meta", false}});
  l.add({{"usr/bin/cvo", "binary", false}});
  l.add({{"release-manifests/image-references", "refs", false}});
  auto files = read_layer_files(l.layers, kWanted);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->at("release-manifests/image-references"), "refs");
  EXPECT_EQ(files->at("release-manifests/release-metadata"), "meta");
  EXPECT_EQ(l.opened, (std::vector<int>{2, 1, 0}));
}

TEST(LayerFiles, WhiteoutDeletesTheLowerFile) {
  Layers l;
  l.add({{"release-manifests/image-references", "refs", false}, {"release-manifests/release-metadata", "meta", false}});
  l.add({{"release-manifests/.wh.image-references", "", false}});
  auto files = read_layer_files(l.layers, kWanted);
  ASSERT_TRUE(files.ok());
  EXPECT_FALSE(files->count("release-manifests/image-references"));
  EXPECT_EQ(files->at("release-manifests/release-metadata"), "meta");
}

TEST(LayerFiles, OpaqueDirectoryHidesLowerContentButNotItsOwn) {
  Layers l;
  l.add({{"release-manifests/image-references", "refs", false}, {"release-manifests/release-metadata", "old", false}});
  l.add({{"release-manifests/", "", true},
         {"release-manifests/.wh..wh..opq", "", false},
         {"release-manifests/release-metadata", "new", false}});
  auto files = read_layer_files(l.layers, kWanted);
  ASSERT_TRUE(files.ok());
  EXPECT_FALSE(files->count("release-manifests/image-references"));
  EXPECT_EQ(files->at("release-manifests/release-metadata"), "new");
  EXPECT_EQ(l.opened, std::vector<int>{1});
}

TEST(LayerFiles, WhitedOutDirectoryAndReAddedFile) {
  Layers l;
  l.add({{"release-manifests/image-references", "oldest", false}, {"release-manifests/release-metadata", "m", false}});
  l.add({{".wh.release-manifests", "", false}});
  l.add({{"release-manifests/image-references", "fresh", false}});
  auto files = read_layer_files(l.layers, kWanted);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->at("release-manifests/image-references"), "fresh");
  EXPECT_FALSE(files->count("release-manifests/release-metadata"));  // its directory was deleted below
}

TEST(LayerFiles, ACorruptLayerIsAnErrorNotData) {
  Layers l;
  l.add({{"release-manifests/image-references", "refs", false}, {"release-manifests/release-metadata", "m", false}},
        /*corrupt=*/true);
  auto files = read_layer_files(l.layers, kWanted);
  EXPECT_FALSE(files.ok());
}

}  // namespace
}  // namespace fastsync::release
