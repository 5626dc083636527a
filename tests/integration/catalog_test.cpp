// Operator catalogs (an image set's operators[]) against real registries: a
// catalog from `fastsync-fixture catalog` (an OCI index over two platforms),
// filtered, its kept bundles' images mirrored, the rebuilt catalog read back
// with tar, checked with skopeo.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>

#include "registry/core/digest.h"
#include "tests/support/mirror_check.h"
#include "tests/support/process.h"
#include "tests/support/registries.h"

namespace fastsync::testing {
namespace {

// host/repo@digest -> repo@digest
std::string without_host(const std::string& ref) { return ref.substr(ref.find('/') + 1); }

class Catalogs : public ::testing::Test {
 protected:
  void SetUp() override { catalog_ = push_catalog(source_); }

  std::string write_config(const std::string& packages) {
    std::string path = dir_.file("isc.yaml");
    write_file(path, fmt::format("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n"
                                 "  operators:\n  - catalog: {}/{}:{}\n{}",
                                 source_.host(), catalog_.repository, catalog_.tag, packages));
    return path;
  }

  RunResult mirror(const std::string& config, const TestRegistry& dest, const std::string& out,
                   const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--config",  config, "--dest-registry", dest.host(), "--pull-secret", secret_,
                                     "--out-dir", out,    "--insecure",      "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_fastsync(args);
  }

  const FixtureBundle& bundle(const std::string& name) const {
    for (const auto& b : catalog_.bundles) {
      if (b.name == name) return b;
    }
    throw std::runtime_error("no bundle " + name);
  }

  // The configs files of a rebuilt catalog's platform image: its top layer, read back with tar.
  std::string top_layer(const TestRegistry& dest, const std::string& repo, const std::string& image_digest,
                        std::size_t* layers = nullptr) {
    rapidjson::Document m;
    std::string raw = skopeo_raw_manifest(dest, repo + "@" + image_digest);
    m.Parse(raw.c_str());
    if (m.HasParseError() || !m.HasMember("layers")) return {};
    if (layers) *layers = m["layers"].Size();
    std::string top = m["layers"][m["layers"].Size() - 1]["digest"].GetString();
    std::string file = dir_.file("layer-" + top.substr(7, 12) + ".tar.gz");
    write_file(file, curl_blob(dest, repo, top));
    return file;
  }

  TestRegistry source_;
  TempDir dir_{"fastsync-catalogs"};
  std::string secret_ = write_pull_secret(dir_.file("ps.json"), {});
  FixtureCatalog catalog_;
};

constexpr const char* kSelection = R"(    packages:
    - name: db-operator
    - name: cache-operator
      channels:
      - name: stable
        minVersion: 1.1.0
      - name: fast
)";

// A package by its default channel's head, another by a channel's range and
// another channel's head, the third left out: exactly the kept bundles and
// their related images land (by digest, each once), the rebuilt catalog holds
// exactly the kept packages, channels and bundles for both platforms, the
// CatalogSource names it by digest; a rerun moves nothing and rebuilds the
// same bytes.
TEST_F(Catalogs, ASelectionMirrorsTheKeptBundlesAndARebuiltCatalog) {
  TestRegistry dest;
  std::string out = dir_.file("out");
  std::string config = write_config(kSelection);

  auto dry = mirror(config, dest, dir_.file("dry"), {"--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err << dry.out;
  EXPECT_NE(dry.out.find("operators:\n  " + source_.host() + "/" + catalog_.repository + ":" + catalog_.tag),
            std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find(fmt::format("catalog {}/{}:{} keeps:\n  package cache-operator (default channel stable)\n"
                                     "    channel stable: cache-operator.v1.1.0, cache-operator.v1.2.0\n"
                                     "    channel fast: cache-operator.v1.3.0-rc.1\n"
                                     "  package db-operator (default channel stable)\n"
                                     "    channel stable: db-operator.v1.2.0\n",
                                     source_.host(), catalog_.repository, catalog_.tag)),
            std::string::npos)
      << dry.out;
  EXPECT_TRUE(catalog(dest).empty());

  std::size_t gets_before = source_.blob_gets().size();
  auto r = mirror(config, dest, out);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;

  std::set<std::string> kept = {"db-operator.v1.2.0", "cache-operator.v1.1.0", "cache-operator.v1.2.0",
                                "cache-operator.v1.3.0-rc.1"};
  for (const auto& b : catalog_.bundles) {
    std::string there = skopeo_raw_manifest(dest, without_host(b.image));
    if (kept.count(b.name)) {
      EXPECT_EQ(sha256_digest(there), b.image.substr(b.image.find('@') + 1)) << b.name;
      for (const auto& related : b.related) {
        std::string image = skopeo_raw_manifest(dest, without_host(related));
        EXPECT_EQ(sha256_digest(image), related.substr(related.find('@') + 1)) << related;
      }
    } else {
      EXPECT_TRUE(there.empty()) << b.name << " was not selected";
    }
  }

  // The rebuilt catalog: an index over the same platforms, each image one layer more.
  std::string index = skopeo_raw_manifest(dest, catalog_.repository + ":" + catalog_.tag);
  ASSERT_FALSE(index.empty());
  EXPECT_NE(sha256_digest(index), catalog_.digest);
  rapidjson::Document idx;
  idx.Parse(index.c_str());
  ASSERT_EQ(idx["manifests"].Size(), catalog_.children.size());
  std::set<std::string> platforms;
  for (const auto& m : idx["manifests"].GetArray()) {
    platforms.insert(m["platform"]["architecture"].GetString());
    std::size_t layers = 0;
    std::string layer = top_layer(dest, catalog_.repository, m["digest"].GetString(), &layers);
    ASSERT_FALSE(layer.empty());
    EXPECT_EQ(layers, 4u) << "opm, configs and cache layers, and the kept catalog";
    auto listed = run_command({"tar", "-tzf", layer});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_NE(listed.out.find("configs/.wh..wh..opq"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("tmp/.wh.cache"), std::string::npos) << listed.out;
    EXPECT_EQ(listed.out.find("web-operator"), std::string::npos) << listed.out;
    std::set<std::string> bundles;
    for (const char* package : {"db-operator", "cache-operator"}) {
      auto content = run_command({"tar", "-xzOf", layer, fmt::format("configs/{}/catalog.json", package)});
      ASSERT_EQ(content.exit_code, 0) << content.err;
      for (const auto& b : catalog_.bundles) {
        if (content.out.find("\"name\":\"" + b.name + "\"") != std::string::npos) bundles.insert(b.name);
      }
    }
    EXPECT_EQ(bundles, kept);
  }
  EXPECT_EQ(platforms, (std::set<std::string>{"amd64", "arm64"}));
  auto inspected = run_command({"skopeo", "inspect", "--config", "--tls-verify=false",
                                "docker://" + dest.host() + "/" + catalog_.repository + ":" + catalog_.tag});
  EXPECT_NE(inspected.out.find("--cache-dir=/tmp/cache"), std::string::npos) << "opm serve's command kept";

  std::string source = read_file(out + "/cs-redhat-operator-index-v4-20.yaml");
  EXPECT_NE(source.find(fmt::format("image: {}/{}@{}", dest.host(), catalog_.repository, sha256_digest(index))),
            std::string::npos)
      << source;
  EXPECT_NE(source.find("sourceType: grpc"), std::string::npos);
  EXPECT_NE(read_file(out + "/cc-redhat-operator-index-v4-20.yaml").find(sha256_digest(index)), std::string::npos);
  std::string idms = read_file(out + "/idms-oc-mirror.yaml");
  EXPECT_NE(idms.find(fmt::format("source: {}/example/db-operator-bundle", source_.host())), std::string::npos) << idms;
  EXPECT_EQ(idms.find("web-operator"), std::string::npos) << idms;

  // Each blob once (the proxy image every bundle names too; the catalog's
  // layers read to plan are uploaded from memory), apart from the catalog's
  // two configurations, read to plan and replaced by the rebuilt ones.
  auto gets = source_.blob_gets();
  gets.erase(gets.begin(), gets.begin() + static_cast<std::ptrdiff_t>(gets_before));
  std::set<std::string> unique(gets.begin(), gets.end());
  EXPECT_EQ(gets.size(), unique.size()) << "a blob fetched twice";

  // A rerun: the destination's catalog says what it was rebuilt from, so not
  // a byte of the catalog is fetched again, and nothing else moves.
  std::size_t gets_after = source_.blob_gets().size();
  auto again = mirror(config, dest, out);
  ASSERT_EQ(again.exit_code, 0) << again.err << again.out;
  EXPECT_NE(again.out.find("0 copied"), std::string::npos) << again.out;
  EXPECT_EQ(source_.blob_gets().size(), gets_after) << "a rerun fetched blobs";
  EXPECT_EQ(skopeo_raw_manifest(dest, catalog_.repository + ":" + catalog_.tag), index);

  // The same catalog and selection into another registry: the same bytes.
  TestRegistry other;
  auto elsewhere = mirror(config, other, dir_.file("other"));
  ASSERT_EQ(elsewhere.exit_code, 0) << elsewhere.err << elsewhere.out;
  EXPECT_EQ(skopeo_raw_manifest(other, catalog_.repository + ":" + catalog_.tag), index) << "byte-stable";
}

// The catalog grows (a new bundle in every stable channel, a new release
// candidate in fast): a rerun rebuilds the catalog and moves only the new
// bundles' images; what it already has stays.
TEST_F(Catalogs, ANewBundleMovesOnlyItsImages) {
  TestRegistry dest;
  std::string out = dir_.file("out");
  std::string config = write_config(kSelection);
  auto first = mirror(config, dest, out);
  ASSERT_EQ(first.exit_code, 0) << first.err << first.out;
  CatalogArgs grown;
  grown.extra_bundles = 1;
  catalog_ = push_catalog(source_, grown);
  auto r = mirror(config, dest, out);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  // db 1.3.0, cache 1.3.0 and cache 1.4.0-rc.1: a bundle and an operator each, and the rebuilt catalog.
  EXPECT_NE(r.out.find("7 copied"), std::string::npos) << r.out;
  for (const char* name : {"db-operator.v1.3.0", "cache-operator.v1.3.0", "cache-operator.v1.4.0-rc.1"}) {
    const auto& b = bundle(name);
    EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, without_host(b.image))), b.image.substr(b.image.find('@') + 1))
        << name;
  }
}

// Across the air gap: --to-dir carries the rebuilt catalog and the kept
// images, --from-dir (the source switched off) pushes them and writes the
// CatalogSource naming the same rebuilt digest as a direct mirror would.
TEST_F(Catalogs, TheRebuiltCatalogCrossesTheAirGap) {
  std::string archive = dir_.file("archive");
  std::string config = write_config(kSelection);
  auto to_dir = run_fastsync({"--config", config, "--to-dir", archive, "--pull-secret", secret_, "--insecure", "-q"});
  ASSERT_EQ(to_dir.exit_code, 0) << to_dir.err << to_dir.out;
  EXPECT_NE(read_file(archive + "/fastsync-archive.json").find("\"section\": \"catalog\""), std::string::npos);

  TestRegistry dest;
  std::string out = dir_.file("far");
  source_.stop();
  auto from_dir = run_fastsync({"--from-dir", archive, "--dest-registry", dest.host(), "--pull-secret", secret_,
                                "--out-dir", out, "--insecure", "-q"});
  source_.start();
  ASSERT_EQ(from_dir.exit_code, 0) << from_dir.err << from_dir.out;
  std::string index = skopeo_raw_manifest(dest, catalog_.repository + ":" + catalog_.tag);
  ASSERT_FALSE(index.empty());
  EXPECT_NE(read_file(out + "/cs-redhat-operator-index-v4-20.yaml")
                .find(fmt::format("image: {}/{}@{}", dest.host(), catalog_.repository, sha256_digest(index))),
            std::string::npos);
  const auto& head = bundle("db-operator.v1.2.0");
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, without_host(head.image))),
            head.image.substr(head.image.find('@') + 1));
  std::string idms = read_file(out + "/idms-oc-mirror.yaml");
  EXPECT_NE(idms.find(fmt::format("source: {}/example/db-operator-bundle", source_.host())), std::string::npos) << idms;

  // A direct mirror of the same selection builds the same catalog.
  TestRegistry direct;
  auto r = mirror(config, direct, dir_.file("direct"));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(skopeo_raw_manifest(direct, catalog_.repository + ":" + catalog_.tag), index);
}

// A package the catalog does not hold fails that catalog, with the reason,
// and nothing of it is mirrored.
TEST_F(Catalogs, APackageTheCatalogLacksFailsThatCatalogWithItsReason) {
  TestRegistry dest;
  std::string out = dir_.file("out");
  auto r = mirror(write_config("    packages:\n    - name: nosuch-operator\n"), dest, out);
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  std::string errors = read_file(out + "/mirroring-errors.txt");
  EXPECT_NE(errors.find("package nosuch-operator is not in the catalog"), std::string::npos) << errors;
  EXPECT_TRUE(catalog(dest).empty());
}

// targetCatalog and targetTag place the kept catalog (and name its
// resources); a blocked image a bundle names is never copied and is listed
// with the entry that blocked it.
TEST_F(Catalogs, TargetCatalogAndTagPlaceItAndBlockedImagesStayAway) {
  TestRegistry dest;
  std::string out = dir_.file("out");
  const auto& head = bundle("db-operator.v1.2.0");
  const std::string& proxy = head.related.at(1);
  std::string config = write_config(fmt::format(
      "    targetCatalog: mirror/ops-index\n    targetTag: filtered\n    packages:\n    - name: db-operator\n"
      "  blockedImages:\n  - name: {}\n",
      proxy.substr(0, proxy.find('@'))));
  auto r = mirror(config, dest, out);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  std::string index = skopeo_raw_manifest(dest, "mirror/ops-index:filtered");
  ASSERT_FALSE(index.empty());
  EXPECT_TRUE(skopeo_raw_manifest(dest, catalog_.repository + ":" + catalog_.tag).empty());
  EXPECT_NE(read_file(out + "/cs-ops-index-filtered.yaml")
                .find(fmt::format("image: {}/mirror/ops-index@{}", dest.host(), sha256_digest(index))),
            std::string::npos);
  EXPECT_EQ(sha256_digest(skopeo_raw_manifest(dest, without_host(head.image))),
            head.image.substr(head.image.find('@') + 1));
  EXPECT_TRUE(skopeo_raw_manifest(dest, without_host(proxy)).empty()) << "blocked";
  EXPECT_NE(r.out.find("blocked (never copied)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(without_host(proxy)), std::string::npos) << r.out;
}

// An index whose platforms carry different catalogs cannot be filtered once
// for all of them: that catalog fails, saying which platform differs.
TEST_F(Catalogs, PlatformsHoldingDifferentCatalogsAreNamed) {
  CatalogArgs broken;
  broken.platforms_differ = true;
  broken.tag = "v4.21";
  catalog_ = push_catalog(source_, broken);
  TestRegistry dest;
  std::string out = dir_.file("out");
  auto r = mirror(write_config(kSelection), dest, out);
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  std::string errors = read_file(out + "/mirroring-errors.txt");
  EXPECT_NE(errors.find("its linux/arm64 image does not hold the configs layer"), std::string::npos) << errors;
  EXPECT_TRUE(catalog(dest).empty());
}

}  // namespace
}  // namespace fastsync::testing
