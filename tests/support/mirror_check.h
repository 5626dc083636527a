// Helpers for end-to-end tests: push a fixture release with fastsync-fixture,
// run the fastsync binary, and check a destination independently (skopeo and
// the curl CLI, which share no code with fastsync).
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/registries.h"

namespace fastsync::testing {

struct FixtureImage {
  std::string name;
  std::string repository;
  std::string digest;
  std::string media_type;
  std::string reference;
  std::vector<std::string> children;
  std::vector<std::string> blobs;
};

struct FixtureSignature {
  std::string repository;
  std::string tag;
  std::string digest;
  std::string subject;
};

struct FixtureRelease {
  std::string version;
  std::string arch;
  FixtureImage release;
  std::vector<FixtureImage> components;
  std::uint64_t unique_blobs = 0;
  std::uint64_t unique_blob_bytes = 0;
  std::uint64_t largest_blob = 0;
  std::string largest_blob_digest;
  std::string release_signature;                                 // the signature file the fixture wrote
  std::vector<FixtureSignature> sigstore;                        // cosign .sig tags it pushed
  std::vector<std::string> all_blobs() const;                    // unique, release included
  const FixtureImage* component(const std::string& name) const;  // null when there is none by that name
};

struct FixtureArgs {
  int components = 12;
  double scale = 0.01;
  std::string version = "4.20.8";
  std::string arch = "x86_64";
  std::string layout = "normal";
  std::string refs_host = "quay.io";
  std::string image_references_file;
  std::string metadata_version;
  bool release_only = false;
  std::uint64_t seed = 7;
  std::string release_repo;     // default: the fixture's (openshift-release-dev/ocp-release)
  std::string components_repo;  // default: the fixture's (openshift-release-dev/ocp-v4.0-art-dev)
  // Signatures (see fastsync-fixture --help): a key to ship in the payload, a
  // secret key in `gnupg_home` to sign with, where the signature store lives,
  // cosign .sig tags for every Nth component.
  std::string verification_key_file;
  std::string sign_key;
  std::string gnupg_home;
  std::string signature_store_dir;
  int sigstore_every = 0;
  int revision = 0;  // a later z-stream (see fastsync-fixture --revision)
};

// Throws if the tool fails.
FixtureRelease push_fixture(const TestRegistry& registry, const FixtureArgs& args);

// An operator catalog pushed by `fastsync-fixture catalog` (see tests/fixture/fixture.h).
struct FixtureBundle {
  std::string package;
  std::string name;
  std::string version;
  std::string image;                 // host/repo@digest
  std::vector<std::string> related;  // host/repo@digest
  std::vector<std::string> channels;
};
struct FixtureCatalog {
  std::string repository;
  std::string tag;
  std::string digest;
  std::vector<std::string> children;
  std::vector<FixtureBundle> bundles;
};
struct CatalogArgs {
  int packages = 3;
  int bundles = 3;
  int extra_bundles = 0;
  bool single = false;
  bool platforms_differ = false;
  std::string tag = "v4.20";
};
// Throws if the tool fails.
FixtureCatalog push_catalog(const TestRegistry& registry, const CatalogArgs& args = {});

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// The fastsync command line for `args`. Tests that are not about release
// signatures get --no-signatures: the official signature stores are on the
// internet, which tests never reach.
std::vector<std::string> fastsync_argv(std::vector<std::string> args);
// With a deadline, a run still going at it is killed and reports exit code 124.
RunResult run_fastsync(const std::vector<std::string>& args, const std::vector<std::string>& extra_env = {},
                       std::chrono::seconds deadline = std::chrono::seconds(0));

// A JSON file (a --report), parsed; a parse error fails the test.
rapidjson::Document load_json(const std::string& path);

// A pull secret with the given "host user password" entries.
std::string write_pull_secret(const std::string& path, const std::vector<std::vector<std::string>>& entries);

// Everything a correct mirror of `fixture` must hold at `repo` (tags, digests,
// byte-identical manifests, list children, every blob). Returns the problems.
std::vector<std::string> check_mirror(const TestRegistry& source, const TestRegistry& dest, const std::string& repo,
                                      const FixtureRelease& fixture, const std::string& dest_creds = {});

// Every tag at `repo`: its manifest (and a list's children) and every blob
// they reference must be present. For interrupted runs. Plain-HTTP registries.
std::vector<std::string> check_no_dangling_manifests(const TestRegistry& dest, const std::string& repo);

std::vector<std::string> list_tags(const TestRegistry& reg, const std::string& repo, const std::string& creds = {});
std::vector<std::string> catalog(const TestRegistry& reg, const std::string& creds = {});

}  // namespace fastsync::testing
