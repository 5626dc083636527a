#include "tests/support/mirror_check.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "registry/core/digest.h"
#include "registry/core/manifest.h"
#include "registry/distribution/auth_file.h"

namespace fastsync::testing {
namespace {

std::vector<std::string> strings(const rapidjson::Value& v) {
  std::vector<std::string> out;
  for (const auto& s : v.GetArray()) out.emplace_back(s.GetString());
  return out;
}

FixtureImage image_from(const rapidjson::Value& v) {
  return FixtureImage{v["name"].GetString(),       v["repository"].GetString(), v["digest"].GetString(),
                      v["media_type"].GetString(), v["reference"].GetString(),  strings(v["children"]),
                      strings(v["blobs"])};
}

std::string curl_manifest(const TestRegistry& reg, const std::string& repo, const std::string& ref) {
  auto argv = curl_command(reg, "");
  argv.push_back("-f");
  argv.push_back("-H");
  argv.push_back("Accept: " + std::string(media_type::kAcceptAll));
  argv.push_back(reg.url() + "/v2/" + repo + "/manifests/" + ref);
  auto r = run_command(argv);
  return r.exit_code == 0 ? r.out : std::string();
}

}  // namespace

std::vector<std::string> FixtureRelease::all_blobs() const {
  std::set<std::string> all(release.blobs.begin(), release.blobs.end());
  for (const auto& c : components) all.insert(c.blobs.begin(), c.blobs.end());
  return {all.begin(), all.end()};
}

const FixtureImage* FixtureRelease::component(const std::string& name) const {
  for (const auto& c : components) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

FixtureCatalog push_catalog(const TestRegistry& registry, const CatalogArgs& a) {
  TempDir dir("fastsync-fixture-out");
  std::vector<std::string> argv = {tool_path("fastsync-fixture"),
                                   "catalog",
                                   "--registry",
                                   registry.url(),
                                   "--packages",
                                   std::to_string(a.packages),
                                   "--bundles",
                                   std::to_string(a.bundles),
                                   "--extra-bundles",
                                   std::to_string(a.extra_bundles),
                                   "--tag",
                                   a.tag,
                                   "--out",
                                   dir.file("catalog.json")};
  if (a.single) argv.push_back("--single");
  if (a.platforms_differ) argv.push_back("--platforms-differ");
  auto r = run_command(argv);
  if (r.exit_code != 0) {
    throw std::runtime_error("fastsync-fixture catalog exited " + std::to_string(r.exit_code) + ": " + r.err + r.out);
  }
  rapidjson::Document d;
  std::string json = read_file(dir.file("catalog.json"));
  d.Parse(json.c_str());
  FixtureCatalog c;
  c.repository = d["repository"].GetString();
  c.tag = d["tag"].GetString();
  c.digest = d["digest"].GetString();
  for (const auto& child : d["children"].GetArray()) c.children.push_back(child.GetString());
  for (const auto& b : d["bundles"].GetArray()) {
    FixtureBundle bundle{
        b["package"].GetString(), b["name"].GetString(), b["version"].GetString(), b["image"].GetString(), {}, {}};
    for (const auto& r2 : b["related"].GetArray()) bundle.related.push_back(r2.GetString());
    for (const auto& ch : b["channels"].GetArray()) bundle.channels.push_back(ch.GetString());
    c.bundles.push_back(std::move(bundle));
  }
  return c;
}

FixtureRelease push_fixture(const TestRegistry& registry, const FixtureArgs& a) {
  TempDir dir("fastsync-fixture-out");
  std::vector<std::string> argv = {tool_path("fastsync-fixture"),
                                   "--registry",
                                   registry.url(),
                                   "--components",
                                   std::to_string(a.components),
                                   "--scale",
                                   std::to_string(a.scale),
                                   "--version",
                                   a.version,
                                   "--arch",
                                   a.arch,
                                   "--layout",
                                   a.layout,
                                   "--refs-host",
                                   a.refs_host,
                                   "--seed",
                                   std::to_string(a.seed),
                                   "--out",
                                   dir.file("fixture.json")};
  if (!registry.ca_file().empty()) {
    argv.push_back("--ca-file");
    argv.push_back(registry.ca_file());
  }
  if (!a.image_references_file.empty()) {
    argv.push_back("--image-references-file");
    argv.push_back(a.image_references_file);
  }
  if (!a.metadata_version.empty()) {
    argv.push_back("--metadata-version");
    argv.push_back(a.metadata_version);
  }
  if (a.release_only) argv.push_back("--release-only");
  if (!a.release_repo.empty()) argv.insert(argv.end(), {"--release-repo", a.release_repo});
  if (!a.components_repo.empty()) argv.insert(argv.end(), {"--components-repo", a.components_repo});
  if (!a.verification_key_file.empty()) argv.insert(argv.end(), {"--verification-key", a.verification_key_file});
  if (!a.sign_key.empty()) argv.insert(argv.end(), {"--sign-key", a.sign_key});
  if (!a.signature_store_dir.empty()) argv.insert(argv.end(), {"--signature-store-dir", a.signature_store_dir});
  if (a.sigstore_every > 0) argv.insert(argv.end(), {"--sigstore-every", std::to_string(a.sigstore_every)});
  if (a.revision > 0) argv.insert(argv.end(), {"--revision", std::to_string(a.revision)});
  std::vector<std::string> env;
  if (!a.gnupg_home.empty()) env.push_back("GNUPGHOME=" + a.gnupg_home);
  auto r = run_command(argv, env);
  if (r.exit_code != 0) {
    throw std::runtime_error("fastsync-fixture exited " + std::to_string(r.exit_code) + ": " + r.err + r.out);
  }
  rapidjson::Document d;
  std::string json = read_file(dir.file("fixture.json"));
  d.Parse(json.c_str());
  FixtureRelease f;
  f.version = d["version"].GetString();
  f.arch = d["arch"].GetString();
  f.release = image_from(d["release"]);
  for (const auto& c : d["components"].GetArray()) f.components.push_back(image_from(c));
  f.unique_blobs = d["unique_blobs"].GetUint64();
  f.unique_blob_bytes = d["unique_blob_bytes"].GetUint64();
  f.largest_blob = d["largest_blob"].GetUint64();
  f.largest_blob_digest = d["largest_blob_digest"].GetString();
  f.release_signature = d["release_signature"].GetString();
  for (const auto& sig : d["sigstore"].GetArray()) {
    f.sigstore.push_back(FixtureSignature{sig["repository"].GetString(), sig["tag"].GetString(),
                                          sig["digest"].GetString(), sig["subject"].GetString()});
  }
  return f;
}

std::vector<std::string> fastsync_argv(std::vector<std::string> args) {
  bool about_signatures = false;
  for (const auto& a : args) {
    about_signatures = about_signatures || a.rfind("--signature", 0) == 0 || a == "--require-signatures" ||
                       a == "--no-signatures" || a == "--from-dir" || a == "--help";
  }
  if (!about_signatures) args.push_back("--no-signatures");
  args.insert(args.begin(), tool_path("fastsync"));
  return args;
}

RunResult run_fastsync(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
                       std::chrono::seconds deadline) {
  std::vector<std::string> argv;
  if (deadline.count() > 0) argv = {"timeout", "--kill-after=5", std::to_string(deadline.count())};
  auto command = fastsync_argv(args);
  argv.insert(argv.end(), command.begin(), command.end());
  auto r = run_command(argv, extra_env);
  return RunResult{r.exit_code, r.out, r.err};
}

std::string write_pull_secret(const std::string& path, const std::vector<std::vector<std::string>>& entries) {
  std::string json = R"({"auths":{)";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    json += (i ? "," : "") + std::string("\"") + entries[i][0] + R"(":{"auth":")" +
            base64_encode(entries[i][1] + ":" + entries[i][2]) + "\"}";
  }
  json += "}}";
  write_file(path, json);
  return path;
}

std::vector<std::string> check_mirror(const TestRegistry& source, const TestRegistry& dest, const std::string& repo,
                                      const FixtureRelease& fixture, const std::string& dest_creds) {
  std::vector<std::string> problems;
  std::mutex problems_mutex;
  auto problem = [&](std::string text) {
    std::lock_guard lock(problems_mutex);
    problems.push_back(std::move(text));
  };
  TempDir tmp("fastsync-check");
  auto check_image = [&](const std::string& tag, const FixtureImage& img) {
    std::string at_dest = skopeo_raw_manifest(dest, repo + ":" + tag, dest_creds);
    if (at_dest.empty()) {
      problem(tag + ": missing at the destination");
      return;
    }
    if (sha256_digest(at_dest) != img.digest) problem(tag + ": digest differs from the source");
    std::string at_source = skopeo_raw_manifest(source, img.repository + "@" + img.digest);
    if (at_source != at_dest) problem(tag + ": manifest bytes differ from the source");
    for (const auto& child : img.children) {
      std::string c = skopeo_raw_manifest(dest, repo + "@" + child, dest_creds);
      if (c.empty() || sha256_digest(c) != child) problem(tag + ": list child " + child + " missing");
    }
    // skopeo copies every blob (all platforms) and checks each digest as it goes.
    std::vector<std::string> argv = {"skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false"};
    if (!dest.client_cert_dir().empty()) {
      argv.push_back("--src-cert-dir");
      argv.push_back(dest.client_cert_dir());
    }
    if (!dest_creds.empty()) {
      argv.push_back("--src-creds");
      argv.push_back(dest_creds);
    }
    argv.push_back("docker://" + dest.host() + "/" + repo + "@" + img.digest);
    argv.push_back("dir:" + tmp.file(img.digest.substr(7, 16)));
    auto r = run_command(argv);
    if (r.exit_code != 0) problem(tag + ": skopeo could not copy it back: " + r.err);
  };
  // Each image is checked by its own skopeo processes; a few at a time (the
  // checks are independent, and one after another they were most of a test's time).
  std::vector<std::pair<std::string, const FixtureImage*>> images;
  for (const auto& c : fixture.components) images.emplace_back(fixture.version + "-" + fixture.arch + "-" + c.name, &c);
  images.emplace_back(fixture.version + "-" + fixture.arch, &fixture.release);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> checkers;
  for (int t = 0; t < 6; ++t) {
    checkers.emplace_back([&] {
      for (std::size_t i; (i = next++) < images.size();) check_image(images[i].first, *images[i].second);
    });
  }
  for (auto& t : checkers) t.join();
  std::sort(problems.begin(), problems.end());
  return problems;
}

std::vector<std::string> check_no_dangling_manifests(const TestRegistry& dest, const std::string& repo) {
  std::vector<std::string> problems;
  auto blob_ok = [&](const std::string& digest) { return curl_blob_status(dest, repo, digest) == 200; };
  std::function<void(const std::string&, const std::string&, int)> visit = [&](const std::string& label,
                                                                               const std::string& ref, int depth) {
    std::string bytes = curl_manifest(dest, repo, ref);
    if (bytes.empty()) {
      problems.push_back(label + ": manifest " + ref + " missing");
      return;
    }
    auto m = parse_manifest(bytes, "");
    if (!m) {
      problems.push_back(label + ": manifest unreadable");
      return;
    }
    if (m->is_list) {
      for (const auto& c : m->children) {
        if (depth < 3) visit(label + " child", c.digest, depth + 1);
      }
      return;
    }
    if (!blob_ok(m->config.digest)) problems.push_back(label + ": config " + m->config.digest + " missing");
    for (const auto& l : m->layers) {
      if (!blob_ok(l.digest)) problems.push_back(label + ": layer " + l.digest + " missing");
    }
  };
  for (const auto& tag : list_tags(dest, repo)) visit(tag, tag, 0);
  return problems;
}

std::vector<std::string> list_tags(const TestRegistry& reg, const std::string& repo, const std::string& creds) {
  auto argv = curl_command(reg, creds);
  argv.push_back(reg.url() + "/v2/" + repo + "/tags/list?n=10000");
  auto r = run_command(argv);
  rapidjson::Document d;
  d.Parse(r.out.c_str());
  std::vector<std::string> tags;
  if (!d.HasParseError() && d.IsObject() && d.HasMember("tags") && d["tags"].IsArray()) tags = strings(d["tags"]);
  return tags;
}

std::vector<std::string> catalog(const TestRegistry& reg, const std::string& creds) {
  auto argv = curl_command(reg, creds);
  argv.push_back(reg.url() + "/v2/_catalog");
  auto r = run_command(argv);
  rapidjson::Document d;
  d.Parse(r.out.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("repositories")) {
    throw std::runtime_error("catalog unreadable: " + r.out + r.err);
  }
  return strings(d["repositories"]);
}

rapidjson::Document load_json(const std::string& path) {
  rapidjson::Document d;
  std::string text = read_file(path);
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << path << ": " << text;
  return d;
}

}  // namespace fastsync::testing
