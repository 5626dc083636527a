#include "registry/core/manifest.h"

#include <gtest/gtest.h>

#include "registry/core/digest.h"

namespace fastsync {
namespace {

std::string d(char c) { return "sha256:" + std::string(64, c); }

TEST(Manifest, ParsesDockerImage) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":")" +
                     d('a') + R"("},
    "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":")" +
                     d('b') + R"("},
              {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":16724,"digest":")" +
                     d('c') + R"("}]})";
  auto m = parse_manifest(body, "");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_FALSE(m->is_list);
  EXPECT_EQ(m->media_type, media_type::kDockerManifest);
  EXPECT_EQ(m->config.digest, d('a'));
  EXPECT_EQ(m->config.size, 7023u);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].digest, d('c'));
  EXPECT_EQ(m->layers[1].size, 16724u);
}

TEST(Manifest, ParsesOciIndexWithoutMediaTypeField) {
  std::string body = R"({"schemaVersion":2,"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":500,"digest":")" +
                     d('1') + R"(","platform":{"os":"linux","architecture":"amd64"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":501,"digest":")" +
                     d('2') + R"(","platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]})";
  auto m = parse_manifest(body, "application/vnd.oci.image.index.v1+json; charset=utf-8");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->is_list);
  EXPECT_EQ(m->media_type, media_type::kOciIndex);
  ASSERT_EQ(m->children.size(), 2u);
  EXPECT_EQ(m->children[1].platform.str(), "linux/arm64/v8");
  ASSERT_NE(find_platform(*m, "linux/arm64"), nullptr);
  EXPECT_EQ(find_platform(*m, "linux/arm64")->digest, d('2'));
  EXPECT_EQ(find_platform(*m, "linux/amd64")->digest, d('1'));
  EXPECT_EQ(find_platform(*m, "linux/s390x"), nullptr);
}

TEST(Manifest, ParsesDockerListAndOciManifest) {
  std::string list =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
    {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":")" +
      d('3') + R"(","platform":{"os":"linux","architecture":"ppc64le"}}]})";
  auto l = parse_manifest(list, "");
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->is_list);
  EXPECT_EQ(l->media_type, media_type::kDockerList);

  std::string oci =
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":")" +
      d('4') + R"("},"layers":[]})";
  auto o = parse_manifest(oci, "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->media_type, media_type::kOciManifest);
  EXPECT_TRUE(o->layers.empty());
}

TEST(Manifest, RejectsWhatCannotBeCopiedSafely) {
  EXPECT_FALSE(parse_manifest("not json", "").ok());
  auto schema1 = parse_manifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})", "application/json");
  ASSERT_FALSE(schema1.ok());
  EXPECT_NE(schema1.error().message.find("schema 1"), std::string::npos);
  auto bad_digest = parse_manifest(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"size":1,"digest":"sha256:xyz"},"layers":[]})",
      "");
  ASSERT_FALSE(bad_digest.ok());
  EXPECT_NE(bad_digest.error().message.find("config"), std::string::npos);
  auto no_size = parse_manifest(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" + d('5') +
          R"("},"layers":[]})",
      "");
  EXPECT_FALSE(no_size.ok());
  auto odd_type = parse_manifest(R"({"schemaVersion":2,"mediaType":"application/vnd.example+json"})", "");
  EXPECT_FALSE(odd_type.ok());
}

}  // namespace
}  // namespace fastsync
