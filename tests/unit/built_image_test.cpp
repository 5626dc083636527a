// Images fastsync builds (the graph data image): a tarball's files moved
// under a directory as one layer, and that layer added to a base image.
#include "release/imageset/built_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <map>

#include "registry/core/digest.h"
#include "tests/fixture/fixture.h"

namespace fastsync::imageset {
namespace {

// Path -> content of every entry of a gzip tar (directories with an empty content).
std::map<std::string, std::string> entries_of(const std::string& tar_gz) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar_gz.data(), tar_gz.size()), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    std::string content(static_cast<std::size_t>(archive_entry_size(entry)), '\0');
    if (!content.empty()) archive_read_data(a, content.data(), content.size());
    EXPECT_EQ(archive_entry_uid(entry), 0) << archive_entry_pathname(entry);
    out[archive_entry_pathname(entry)] = content;
  }
  archive_read_free(a);
  return out;
}

TEST(BuiltImage, ALayerHoldsTheTarballsFilesUnderItsDirectory) {
  auto tarball = fixture::make_layer({{"./", "", true},
                                      {"./channels/", "", true},
                                      {"./channels/stable-4.20.yaml", "name: stable-4.20\n", false},
                                      {"version", "1.2.0\n", false}});
  auto layer = layer_under(tarball.compressed, "var/lib/cincinnati-graph-data", "graph-data.tar.gz");
  ASSERT_TRUE(layer) << layer.error().message;
  EXPECT_EQ(layer->digest, sha256_digest(*layer->compressed));
  auto entries = entries_of(*layer->compressed);
  std::map<std::string, std::string> expected = {
      {"var/", ""},
      {"var/lib/", ""},
      {"var/lib/cincinnati-graph-data/", ""},
      {"var/lib/cincinnati-graph-data/channels/", ""},
      {"var/lib/cincinnati-graph-data/channels/stable-4.20.yaml", "name: stable-4.20\n"},
      {"var/lib/cincinnati-graph-data/version", "1.2.0\n"}};
  EXPECT_EQ(entries, expected);
  // Byte-stable: the same tarball, the same layer.
  auto again = layer_under(tarball.compressed, "var/lib/cincinnati-graph-data", "graph-data.tar.gz");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->digest, layer->digest);
  EXPECT_EQ(again->diff_id, layer->diff_id);
}

TEST(BuiltImage, ATarballThatClimbsOutOrIsNoTarballIsRefusedByName) {
  auto climbing = fixture::make_layer({{"../etc/passwd", "x", false}});
  auto refused = layer_under(climbing.compressed, "var/lib/data", "graph-data.tar.gz");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "graph-data.tar.gz: entry \"../etc/passwd\" climbs out of its directory");
  auto garbage = layer_under("<html>Service Unavailable</html>", "var/lib/data", "https://example/graph-data");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().message.rfind("https://example/graph-data: ", 0), 0u) << garbage.error().message;
  auto empty = fixture::make_layer({{"./", "", true}});
  auto nothing = layer_under(empty.compressed, "var/lib/data", "empty.tar.gz");
  ASSERT_FALSE(nothing);
  EXPECT_EQ(nothing.error().message, "empty.tar.gz: the archive holds no file");
}

TEST(BuiltImage, AddingALayerKeepsTheBaseAndChangesWhatItSays) {
  auto base_layer = fixture::make_layer({{"usr/bin/bash", "#!", false}});
  std::string config = R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Labels":{"vendor":"x"}},)"
                       R"("rootfs":{"type":"layers","diff_ids":[")" +
                       base_layer.diff_id + R"("]},"history":[{"created_by":"base"}]})";
  for (bool oci : {false, true}) {
    std::string manifest_type =
        oci ? "application/vnd.oci.image.manifest.v1+json" : "application/vnd.docker.distribution.manifest.v2+json";
    std::string manifest = R"({"schemaVersion":2,"mediaType":")" + manifest_type +
                           R"(","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":)" +
                           std::to_string(config.size()) + R"(,"digest":")" + sha256_digest(config) +
                           R"("},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":)" +
                           std::to_string(base_layer.compressed.size()) + R"(,"digest":")" + base_layer.digest +
                           R"("}],"annotations":{"kept":"yes"}})";
    ManifestData base{manifest, manifest_type, sha256_digest(manifest)};
    auto data = fixture::make_layer({{"channels/a.yaml", "a", false}});
    auto layer = layer_under(data.compressed, "var/lib/data", "data.tar.gz");
    ASSERT_TRUE(layer);
    ConfigChange change;
    change.cmd = {"/bin/bash", "-c", "cp -rp /var/lib/data/* /out"};
    change.labels = {{"io.example.graph", "yes"}};
    change.created_by = "fastsync: graph data";
    auto built = add_layer(base, config, *layer, change);
    ASSERT_TRUE(built) << built.error().message;
    EXPECT_EQ(built->manifest.digest, sha256_digest(built->manifest.bytes));
    EXPECT_EQ(built->manifest.media_type, manifest_type);

    rapidjson::Document m;
    m.Parse(built->manifest.bytes.c_str());
    ASSERT_EQ(m["layers"].Size(), 2u);
    EXPECT_EQ(std::string(m["layers"][0]["digest"].GetString()), base_layer.digest);
    EXPECT_EQ(std::string(m["layers"][1]["digest"].GetString()), layer->digest);
    EXPECT_EQ(
        std::string(m["layers"][1]["mediaType"].GetString()),
        oci ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.docker.image.rootfs.diff.tar.gzip");
    EXPECT_EQ(std::string(m["annotations"]["kept"].GetString()), "yes");
    std::string config_digest = m["config"]["digest"].GetString();
    ASSERT_TRUE(built->new_blobs.count(config_digest));
    const std::string& new_config = *built->new_blobs.at(config_digest);
    EXPECT_EQ(m["config"]["size"].GetUint64(), new_config.size());
    EXPECT_EQ(sha256_digest(new_config), config_digest);
    EXPECT_EQ(*built->new_blobs.at(layer->digest), *layer->compressed);

    rapidjson::Document c;
    c.Parse(new_config.c_str());
    ASSERT_EQ(c["rootfs"]["diff_ids"].Size(), 2u);
    EXPECT_EQ(std::string(c["rootfs"]["diff_ids"][1].GetString()), layer->diff_id);
    ASSERT_EQ(c["config"]["Cmd"].Size(), 3u);
    EXPECT_EQ(std::string(c["config"]["Cmd"][2].GetString()), "cp -rp /var/lib/data/* /out");
    EXPECT_EQ(std::string(c["config"]["Labels"]["vendor"].GetString()), "x");
    EXPECT_EQ(std::string(c["config"]["Labels"]["io.example.graph"].GetString()), "yes");
    ASSERT_EQ(c["history"].Size(), 2u);
    EXPECT_EQ(std::string(c["history"][1]["created_by"].GetString()), "fastsync: graph data");
    // Every blob the image needs: the new config, the base layer, the new layer.
    ASSERT_EQ(built->blobs.size(), 3u);
    EXPECT_EQ(built->blobs[0].digest, config_digest);
    EXPECT_EQ(built->blobs[1].digest, base_layer.digest);
    EXPECT_EQ(built->blobs[2].digest, layer->digest);
  }
}

}  // namespace
}  // namespace fastsync::imageset
