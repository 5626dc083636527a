// The endpoints router: manifests by digest are read once per run.
#include <gtest/gtest.h>

#include "registry/endpoints.h"
#include "tests/unit/fake_registry.h"

namespace fastsync {
namespace {

using testing::FakeRegistry;

const Repository kDst{"mirror.example", "openshift/release"};

TEST(Endpoints, AManifestFoundWithItsBytesIsNotReadAgainByDigest) {
  FakeRegistry network;
  std::string digest = network.add_image(kDst, {"z"}, false, "old-tag");
  Endpoints endpoints(network);
  auto standing = sync_wait(endpoints.find_manifest(kDst, digest, "4.20.9-x86_64-z", true));
  ASSERT_TRUE(standing.ok());
  ASSERT_TRUE(standing->present);
  ASSERT_TRUE(standing->manifest.has_value());
  EXPECT_EQ(network.count("get_manifest"), 1u);
  // Re-tagging an image found present reads its bytes by digest: from what the check read.
  auto again = sync_wait(endpoints.get_manifest(kDst, digest));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->bytes, standing->manifest->bytes);
  EXPECT_EQ(network.count("get_manifest"), 1u) << "the manifest was fetched twice";
}

}  // namespace
}  // namespace fastsync
