// The command line itself: help text and the fixture generator's determinism.
#include <gtest/gtest.h>

#include "tests/support/mirror_check.h"

namespace fastsync::testing {
namespace {

TEST(CliBasics, HelpShowsTheSeedFlagsWithTheirDefaults) {
  auto r = run_fastsync({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string expected :
       {"--version X.Y.Z", "--dest-registry HOST[:PORT]", "--pull-secret FILE", "--workers N (=16)",
        "--blob-workers N (=4)", "--dest-repo PATH (=openshift/release)",
        "--source-registry REPO (=quay.io/openshift-release-dev/ocp-release)", "--insecure",
        // and the ones later issues added
        "--arch ARCH (=x86_64)", "--dry-run", "--report FILE", "--retries N (=3)", "--stall-timeout SECONDS (=60)",
        "--check-workers N", "--manifest-workers N", "--blob-concurrency N", "--push-workers N", "--icsp",
        "--idms-out FILE", "--ca-file FILE", "--http2", "--quiet", "--certs-dir DIR", "--upload-chunk-size SIZE",
        "--to-dir DIR", "--from-dir DIR", "--archive-size SIZE", "--since PREV", "--archive-writers N (=4)",
        "--segment-size SIZE", "--segment-memory SIZE"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << "missing from --help: " << expected;
  }
  // Required for a registry-to-registry run; an archive takes the place of one end, a channel of --version.
  std::string flat;  // the help text with its line wrapping undone
  for (char c : r.out) {
    bool space = c == ' ' || c == '\n';
    if (!(space && !flat.empty() && flat.back() == ' ')) flat.push_back(space ? ' ' : c);
  }
  EXPECT_NE(flat.find("(required, except with --channel or --from-dir)"), std::string::npos) << flat;
  EXPECT_NE(flat.find("(required, except with --to-dir)"), std::string::npos) << flat;
}

TEST(CliBasics, TheFixtureIsDeterministicForASeed) {
  TestRegistry a;
  TestRegistry b;
  FixtureArgs fa;
  fa.components = 8;
  auto first = push_fixture(a, fa);
  auto again = push_fixture(b, fa);
  EXPECT_EQ(first.release.digest, again.release.digest);
  ASSERT_EQ(first.components.size(), again.components.size());
  for (std::size_t i = 0; i < first.components.size(); ++i) {
    EXPECT_EQ(first.components[i].digest, again.components[i].digest) << first.components[i].name;
  }
  TestRegistry c;
  fa.seed = 8;
  auto other = push_fixture(c, fa);
  EXPECT_NE(other.release.digest, first.release.digest);
  EXPECT_NE(other.components[0].digest, first.components[0].digest);
}

}  // namespace
}  // namespace fastsync::testing
