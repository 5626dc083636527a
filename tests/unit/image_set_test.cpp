// The image set file (oc-mirror v2's ImageSetConfiguration): what it reads,
// and one line naming file, line and field for everything it refuses.
#include "release/imageset/image_set.h"

#include <gtest/gtest.h>

#include "release/imageset/blocked_images.h"

namespace fastsync::imageset {
namespace {

// oc-mirror's documented example, unchanged.
constexpr const char* kDocumented = R"(kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
archiveSize: 4
mirror:
  platform:
    architectures: [amd64]
    channels:
    - name: stable-4.20
      minVersion: 4.20.1
      maxVersion: 4.20.8
      shortestPath: true
    graph: true
  operators:
  - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.20
    packages:
    - name: aws-load-balancer-operator
    - name: rhacs-operator
      channels:
      - name: stable
        minVersion: 4.5.0
  additionalImages:
  - name: registry.redhat.io/ubi9/ubi:latest
  - name: quay.io/example/tool@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  blockedImages:
  - name: registry.redhat.io/ubi8/ubi
)";

TEST(ImageSet, TheDocumentedExampleReadsAsWritten) {
  auto set = parse_image_set(kDocumented, "isc.yaml");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->api_version, "mirror.openshift.io/v2alpha1");
  EXPECT_EQ(set->archive_size_gib, 4u);
  ASSERT_EQ(set->channels.size(), 1u);
  EXPECT_EQ(set->channels[0].name, "stable-4.20");
  EXPECT_EQ(set->channels[0].min_version, "4.20.1");
  EXPECT_EQ(set->channels[0].max_version, "4.20.8");
  EXPECT_TRUE(set->channels[0].shortest_path);
  EXPECT_FALSE(set->channels[0].full);
  EXPECT_EQ(set->channels[0].line, 8);
  EXPECT_EQ(set->architectures, std::vector<std::string>{"amd64"});
  EXPECT_TRUE(set->graph);
  ASSERT_EQ(set->operators.size(), 1u);
  EXPECT_EQ(set->operators[0].catalog, "registry.redhat.io/redhat/redhat-operator-index:v4.20");
  EXPECT_EQ(set->operators[0].line, 14);
  ASSERT_EQ(set->additional_images.size(), 2u);
  EXPECT_EQ(set->additional_images[0].name, "registry.redhat.io/ubi9/ubi:latest");
  EXPECT_EQ(set->additional_images[1].line, 23);
  const auto& filter = set->operators[0].filter;
  EXPECT_FALSE(filter.full);
  ASSERT_EQ(filter.packages.size(), 2u);
  EXPECT_EQ(filter.packages[0].name, "aws-load-balancer-operator");
  EXPECT_TRUE(filter.packages[0].channels.empty());
  ASSERT_EQ(filter.packages[1].channels.size(), 1u);
  EXPECT_EQ(filter.packages[1].channels[0].name, "stable");
  EXPECT_EQ(filter.packages[1].channels[0].min_version, "4.5.0");
  EXPECT_TRUE(filter.packages[1].channels[0].max_version.empty());
  ASSERT_EQ(set->blocked_images.size(), 1u);
  EXPECT_EQ(set->blocked_images[0].name, "registry.redhat.io/ubi8/ubi");
  EXPECT_TRUE(set->notes.empty());
}

TEST(ImageSet, V1Alpha2WithStorageConfigReadsTheSameMirrorSectionAndSaysStorageConfigIsIgnored) {
  auto set = parse_image_set(R"(kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v1alpha2
storageConfig:
  local:
    path: metadata
mirror:
  platform:
    channels:
    - name: candidate-4.20
      type: ocp
      full: true
)",
                             "old.yaml");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_TRUE(set->channels.at(0).full);
  ASSERT_EQ(set->notes.size(), 1u);
  EXPECT_NE(set->notes[0].find("storageConfig is ignored"), std::string::npos);
}

struct Refused {
  const char* name;
  const char* yaml;
  const char* message;  // the whole line, file and line number included
};

class ImageSetRefuses : public ::testing::TestWithParam<Refused> {};

TEST_P(ImageSetRefuses, WithOneLineNamingFileLineAndField) {
  auto set = parse_image_set(GetParam().yaml, "isc.yaml");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().message, GetParam().message);
  EXPECT_EQ(set.error().message.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ImageSetRefuses,
    ::testing::Values(
        Refused{"UnknownTopLevelField",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirorr: {}\n",
                "isc.yaml:3: mirorr: unknown field (known here: kind, apiVersion, metadata, archiveSize, "
                "storageConfig, mirror)"},
        Refused{"UnknownChannelField",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    channels:\n    - name: stable-4.20\n      minVersoin: 4.20.1\n",
                "isc.yaml:7: mirror.platform.channels[0].minVersoin: unknown field (known here: name, type, "
                "minVersion, maxVersion, shortestPath, full)"},
        Refused{"ChannelWithoutAName",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    channels:\n    - minVersion: 4.20.1\n",
                "isc.yaml:6: mirror.platform.channels[0]: a channel needs a name"},
        Refused{"RangeReversed",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    channels:\n    - name: stable-4.20\n      minVersion: 4.20.9\n      maxVersion: 4.20.1\n",
                "isc.yaml:6: mirror.platform.channels[0]: minVersion 4.20.9 is after maxVersion 4.20.1"},
        Refused{"NotAVersion",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    channels:\n    - name: stable-4.20\n      maxVersion: latest\n",
                "isc.yaml:7: mirror.platform.channels[0].maxVersion: \"latest\" is not a release version"},
        Refused{"WrongTypeForShortestPath",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    channels:\n    - name: stable-4.20\n      shortestPath: [yes]\n",
                "isc.yaml:7: mirror.platform.channels[0].shortestPath: must be true or false"},
        Refused{"ChannelsNotAList",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    channels: stable-4.20\n",
                "isc.yaml:5: mirror.platform.channels: must be a list, not a scalar"},
        Refused{"UnknownArchitecture",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    architectures: [x86]\n    channels:\n    - name: stable-4.20\n",
                "isc.yaml:5: mirror.platform.architectures[0]: \"x86\" is not an architecture (amd64, arm64, "
                "ppc64le, s390x, multi)"},
        Refused{"OkdIsNotMirrored",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n"
                "    channels:\n    - name: stable-4\n      type: okd\n",
                "isc.yaml:7: mirror.platform.channels[0].type: \"okd\" is not mirrored (only ocp releases are)"},
        Refused{"AdditionalImageWithoutName",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n"
                "  additionalImages:\n  - image: quay.io/x/y:1\n",
                "isc.yaml:5: mirror.additionalImages[0].image: unknown field (known here: name)"},
        Refused{"BadVersion", "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v3\nmirror: {}\n",
                "isc.yaml:2: apiVersion: \"mirror.openshift.io/v3\" is not a version fastsync reads "
                "(mirror.openshift.io/v2alpha1 or v1alpha2)"},
        Refused{"DeleteKind",
                "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror: {}\n",
                "isc.yaml:1: kind: \"DeleteImageSetConfiguration\" is not ImageSetConfiguration (fastsync mirrors; "
                "it does not delete)"},
        Refused{"NothingToMirror",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  blockedImages:\n"
                "  - name: quay.io/x/y\n",
                "isc.yaml: mirror: names nothing to mirror (no platform.channels, additionalImages or operators)"},
        Refused{"ArchiveSizeNotANumber",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\narchiveSize: big\nmirror:\n"
                "  additionalImages:\n  - name: quay.io/x/y:1\n",
                "isc.yaml:3: archiveSize: must be a whole number of GiB above 0"},
        Refused{"HelmIsNotMirrored",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n"
                "  additionalImages:\n  - name: quay.io/x/y:1\n  helm:\n    repositories:\n    - name: x\n",
                "isc.yaml:7: mirror.helm: is not mirrored by fastsync"},
        Refused{"OperatorsUnknownPackageField",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n"
                "  - catalog: registry.example/index:v4.20\n    packages:\n    - name: db\n      chanels: []\n",
                "isc.yaml:8: mirror.operators[0].packages[0].chanels: unknown field (known here: name, channels, "
                "minVersion, maxVersion, defaultChannel)"},
        Refused{"OperatorsChannelRangeReversed",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n"
                "  - catalog: registry.example/index:v4.20\n    packages:\n    - name: db\n      channels:\n"
                "      - name: stable\n        minVersion: 2.0.0\n        maxVersion: 1.0.0\n",
                "isc.yaml:9: mirror.operators[0].packages[0].channels[0]: minVersion 2.0.0 is after maxVersion 1.0.0"},
        Refused{"OperatorsBundleVersionNotAVersion",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n"
                "  - catalog: registry.example/index:v4.20\n    packages:\n    - name: db\n      minVersion: "
                "latest\n",
                "isc.yaml:8: mirror.operators[0].packages[0].minVersion: \"latest\" is not a version (e.g. 1.2.3)"},
        Refused{"OperatorsPackageWithoutName",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n"
                "  - catalog: registry.example/index:v4.20\n    packages:\n    - channels: []\n",
                "isc.yaml:7: mirror.operators[0].packages[0]: a package needs a name"},
        Refused{"OperatorsFullNotABool",
                "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n"
                "  - catalog: registry.example/index:v4.20\n    full: everything\n",
                "isc.yaml:6: mirror.operators[0].full: must be true or false"},
        Refused{"NotYaml", "kind: [ImageSetConfiguration\n", "isc.yaml:2: not YAML: end of sequence flow not found"}),
    [](const ::testing::TestParamInfo<Refused>& param_info) { return std::string(param_info.param.name); });

TEST(BlockedImages, MatchARepositoryATagADigestOrAPattern) {
  std::string digest = "sha256:" + std::string(64, 'a');
  auto blocked = BlockedImages::from({{"quay.io/org/whole", 3},
                                      {"quay.io/org/tagged:1.0", 4},
                                      {"docker://quay.io/org/pinned@" + digest, 5},
                                      {"^registry\\.example\\.com/.*/debug-", 6}},
                                     "isc.yaml");
  ASSERT_TRUE(blocked) << blocked.error().message;
  auto ref = [](const std::string& text) { return Reference::parse(text).value(); };
  auto line_of = [&](const std::string& text) {
    auto m = blocked->match(ref(text));
    return m ? m->line : 0;
  };
  EXPECT_EQ(line_of("quay.io/org/whole:any"), 3);
  EXPECT_EQ(line_of("quay.io/org/whole@" + digest), 3);
  EXPECT_EQ(line_of("quay.io/org/whole-not:1"), 0);
  EXPECT_EQ(line_of("quay.io/org/tagged:1.0"), 4);
  EXPECT_EQ(line_of("quay.io/org/tagged:1.1"), 0);
  EXPECT_EQ(line_of("quay.io/org/pinned@" + digest), 5);
  EXPECT_EQ(line_of("quay.io/org/pinned@sha256:" + std::string(64, 'b')), 0);
  EXPECT_EQ(line_of("registry.example.com/team/debug-shell:1"), 6);
  EXPECT_EQ(line_of("mirror.registry.example.com/team/debug-shell:1"), 0);
  EXPECT_EQ(blocked->match(ref("quay.io/org/whole:x"))->describe("isc.yaml"),
            "blockedImages entry \"quay.io/org/whole\" (isc.yaml:3)");
}

TEST(BlockedImages, AnEntryThatIsNeitherAReferenceNorAPatternIsOneLine) {
  auto blocked = BlockedImages::from({{"quay.io/org/(unclosed", 9}}, "isc.yaml");
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().message.rfind("isc.yaml:9: mirror.blockedImages: \"quay.io/org/(unclosed\" is neither", 0),
            0u)
      << blocked.error().message;
}

// libstdc++ reads \N and {N} into an int unchecked (undefined behaviour the
// image_set fuzzer found): such numbers are refused in one line first, and
// ordinary ones still work.
TEST(BlockedImages, APatternWithANumberTooLargeIsOneLineNotUndefinedBehaviour) {
  for (std::string pattern : {"^q!ay\\77777777777777.io/.*debug", "quay.io/a{1,99999999999}"}) {
    auto blocked = BlockedImages::from({{pattern, 4}}, "isc.yaml");
    ASSERT_FALSE(blocked) << pattern;
    EXPECT_NE(blocked.error().message.find("isc.yaml:4: mirror.blockedImages:"), std::string::npos);
    EXPECT_NE(blocked.error().message.find("number too large"), std::string::npos) << blocked.error().message;
  }
  EXPECT_TRUE(BlockedImages::from({{"quay.io/org/x{1,3}-debug", 5}}, "isc.yaml"));
}

}  // namespace
}  // namespace fastsync::imageset
