#include "cli/mirror_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/archive_mode.h"
#include "cli/output.h"
#include "cli/progress.h"
#include "cli/release_choice.h"
#include "cli/signals.h"
#include "graph/mirror_graph.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "registry/signature_stores.h"
#include "release/gpg_verifier.h"

namespace fastsync::cli {
namespace {

void print_error(const std::string& message) { std::fprintf(stderr, "fastsync: error: %s\n", message.c_str()); }

bool write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    print_error(fmt::format("cannot write {}", path));
    return false;
  }
  return true;
}

std::string dns_name(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '-';
  }
  return s;
}

// What the plan says about an image; Planned until an outcome is applied.
ImageRow planned_row(const stages::ImageJob& job) {
  ImageRow r;
  r.name = job.is_release ? "release" : job.name;
  r.source = job.source_ref();
  r.digest = job.digest;
  r.dest = job.dest_ref();
  return r;
}

ImageRow row_for(const stages::ImageJob& job, const std::optional<stages::ImageOutcome>& outcome,
                 const std::string& stopped) {
  ImageRow r = planned_row(job);
  r.status = row_status(outcome, !stopped.empty());
  if (outcome) {
    r.bytes = outcome->bytes;
    r.error = outcome->error;
  } else {
    r.error = stopped.empty() ? "not processed" : "not processed: " + stopped;
  }
  return r;
}

Result<std::unique_ptr<release::SignatureVerifier>> make_gpg_verifier(const std::vector<release::PublicKey>& keys) {
  auto verifier = release::GpgVerifier::create(keys);
  if (!verifier) return verifier.error();
  return std::unique_ptr<release::SignatureVerifier>(std::move(*verifier));
}

// --signature-keyring: read and tried once up front, so a bad file is one clear line.
Result<std::vector<release::PublicKey>> load_keyring(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in.good() && !in.eof()) return Error::make(ErrorKind::Invalid, fmt::format("cannot read --signature-keyring {}", path));
  std::vector<release::PublicKey> keys{release::PublicKey{path, bytes.str()}};
  if (keys.front().data.empty()) {
    return Error::make(ErrorKind::Invalid, fmt::format("--signature-keyring {}: cannot read it, or it is empty", path));
  }
  auto verifier = release::GpgVerifier::create(keys);
  if (!verifier) return Error::make(ErrorKind::Invalid, fmt::format("--signature-keyring {}", verifier.error().message));
  return keys;
}

// The ConfigMap oc adm release mirror writes, so the cluster can verify upgrades to this release.
std::optional<std::string> write_signature_config_map(const std::string& dir, const stages::PlannedRelease& planned) {
  std::vector<std::string> signatures;
  for (const auto& v : planned.signatures.verified) signatures.push_back(v.bytes);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string& digest = planned.release.manifest.digest;
  std::string path = (std::filesystem::path(dir) / release::signature_config_map_file(digest)).string();
  if (!write_text_file(path, release::signature_config_map_json(digest, signatures))) {
    return std::nullopt;
  }
  return path;
}

}  // namespace

int run_mirror_command(const CliOptions& o) {
  auto secret = AuthFile::locate(o.pull_secret);
  if (!secret) {
    print_error(secret.error().message);
    return kExitUsage;
  }
  auto auth = AuthFile::load(secret->path);
  if (!auth) {
    print_error(auth.error().message);
    return kExitUsage;
  }
  if (!o.quiet && secret->reason != "--pull-secret") {
    std::fprintf(stderr, "fastsync: using the pull secret %s (%s)\n", secret->path.c_str(), secret->reason.c_str());
  }
  if (!o.ca_file.empty() && ::access(o.ca_file.c_str(), R_OK) != 0) {
    print_error(fmt::format("cannot read --ca-file {}", o.ca_file));
    return kExitUsage;
  }
  RegistryHost dest_host;
  if (o.to_dir.empty()) dest_host = RegistryHost::parse(o.dest_registry).value();
  std::string source_text = o.source_registry, source_scheme;
  for (std::string scheme : {"https", "http"}) {
    if (source_text.rfind(scheme + "://", 0) == 0) {
      source_scheme = scheme;
      source_text.erase(0, scheme.size() + 3);
    }
  }
  auto source_ref = Reference::parse(source_text).value();

  Console console(o.quiet ? ProgressMode::Quiet : ::isatty(STDERR_FILENO) ? ProgressMode::Live : ProgressMode::Lines);
  install_logger(console, o.verbose);

  EngineOptions engine_options;
  engine_options.max_per_origin = o.max_per_host;
  engine_options.resolve = o.resolve;
  HttpEngine engine(engine_options);
  RegistryOptions registry_options;
  registry_options.insecure = o.insecure;
  registry_options.http2 = o.http2;
  registry_options.retry.retries = o.retries;
  registry_options.retry.base_delay = std::chrono::milliseconds(o.retry_delay_ms);
  registry_options.stall_limit = std::chrono::seconds(o.stall_timeout);
  registry_options.upload_chunk_size = o.upload_chunk_size;
  registry_options.segment_size = o.segment_size;
  registry_options.segment_memory = o.segment_memory;
  registry_options.blob_pool = static_cast<std::size_t>(o.blob_concurrency);
  registry_options.trust.read_environment();
  if (!o.ca_file.empty()) registry_options.trust.ca_files.push_back(o.ca_file);
  if (!o.certs_dirs.empty()) registry_options.trust.certs_dirs = o.certs_dirs;
  if (auto trusted = TrustStore(registry_options.trust).validate(); !trusted) {
    print_error(trusted.error().message);
    return kExitUsage;
  }
  RegistryClient client(engine, std::move(*auth), registry_options);
  if (!dest_host.scheme.empty()) client.set_scheme(dest_host.host, dest_host.scheme);
  if (!source_scheme.empty()) client.set_scheme(source_ref.registry, source_scheme);

  // The run's two ends: registries, or an archive directory on one side.
  Endpoints api(client);
  std::optional<ArchiveSource> archive_in;
  std::unique_ptr<release::ArchiveWriter> archive_out;
  if (!o.from_dir.empty()) {
    auto opened = open_archive_source(o);
    if (!opened) {
      print_error(opened.error().message);
      return kExitUnusable;
    }
    archive_in = std::move(*opened);
    api.add(archive_in->reader->host(), *archive_in->reader);
  }
  if (!o.to_dir.empty()) {
    release::ArchiveOptions archive_options;
    archive_options.volume_size = o.archive_size;
    archive_options.writers = o.archive_writers;
    archive_options.since = o.since;
    auto opened = release::ArchiveWriter::open(o.to_dir, archive_options);
    if (!opened) {
      print_error(opened.error().message);
      return kExitUnusable;
    }
    archive_out = std::move(*opened);
    api.add(archive_out->host(), *archive_out);
  }

  // The release's GPG signatures: from the stores (from the archive with
  // --from-dir), verified against --signature-keyring or the payload's keys.
  TrustStore store_trust(registry_options.trust);
  std::optional<SignatureStores> stores;
  stages::SignatureSettings signature_settings;
  if (!o.no_signatures) {
    if (!o.signature_keyring.empty()) {
      auto keys = load_keyring(o.signature_keyring);
      if (!keys) {
        print_error(keys.error().message);
        return kExitUsage;
      }
      signature_settings.keyring = std::move(*keys);
    }
    if (archive_in) {
      signature_settings.source = archive_in->reader.get();
    } else {
      stores.emplace(engine, store_trust, registry_options,
                     o.signature_stores.empty() ? default_signature_stores() : o.signature_stores);
      signature_settings.source = &*stores;
    }
    signature_settings.required = o.require_signatures;
    signature_settings.make_verifier = make_gpg_verifier;
  }

  stages::RunControl run;
  SignalWatcher signals(
      [&run](int sig) { run.cancel(sig == SIGINT ? "interrupted by SIGINT" : "terminated by SIGTERM"); },
      [&console, &client] { console.log_line(client.describe_activity()); });
  CancelWatchdog watchdog(
      std::chrono::seconds(o.stop_timeout), [&client] { return client.describe_activity(); },
      [&signals] { return signals.received() ? 128 + signals.received() : kExitUnusable; });
  run.set_on_cancel([&engine, &watchdog] {
    engine.cancel_all();
    watchdog.arm();
  });

  // Which releases: --version, the update graph's channels, or the archive's.
  ReleaseChoice choice;
  if (archive_in) {
    for (const auto& r : archive_in->releases) choice.releases.push_back(stages::ReleaseWanted{r.version, {}});
  } else {
    WebFetcher web(engine, store_trust, registry_options);
    auto chosen = choose_releases(web, o);
    if (!chosen) {
      print_error(chosen.error().message);
      return kExitUnusable;
    }
    choice = std::move(*chosen);
    std::fputs(format_choice(o, choice).c_str(), stdout);
  }

  stages::MirrorSpec spec;
  spec.releases = choice.releases;
  spec.arch = archive_in ? archive_in->releases.front().arch : o.arch;
  spec.platform = o.release_platform;
  spec.source = archive_in ? archive_in->repository : Repository{source_ref.registry, source_ref.repository};
  spec.dest = archive_out ? Repository{archive_out->host(), o.dest_repo} : Repository{dest_host.host, o.dest_repo};
  spec.check_destination = !o.dry_run;
  spec.signatures = signature_settings;
  spec.sigstore = !o.no_sigstore;
  spec.blobs_only = o.blobs_only;
  if (!o.shard.empty()) spec.shard = stages::parse_shard(o.shard);  // validated with the options
  // Where the cluster pulls each release from (an archive remembers it).
  auto release_source = [&](std::size_t i, const release::Release& rel) {
    return archive_in ? archive_in->releases[i].source : rel.repository.str();
  };

  RunSummary summary;
  summary.version = spec.releases.front().version;
  summary.arch = spec.arch;
  summary.dry_run = o.dry_run;
  summary.blobs_only.on = spec.blobs_only;
  summary.release_source = spec.source.str() + ":" + release::release_tag(summary.version, spec.arch);
  summary.pull_secret = secret->path;
  summary.dest_repository = spec.dest.str();
  summary.release.name = "release";
  summary.release.dest = spec.dest.str() + ":" + release::release_tag(summary.version, spec.arch);
  auto started = std::chrono::steady_clock::now();
  auto signal_exit = [&]() { return 128 + signals.received(); };
  auto stamp = [&] {
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    summary.bytes_moved = client.bytes_moved().load();
    summary.requests = client.request_counts();
  };
  auto finish = [&](int exit_code) {
    summary.exit_code = exit_code;
    stamp();
    if (!o.report_path.empty() && !write_text_file(o.report_path, report_json(summary)) && exit_code == 0) {
      exit_code = kExitSomeFailed;
    }
    return exit_code;
  };
  auto resolve_failed = [&](const Error& error) {
    print_error(error.message);
    summary.release.status = RowStatus::Failed;
    summary.release.error = error.message;
    return finish(signals.received() ? signal_exit() : kExitUnusable);
  };
  // Each release's row; `outcomes` empty for a dry run.
  auto summarize_releases = [&](const stages::Plan& plan, const std::vector<std::optional<stages::ImageOutcome>>& outcomes,
                                const std::string& stopped) {
    summary.releases.clear();
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      const auto& planned = plan.releases[i];
      ReleaseSummary r;
      r.version = planned.release.version;
      r.arch = planned.release.arch;
      r.source = release_source(i, planned.release) + "@" + planned.release.manifest.digest;
      r.digest = planned.release.manifest.digest;
      r.dest = plan.release_job(i).dest_ref();
      ImageRow row = outcomes.empty() ? planned_row(plan.release_job(i))
                                      : row_for(plan.release_job(i), outcomes[planned.job], stopped);
      r.status = row.status;
      r.error = row.error;
      for (auto id : planned.components) {
        r.components.add(outcomes.empty() ? RowStatus::Planned : row_status(outcomes[id], !stopped.empty()));
      }
      r.signatures = summarize_signatures(planned.signatures, planned.release);
      for (const auto& chosen : choice.from_graph) {
        if (chosen.version != r.version) continue;
        for (const auto& risk : chosen.risks) r.risks.push_back(fmt::format("{}: {} ({})", risk.name, risk.message, risk.url));
      }
      summary.releases.push_back(std::move(r));
    }
    summary.release_source = plan.release_job().source_ref();
    summary.release_digest = plan.release_job().digest;
    summary.signatures = summary.releases.front().signatures;
  };

  if (o.dry_run) {
    stages::ResolveRelease resolve(api, run, spec);
    auto resolved = sync_wait(resolve());
    if (!resolved.plan) return resolve_failed(*resolved.error);
    const auto& plan = *resolved.plan;
    std::fputs(format_plan(plan).c_str(), stdout);
    summary.blobs_only.share = plan.shard;
    if (plan.shard) std::fputs(("# shard " + format_share(*plan.shard) + "\n").c_str(), stdout);
    summarize_releases(plan, {}, {});
    for (const auto& r : summary.releases) {
      if (r.signatures.checked) {
        std::fputs(fmt::format("# signatures of {}: {}\n", r.version, signature_verdict(r.signatures)).c_str(), stdout);
      }
    }
    summary.release = planned_row(plan.release_job());
    for (const auto& job : plan.images) {
      summary.images.add(RowStatus::Planned);
      if (!job.is_release) summary.components.push_back(planned_row(job));
    }
    return finish(kExitOk);
  }

  // Before anything is written: an incremental archive's earlier blobs must be
  // at the destination; an archive's volumes must fit on the disk.
  std::optional<stages::Plan> known_plan;
  if (archive_in) {
    auto relied = sync_wait(check_relied_blobs(api, archive_in->reader->index(), spec.dest));
    if (!relied) {
      print_error(relied.error().message);
      return finish(signals.received() ? signal_exit() : kExitUnusable);
    }
  }
  if (archive_out) {
    stages::ResolveRelease resolve(api, run, spec);
    auto resolved = sync_wait(resolve());
    if (!resolved.plan) return resolve_failed(*resolved.error);
    auto room = sync_wait(check_free_space(api, run, *resolved.plan, *archive_out));
    if (!room) {
      print_error(room.error().message);
      return finish(signals.received() ? signal_exit() : kExitUnusable);
    }
    known_plan = std::move(resolved.plan);
  }

  graph::StageLimits limits;
  limits.check = static_cast<std::size_t>(o.check_workers);
  limits.manifest = static_cast<std::size_t>(o.manifest_workers);
  limits.blob = static_cast<std::size_t>(o.blob_concurrency);
  limits.push = static_cast<std::size_t>(o.push_workers);
  // An archive is written by a few writers: more transfers would only wait for one.
  if (archive_out) limits.blob = std::min<std::size_t>(limits.blob, static_cast<std::size_t>(o.archive_writers));
  graph::MirrorRun result;
  {
    ProgressReporter reporter(console, LiveCounters{run.progress, [&client] { return client.bytes_moved().load(); },
                                                    [&engine] { return engine.stats().in_flight; }});
    result = graph::run_mirror(api, run, spec, limits, std::move(known_plan));
  }

  if (!result.plan) {
    std::string why = result.resolve_error ? result.resolve_error->message : run.reason();
    return resolve_failed(Error::make(ErrorKind::Invalid, why));
  }
  const auto& plan = *result.plan;
  std::string stopped = run.cancelled() ? run.reason() : "";
  summary.blobs_only.share = plan.shard;
  summarize_releases(plan, result.outcomes, stopped);
  summary.release = row_for(plan.release_job(), result.outcomes[plan.releases.front().job], stopped);
  for (std::size_t i = 0; i < plan.images.size(); ++i) {
    auto row = row_for(plan.images[i], result.outcomes[i], stopped);
    summary.images.add(row.status);
    if (!plan.images[i].is_release) summary.components.push_back(std::move(row));
  }
  const auto& p = run.progress;
  summary.blobs_unique = p.blobs_total;
  summary.blobs_copied = p.blobs_copied;
  summary.blobs_mounted = p.blobs_mounted;
  summary.blobs_present = p.blobs_present;
  summary.blobs_failed = p.blobs_failed;
  // A stopped run: what it cancelled, and what it never reached, is not attempted.
  std::uint64_t blobs_ended = p.blobs_copied + p.blobs_mounted + p.blobs_present + p.blobs_failed;
  summary.blobs_not_attempted = stopped.empty() ? 0 : p.blobs_total - std::min<std::uint64_t>(p.blobs_total, blobs_ended);
  summary.sigstore.checked = spec.sigstore;
  summary.sigstore.found = p.attachments_found;
  summary.sigstore.copied = p.attachments_copied;
  summary.sigstore.present = p.attachments_present;
  summary.sigstore.failed = summary.sigstore.found - std::min(summary.sigstore.found, summary.sigstore.copied +
                                                                                       summary.sigstore.present);
  summary.stopped_because = stopped;

  int exit_code = signals.received()       ? signal_exit()
                  : !stopped.empty()       ? kExitUnusable
                  : summary.images.failed  ? kExitSomeFailed
                                           : kExitOk;
  stamp();
  std::fputs(format_summary(summary).c_str(), stdout);
  if (!stopped.empty() && !signals.received()) print_error(stopped);
  for (const auto& r : summary.releases) {
    if (!r.signatures.warning.empty()) std::fprintf(stderr, "fastsync: warning: %s\n", r.signatures.warning.c_str());
  }

  auto in_place = [&](std::size_t i) {
    auto status = summary.releases[i].status;
    return status == RowStatus::Copied || status == RowStatus::Skipped;
  };
  bool any_in_place = false;
  for (std::size_t i = 0; i < plan.releases.size(); ++i) any_in_place = any_in_place || in_place(i);
  if (spec.blobs_only && !any_in_place) {
    std::fputs(fmt::format("\n# No manifest or tag was pushed. Once every {} is done, run the same command without "
                           "--shard/--blobs-only: it finds the blobs there and pushes the manifests.\n",
                           spec.shard ? "shard" : "blobs-only run")
                   .c_str(),
               stdout);
  }
  if (archive_out) {
    std::vector<release::ArchiveRelease> releases;
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      if (!in_place(i)) continue;
      const auto& rel = plan.releases[i].release;
      release::ArchiveRelease carried{rel.version, rel.arch, spec.dest.path + ":" + rel.tag, rel.manifest.digest,
                                      rel.repository.str(), {}};
      // Only what verified crosses the gap; the far side verifies it again.
      for (const auto& v : plan.releases[i].signatures.verified) carried.signatures.push_back(v.bytes);
      releases.push_back(std::move(carried));
    }
    auto finished = archive_out->finish(releases, archive_refs(plan, result.outcomes), exit_code == kExitOk);
    if (!finished) {
      print_error(finished.error().message);
      if (exit_code == kExitOk) exit_code = kExitUnusable;
    }
    auto index = archive_out->index();
    std::uint64_t bytes = 0;
    for (const auto& v : index.volumes) bytes += v.size;
    std::fputs(fmt::format("\n# Archive {}: {} volume(s), {}{}{}.\n", o.to_dir, index.volumes.size(), human_size(bytes),
                           index.relies_on.empty() ? ""
                                                   : fmt::format(", relying on {} blobs of earlier archives",
                                                                 index.relies_on.size()),
                           index.complete ? "" : " — incomplete: run the same command again to finish it")
                   .c_str(),
               stdout);
    if (index.complete) {
      std::fputs(fmt::format("# Carry the directory across, then: fastsync --from-dir {} --dest-registry <mirror>\n",
                             o.to_dir)
                     .c_str(),
                 stdout);
    }
    std::fflush(stdout);
    return finish(exit_code);
  }
  if (any_in_place) {
    // What the cluster asks for: image-references' names, and the release repositories they came from.
    std::vector<std::string> release_sources;
    if (archive_in) {
      for (const auto& r : archive_in->releases) release_sources.push_back(r.source);
    }
    auto sources = mirrored_sources(plan, release_sources);
    std::string mirror = spec.dest.str();
    std::string versions = plan.releases.front().release.version;
    if (plan.releases.size() > 1) versions += "-" + plan.releases.back().release.version;
    std::string name = dns_name("fastsync-" + versions + "-" + spec.arch);
    std::string mirror_set = format_mirror_set(sources, mirror, name, o.icsp);
    std::string install;
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      if (!in_place(i)) continue;
      install += fmt::format("# {} {} with: {}@{}\n", i == 0 ? "Install or upgrade" : "               or",
                             plan.releases[i].release.version, release_source(i, plan.releases[i].release),
                             plan.releases[i].release.manifest.digest);
    }
    std::fputs(fmt::format("\n# To pull the release{} from the mirror, apply to the cluster:\n{}\n"
                           "# Or, for a new cluster, add to install-config.yaml:\n{}\n{}",
                           plan.releases.size() > 1 ? "s" : "", mirror_set, format_install_config(sources, mirror),
                           install)
                   .c_str(),
               stdout);
    if (!o.idms_out.empty() && !write_text_file(o.idms_out, mirror_set) && exit_code == kExitOk) {
      exit_code = kExitSomeFailed;
    }
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      const auto& planned = plan.releases[i];
      if (!in_place(i) || planned.signatures.verified.empty()) continue;
      auto written = write_signature_config_map(o.signature_dir, planned);
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
  }
  std::fflush(stdout);
  return finish(exit_code);
}

}  // namespace fastsync::cli
