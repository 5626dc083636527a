#include "cli/ends.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <tuple>

#include "cli/mirror_command.h"
#include "cli/progress.h"
#include "release/payload/release.h"
#include "release/payload/update_graph.h"
#include "release/signatures/signatures.h"

namespace fastsync::cli {

Task<Status> SourceEnd::preflight(const stages::Plan&, ImageDestination&, const Repository&) { co_return Status{}; }
Task<Status> DestinationEnd::preflight(stages::Plan&, stages::RunControl&) { co_return Status{}; }

namespace {

bool in_place(const ReleaseSummary& r) { return r.status == RowStatus::Copied || r.status == RowStatus::Skipped; }

bool landed(const std::optional<stages::ImageOutcome>& o) {
  return o && (o->status == stages::ImageStatus::Copied || o->status == stages::ImageStatus::Skipped);
}

// An image set's run: from the file, or from an archive one wrote.
bool is_image_set(const CliOptions& o, const stages::Plan& plan) {
  return !o.config.empty() || std::any_of(plan.images.begin(), plan.images.end(), [](const auto& job) {
    return job.is_additional || job.is_graph || job.is_catalog;
  });
}

// A catalog's resources are named after its repository's last part and its
// tag, as oc-mirror v2 names them: redhat-operator-index-v4-20.
std::string catalog_resource_name(const stages::ImageJob& job) {
  std::string base = job.dest.path.substr(job.dest.path.rfind('/') + 1) + "-" + job.tag;
  for (char& c : base) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
  }
  return base;
}

std::string format_catalog_source(const std::string& name, const std::string& image) {
  return fmt::format(
      "apiVersion: operators.coreos.com/v1alpha1\n"
      "kind: CatalogSource\n"
      "metadata:\n"
      "  name: {}\n"
      "  namespace: openshift-marketplace\n"
      "spec:\n"
      "  image: {}\n"
      "  sourceType: grpc\n",
      name, image);
}

std::string format_cluster_catalog(const std::string& name, const std::string& image) {
  return fmt::format(
      "apiVersion: olm.operatorframework.io/v1\n"
      "kind: ClusterCatalog\n"
      "metadata:\n"
      "  name: {}\n"
      "spec:\n"
      "  source:\n"
      "    type: Image\n"
      "    image:\n"
      "      ref: {}\n",
      name, image);
}

// updateService.yaml as oc-mirror v2 writes it: the OpenShift Update Service
// reading its graph from the mirrored graph image, its releases from the mirror.
std::string format_update_service(const std::string& graph_image, const std::string& releases) {
  return fmt::format(
      "apiVersion: updateservice.operator.openshift.io/v1\n"
      "kind: UpdateService\n"
      "metadata:\n"
      "  name: update-service-oc-mirror\n"
      "spec:\n"
      "  graphDataImage: {}\n"
      "  releases: {}\n"
      "  replicas: 2\n",
      graph_image, releases);
}

std::string dns_name(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '-';
  }
  return s;
}

// ---------------------------------------------------------------- sources

// The registries: the release at --source-registry, components where
// image-references names them (on that host).
class RegistrySource : public SourceEnd {
 public:
  RegistrySource(RegistryClient& client, Repository repository) : client_(client), repository_(std::move(repository)) {}
  ImageSource& endpoint() override { return client_; }
  Repository release_repository() const override { return repository_; }
  std::string release_source(std::size_t, const release::Release& rel) const override { return rel.repository.str(); }

 private:
  RegistryClient& client_;
  Repository repository_;
};

// --from-dir: the archive, and which of its releases to mirror.
class ArchiveSourceEnd : public SourceEnd {
 public:
  ArchiveSourceEnd(std::unique_ptr<release::ArchiveReader> reader, std::vector<release::ArchiveRelease> releases,
                   Repository repository)
      : reader_(std::move(reader)), releases_(std::move(releases)), repository_(std::move(repository)) {}
  ImageSource& endpoint() override { return *reader_; }
  SignatureSource* signatures() override { return reader_.get(); }
  Repository release_repository() const override { return repository_; }
  std::string release_source(std::size_t i, const release::Release&) const override { return releases_[i].source; }
  std::vector<std::string> release_sources() const override {
    std::vector<std::string> out;
    for (const auto& r : releases_) out.push_back(r.source);
    return out;
  }
  std::optional<std::vector<stages::ReleaseWanted>> releases() const override {
    std::vector<stages::ReleaseWanted> out;
    for (const auto& r : releases_) out.push_back(stages::ReleaseWanted{r.version, {}, r.arch});
    return out;
  }
  std::string arch_of_releases(const std::string& asked) const override {
    return releases_.empty() ? asked : releases_.front().arch;
  }
  std::vector<stages::AdditionalImage> carried_images(const DestinationEnd& dest) const override {
    std::vector<stages::AdditionalImage> out;
    for (const auto& image : reader_->index().images) {
      Reference inside{reader_->host(), image.repository, image.tag, image.digest};
      auto origin = Reference::parse(image.source);  // registry/path
      std::string path = origin ? origin->repository : image.repository;
      out.push_back(stages::AdditionalImage{inside, dest.repository(path), image.name, image.source, image.section});
    }
    return out;
  }

  // An incremental archive: every blob it relies on from earlier archives must
  // already be at the destination, before anything is pushed.
  Task<Status> preflight(const stages::Plan&, ImageDestination& dest, const Repository& dest_repo) override {
    const auto& index = reader_->index();
    std::size_t missing = 0;
    std::map<std::string, std::size_t> by_archive;
    for (const auto& [digest, blob] : index.relies_on) {
      auto there = co_await dest.blob_exists(dest_repo, digest);
      if (there) continue;
      if (there.error().kind != ErrorKind::NotFound) co_return there.error();
      ++missing;
      ++by_archive[blob.archive];
    }
    if (missing == 0) co_return Status{};
    std::string from;
    for (const auto& [name, n] : by_archive) from += (from.empty() ? "" : ", ") + name;
    co_return Error::make(ErrorKind::NotFound,
                          fmt::format("{} of the {} blobs this archive relies on are missing at {}: they were in the "
                                      "earlier archive(s) {}; mirror those first (fastsync --from-dir) — nothing was "
                                      "pushed",
                                      missing, index.relies_on.size(), dest_repo.str(), from));
  }

 private:
  std::unique_ptr<release::ArchiveReader> reader_;
  std::vector<release::ArchiveRelease> releases_;  // oldest first
  Repository repository_;                          // where the releases are tagged inside the archive
};

// Opens DIR (every volume there, sizes right) and picks the releases matching
// --version/--arch, or all of them (of every architecture it carries).
Result<std::unique_ptr<SourceEnd>> open_archive_source(const CliOptions& o) {
  auto reader = release::ArchiveReader::open(o.from_dir);
  if (!reader) return reader.error();
  const auto& releases = (*reader)->index().releases;
  std::vector<const release::ArchiveRelease*> matching;
  std::string have;
  for (const auto& r : releases) {
    have += (have.empty() ? "" : ", ") + r.version + "-" + r.arch;
    bool wanted = o.versions.empty() || std::find(o.versions.begin(), o.versions.end(), r.version) != o.versions.end();
    if (wanted && (!o.arch_given || r.arch == o.arch)) matching.push_back(&r);
  }
  const bool others = !(*reader)->index().images.empty();  // an image set's archive may hold no release
  if (releases.empty() && !others) {
    return Error::make(ErrorKind::Invalid, fmt::format("archive {} holds no finished release (was its --to-dir run "
                                                       "interrupted? run it again to complete it)",
                                                       o.from_dir));
  }
  if (matching.empty() && (!releases.empty() || !o.versions.empty())) {
    return Error::make(
        ErrorKind::Invalid,
        fmt::format("archive {} does not hold {}{} (it holds {})", o.from_dir,
                    o.versions.empty() ? std::string("that release") : fmt::format("{}", fmt::join(o.versions, ", ")),
                    o.arch_given ? "-" + o.arch : "", have.empty() ? "no release" : have));
  }
  std::vector<release::ArchiveRelease> chosen;
  for (const auto* r : matching) chosen.push_back(*r);
  // Oldest first; an image set's archive may carry several architectures of each.
  std::stable_sort(chosen.begin(), chosen.end(), [](const auto& a, const auto& b) {
    return release::compare_versions(a.version, b.version).value_or(0) < 0;
  });
  std::string repo = chosen.empty() ? o.dest_repo : chosen.front().tag.substr(0, chosen.front().tag.rfind(':'));
  Repository repository{(*reader)->host(), repo};
  return std::unique_ptr<SourceEnd>(
      std::make_unique<ArchiveSourceEnd>(std::move(*reader), std::move(chosen), std::move(repository)));
}

// ---------------------------------------------------------------- destinations

// A registry: the cluster is told how to pull from it (the mirror sets) and
// how to verify upgrades (the signature ConfigMaps).
class RegistryDestination : public DestinationEnd {
 public:
  RegistryDestination(RegistryClient& client, const CliOptions& o, SourceEnd& source, RegistryHost host)
      : client_(client), o_(o), source_(source), host_(std::move(host.host)), prefix_(std::move(host.prefix)) {}
  ImageDestination& endpoint() override { return client_; }
  ImageSource* readable() override { return &client_; }
  std::string host() const override { return host_; }
  Repository repository(const std::string& path) const override {
    return Repository{host_, nest_repository(prefix_.empty() ? path : prefix_ + "/" + path, o_.max_nested_paths)};
  }

  int finish(FinishedRun run) override {
    const auto& plan = run.plan;
    auto& summary = run.summary;
    int exit_code = run.exit_code;
    if (is_image_set(o_, plan)) exit_code = write_image_set_mirror_sets(run, exit_code);
    bool any = std::any_of(summary.releases.begin(), summary.releases.end(), in_place);
    if (!any) return exit_code;
    // What the cluster asks for: image-references' names, and the release repositories they came from.
    auto sources = mirrored_sources(plan, source_.release_sources());
    std::string mirror = summary.dest_repository;
    std::string versions = plan.releases.front().release.version;
    if (plan.releases.size() > 1) versions += "-" + plan.releases.back().release.version;
    std::string name = dns_name("fastsync-" + versions + "-" + summary.arch);
    std::string mirror_set = format_mirror_set(sources, mirror, name, o_.icsp);
    std::string install;
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      if (!in_place(summary.releases[i])) continue;
      install += fmt::format("# {} {} with: {}@{}\n", i == 0 ? "Install or upgrade" : "               or",
                             plan.releases[i].release.version, source_.release_source(i, plan.releases[i].release),
                             plan.releases[i].release.manifest.digest);
    }
    std::fputs(
        fmt::format("\n# To pull the release{} from the mirror, apply to the cluster:\n{}\n"
                    "# Or, for a new cluster, add to install-config.yaml:\n{}\n{}",
                    plan.releases.size() > 1 ? "s" : "", mirror_set, format_install_config(sources, mirror), install)
            .c_str(),
        stdout);
    if (!o_.idms_out.empty() && !write_text_file(o_.idms_out, mirror_set) && exit_code == kExitOk) {
      exit_code = kExitSomeFailed;
    }
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      const auto& planned = plan.releases[i];
      if (!in_place(summary.releases[i]) || planned.signatures.verified.empty()) continue;
      auto written = write_signature_config_map(planned);
      if (written) {
        summary.releases[i].signatures.config_map = *written;
        if (i == 0) summary.signatures.config_map = *written;
        std::fputs(fmt::format("# So the cluster can verify upgrades to {} ({} signature(s) verified), apply:\n"
                               "oc apply -f {}\n",
                               planned.release.version, planned.signatures.verified.size(), *written)
                       .c_str(),
                   stdout);
      } else if (exit_code == kExitOk) {
        exit_code = kExitSomeFailed;
      }
    }
    return exit_code;
  }

 private:
  // An image set's mirror sets, in --out-dir as oc-mirror v2 names them:
  // idms-oc-mirror.yaml for what the cluster pulls by digest (the releases,
  // additional images named by digest), itms-oc-mirror.yaml for additional
  // images named by tag. Only what landed is named; a file this run has no
  // entry for is removed, so an old one is never applied by mistake.
  int write_image_set_mirror_sets(const FinishedRun& run, int exit_code) const {
    const auto& plan = run.plan;
    std::set<MirrorEntry> by_digest, by_tag;
    if (std::any_of(run.summary.releases.begin(), run.summary.releases.end(), in_place)) {
      for (const auto& source : mirrored_sources(plan, source_.release_sources())) {
        by_digest.insert(MirrorEntry{source, run.summary.dest_repository});
      }
    }
    for (std::size_t i = 0; i < plan.images.size() && i < run.outcomes.size(); ++i) {
      const auto& job = plan.images[i];
      if (!job.is_additional || !landed(run.outcomes[i])) continue;
      (job.tag.empty() ? by_digest : by_tag).insert(MirrorEntry{job.named_as, job.dest.str()});
    }
    std::error_code ec;
    std::filesystem::create_directories(o_.out_dir, ec);
    for (auto [entries, file, kind] : {std::tuple{&by_digest, "idms-oc-mirror.yaml", MirrorSetKind::Digest},
                                       std::tuple{&by_tag, "itms-oc-mirror.yaml", MirrorSetKind::Tag}}) {
      std::string path = (std::filesystem::path(o_.out_dir) / file).string();
      if (entries->empty()) {
        std::filesystem::remove(path, ec);
        continue;
      }
      std::string text = format_mirror_set({entries->begin(), entries->end()}, "fastsync-image-set", kind);
      if (!write_text_file(path, text)) {
        if (exit_code == kExitOk) exit_code = kExitSomeFailed;
        continue;
      }
      std::fputs(
          fmt::format("\n# The image set's {} (written to {}): oc apply -f {}\n{}",
                      kind == MirrorSetKind::Digest ? "ImageDigestMirrorSet" : "ImageTagMirrorSet", path, path, text)
              .c_str(),
          stdout);
    }
    // Each rebuilt catalog, for OLM (CatalogSource) and OLM v1 (ClusterCatalog), by digest.
    for (std::size_t i = 0; i < plan.images.size() && i < run.outcomes.size(); ++i) {
      const auto& job = plan.images[i];
      if (!job.is_catalog || !landed(run.outcomes[i])) continue;
      std::string name = catalog_resource_name(job);
      std::string image = job.dest.at(job.digest);
      for (auto [prefix, text] : {std::pair{"cs-", format_catalog_source("cs-" + name, image)},
                                  {"cc-", format_cluster_catalog("cc-" + name, image)}}) {
        std::string path = (std::filesystem::path(o_.out_dir) / (prefix + name + ".yaml")).string();
        if (!write_text_file(path, text)) {
          if (exit_code == kExitOk) exit_code = kExitSomeFailed;
          continue;
        }
        std::fputs(
            fmt::format("\n# Catalog {} (written to {}): oc apply -f {}\n{}", job.name, path, path, text).c_str(),
            stdout);
      }
    }
    // The update service, once its graph image is in (and an old file never stays behind).
    std::string service_path = (std::filesystem::path(o_.out_dir) / "updateService.yaml").string();
    std::filesystem::remove(service_path, ec);
    for (std::size_t i = 0; i < plan.images.size() && i < run.outcomes.size(); ++i) {
      const auto& job = plan.images[i];
      if (!job.is_graph || !landed(run.outcomes[i])) continue;
      std::string text = format_update_service(job.dest.at(job.digest), run.summary.dest_repository);
      if (!write_text_file(service_path, text)) {
        if (exit_code == kExitOk) exit_code = kExitSomeFailed;
        continue;
      }
      std::fputs(
          fmt::format("\n# The update service (written to {}): oc apply -f {}\n{}", service_path, service_path, text)
              .c_str(),
          stdout);
    }
    return exit_code;
  }

  // The ConfigMap oc adm release mirror writes, so the cluster can verify upgrades to this release.
  std::optional<std::string> write_signature_config_map(const stages::PlannedRelease& planned) const {
    std::vector<std::string> signatures;
    for (const auto& v : planned.signatures.verified) signatures.push_back(v.bytes);
    std::error_code ec;
    std::filesystem::create_directories(o_.signature_dir, ec);
    const std::string& digest = planned.release.manifest.digest;
    std::string path = (std::filesystem::path(o_.signature_dir) / release::signature_config_map_file(digest)).string();
    if (!write_text_file(path, release::signature_config_map_json(digest, signatures))) return std::nullopt;
    return path;
  }

  RegistryClient& client_;
  const CliOptions& o_;
  SourceEnd& source_;
  std::string host_;
  std::string prefix_;  // --dest-registry host/prefix
};

// oc-compatible names of the images a finished run put in the archive: ref name -> digest.
std::map<std::string, std::string> archive_refs(const stages::Plan& plan,
                                                const std::vector<std::optional<stages::ImageOutcome>>& outcomes) {
  std::map<std::string, std::string> refs;
  for (std::size_t i = 0; i < plan.images.size() && i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    if (!o || o->status == stages::ImageStatus::Failed) continue;
    const auto& job = plan.images[i];
    if (job.is_additional || job.is_graph || job.is_catalog) {
      // Named by repository too: additional images come from anywhere.
      refs[job.tag.empty() ? job.dest.path + "@" + job.digest : job.dest.path + ":" + job.tag] = job.digest;
      continue;
    }
    refs[job.tag] = job.digest;
    for (const auto& extra : job.extra_tags) refs[extra] = job.digest;
  }
  return refs;
}

// --to-dir: the archive. Its room on disk is checked before anything is
// fetched; at the end its index says what it holds, and the user is told how
// to carry it across.
class ArchiveDestination : public DestinationEnd {
 public:
  ArchiveDestination(std::unique_ptr<release::ArchiveWriter> writer, const CliOptions& o, SourceEnd& source)
      : writer_(std::move(writer)), o_(o), source_(source) {}
  ImageDestination& endpoint() override { return *writer_; }
  ImageSource* readable() override { return nullptr; }
  std::string host() const override { return writer_->host(); }

  // Room for what the plan still needs written: every image's manifests are
  // read now (stage 3 then skips them) for the sizes of its blobs.
  Task<Status> preflight(stages::Plan& plan, stages::RunControl& run) override {
    co_await stages::read_all_manifests(source_.endpoint(), run, !o_.no_sigstore, plan);
    std::uint64_t need = writer_->bytes_to_write(stages::planned_sizes(plan));
    struct statvfs fs {};
    if (::statvfs(writer_->dir().c_str(), &fs) != 0) co_return Status{};  // cannot tell: the writes will say
    std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (need > free) {
      co_return Error::make(
          ErrorKind::Invalid,
          fmt::format("not enough free space in {}: the archive needs {} more, {} is free", writer_->dir(),
                      human_bytes(static_cast<double>(need)), human_bytes(static_cast<double>(free))));
    }
    co_return Status{};
  }

  int finish(FinishedRun run) override {
    const auto& plan = run.plan;
    int exit_code = run.exit_code;
    std::vector<release::ArchiveRelease> releases;
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      if (!in_place(run.summary.releases[i])) continue;
      const auto& rel = plan.releases[i].release;
      release::ArchiveRelease carried{rel.version,          rel.arch, o_.dest_repo + ":" + rel.tag, rel.manifest.digest,
                                      rel.repository.str(), {}};
      // Only what verified crosses the gap; the far side verifies it again.
      for (const auto& v : plan.releases[i].signatures.verified) carried.signatures.push_back(v.bytes);
      releases.push_back(std::move(carried));
    }
    // An image set's other images, so the far side can push them and name them in its mirror sets.
    std::vector<release::ArchiveImage> images;
    for (std::size_t i = 0; i < plan.images.size() && i < run.outcomes.size(); ++i) {
      const auto& job = plan.images[i];
      if (!(job.is_additional || job.is_graph || job.is_catalog) || !landed(run.outcomes[i])) continue;
      std::string section = job.is_graph ? "platform.graph" : job.is_catalog ? "catalog" : job.section;
      images.push_back(release::ArchiveImage{section, job.name, job.named_as, job.dest.path, job.digest, job.tag});
    }
    auto finished = writer_->finish(releases, images, archive_refs(plan, run.outcomes), exit_code == kExitOk);
    if (!finished) {
      print_error(finished.error().message);
      if (exit_code == kExitOk) exit_code = kExitUnusable;
    }
    auto index = writer_->index();
    std::uint64_t bytes = 0;
    for (const auto& v : index.volumes) bytes += v.size;
    std::fputs(fmt::format("\n# Archive {}: {} volume(s), {}{}{}.\n", o_.to_dir, index.volumes.size(),
                           human_bytes(static_cast<double>(bytes)),
                           index.relies_on.empty()
                               ? ""
                               : fmt::format(", relying on {} blobs of earlier archives", index.relies_on.size()),
                           index.complete ? "" : " — incomplete: run the same command again to finish it")
                   .c_str(),
               stdout);
    if (index.complete) {
      std::fputs(fmt::format("# Carry the directory across, then: fastsync --from-dir {} --dest-registry <mirror>\n",
                             o_.to_dir)
                     .c_str(),
                 stdout);
    }
    return exit_code;
  }

 private:
  std::unique_ptr<release::ArchiveWriter> writer_;
  const CliOptions& o_;
  SourceEnd& source_;
};

}  // namespace

Result<std::unique_ptr<SourceEnd>> open_source_end(const CliOptions& o, RegistryClient& client) {
  if (!o.from_dir.empty()) return open_archive_source(o);
  auto ref = Reference::parse(split_scheme(o.source_registry).rest).value();  // validated with the options
  return std::unique_ptr<SourceEnd>(std::make_unique<RegistrySource>(client, Repository{ref.registry, ref.repository}));
}

Result<std::unique_ptr<DestinationEnd>> open_destination_end(const CliOptions& o, RegistryClient& client,
                                                             const release::ArchiveOptions& archive,
                                                             SourceEnd& source) {
  if (!o.to_dir.empty()) {
    auto writer = release::ArchiveWriter::open(o.to_dir, archive);
    if (!writer) return writer.error();
    return std::unique_ptr<DestinationEnd>(std::make_unique<ArchiveDestination>(std::move(*writer), o, source));
  }
  auto host = RegistryHost::parse(o.dest_registry).value();  // validated with the options
  return std::unique_ptr<DestinationEnd>(std::make_unique<RegistryDestination>(client, o, source, host));
}

}  // namespace fastsync::cli
