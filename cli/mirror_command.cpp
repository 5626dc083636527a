// One run, top to bottom: options -> settings and the run's two ends -> the
// plan (from the release flags) -> the graph -> the summary, the report and
// what each end writes (mirror sets and ConfigMaps, or the archive's index).
#include "cli/mirror_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/ends.h"
#include "cli/image_set_plan.h"
#include "cli/output.h"
#include "cli/progress.h"
#include "cli/release_plan.h"
#include "cli/settings.h"
#include "cli/signals.h"
#include "graph/mirror_graph.h"
#include "registry/client/client.h"
#include "registry/client/signature_stores.h"
#include "registry/core/reference.h"
#include "release/signatures/gpg_verifier.h"

namespace fastsync::cli {
namespace {

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
  if (!in.good() && !in.eof())
    return Error::make(ErrorKind::Invalid, fmt::format("cannot read --signature-keyring {}", path));
  std::vector<release::PublicKey> keys{release::PublicKey{path, bytes.str()}};
  if (keys.front().data.empty()) {
    return Error::make(ErrorKind::Invalid, fmt::format("--signature-keyring {}: cannot read it, or it is empty", path));
  }
  auto verifier = release::GpgVerifier::create(keys);
  if (!verifier)
    return Error::make(ErrorKind::Invalid, fmt::format("--signature-keyring {}", verifier.error().message));
  return keys;
}

// Stage 1's last step: each end checks what it must once the plan is known.
Task<Status> preflight_ends(SourceEnd& source, DestinationEnd& dest, Repository dest_repo, stages::RunControl& run,
                            stages::Plan& plan) {
  auto ready = co_await source.preflight(plan, dest.endpoint(), dest_repo);
  if (!ready) co_return ready;
  co_return co_await dest.preflight(plan, run);
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
  auto settings = settings_from(o);
  if (!settings) {
    print_error(settings.error().message);
    return kExitUsage;
  }
  // An image set file: read and checked before anything else is asked.
  std::optional<ImageSetInput> image_set;
  if (!o.config.empty()) {
    auto read = read_image_set(o);
    if (!read) {
      print_error(read.error().message);
      return kExitUsage;
    }
    image_set = std::move(*read);
    if (!o.quiet) {
      for (const auto& note : image_set->set.notes) std::fprintf(stderr, "fastsync: note: %s\n", note.c_str());
    }
  }

  Console console(o.quiet ? ProgressMode::Quiet : ::isatty(STDERR_FILENO) ? ProgressMode::Live : ProgressMode::Lines);
  install_logger(console, o.verbose);

  HttpEngine engine(settings->engine);
  RegistryClient client(engine, std::move(*auth), settings->registry);
  // "http://host:port" on the command line forces that scheme for the host.
  if (o.to_dir.empty()) {
    auto dest_host = RegistryHost::parse(o.dest_registry).value();  // validated with the options
    if (!dest_host.scheme.empty()) client.set_scheme(dest_host.host, dest_host.scheme);
  }
  if (auto source = split_scheme(o.source_registry); !source.scheme.empty()) {
    client.set_scheme(Reference::parse(source.rest).value().registry, source.scheme);
  }

  // The run's two ends: registries, or an archive directory on one side.
  auto source = open_source_end(o, client);
  if (!source) {
    print_error(source.error().message);
    return kExitUnusable;
  }
  auto dest = open_destination_end(o, client, settings->archive, **source);
  if (!dest) {
    print_error(dest.error().message);
    return kExitUnusable;
  }

  // The release's GPG signatures: from the stores (from the archive with
  // --from-dir), verified against --signature-keyring or the payload's keys.
  TrustStore store_trust(settings->registry.trust);
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
    signature_settings.source = (*source)->signatures();
    if (!signature_settings.source) {
      stores.emplace(engine, store_trust, settings->registry,
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

  // The plan: which releases (the flags, the update graph, or the archive's), from where to where.
  WebFetcher web(engine, store_trust, settings->registry);
  auto planned = image_set ? plan_from_image_set(o, *image_set, **source, **dest, web, signature_settings)
                           : plan_from_release_flags(o, **source, **dest, web, signature_settings);
  if (!planned) {
    print_error(planned.error().message);
    return kExitUnusable;
  }
  std::fputs(planned->choice_text.c_str(), stdout);
  const stages::MirrorSpec& spec = planned->spec;
  // The file's run, or the far side of an archive one wrote: its files go to --out-dir.
  const bool image_set_run = image_set || !spec.additional.empty();

  RunSummary summary;
  if (!spec.releases.empty()) summary.version = spec.releases.front().version;
  summary.arch = spec.arch;
  summary.image_set = o.config;
  summary.dest_host = (*dest)->host();
  summary.dry_run = o.dry_run;
  summary.blobs_only.on = spec.blobs_only;
  summary.pull_secret = secret->path;
  summary.dest_repository = spec.dest.str();
  summary.release.name = "release";
  if (!spec.releases.empty()) {
    summary.release_source = spec.source.str() + ":" + release::release_tag(summary.version, spec.arch);
    summary.release.dest = spec.dest.str() + ":" + release::release_tag(summary.version, spec.arch);
  }
  // An image set run's files go to --out-dir.
  auto out_file = [&o](const std::string& name) {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    return (std::filesystem::path(o.out_dir) / name).string();
  };
  auto started = std::chrono::steady_clock::now();
  auto signal_exit = [&]() { return 128 + signals.received(); };
  auto finish = [&](int exit_code) {
    summary.exit_code = exit_code;
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    summary.bytes_moved = client.bytes_moved().load();
    summary.requests = client.request_counts();
    summary.throttled = engine.throttled();
    if (!o.report_path.empty() && !write_text_file(o.report_path, report_json(summary)) && exit_code == 0) {
      exit_code = kExitSomeFailed;
    }
    return exit_code;
  };
  // Each release's row; `outcomes` empty for a dry run.
  auto summarize_releases = [&](const stages::Plan& plan,
                                const std::vector<std::optional<stages::ImageOutcome>>& outcomes,
                                const std::string& stopped) {
    summary.releases.clear();
    for (std::size_t i = 0; i < plan.releases.size(); ++i) {
      const auto& planned_release = plan.releases[i];
      ReleaseSummary r;
      r.version = planned_release.release.version;
      r.arch = planned_release.release.arch;
      r.source = (*source)->release_source(i, planned_release.release) + "@" + planned_release.release.manifest.digest;
      r.digest = planned_release.release.manifest.digest;
      r.dest = plan.release_job(i).dest_ref();
      ImageRow row = outcomes.empty() ? planned_row(plan.release_job(i))
                                      : row_for(plan.release_job(i), outcomes[planned_release.job], stopped);
      r.status = row.status;
      r.error = row.error;
      for (auto id : planned_release.components) {
        r.components.add(outcomes.empty() ? RowStatus::Planned : row_status(outcomes[id], !stopped.empty()));
      }
      r.signatures = summarize_signatures(planned_release.signatures, planned_release.release);
      for (const auto& chosen : planned->choice.from_graph) {
        if (chosen.version != r.version) continue;
        for (const auto& risk : chosen.risks)
          r.risks.push_back(fmt::format("{}: {} ({})", risk.name, risk.message, risk.url));
      }
      summary.releases.push_back(std::move(r));
    }
    if (plan.releases.empty()) return;
    summary.release_source = plan.release_job().source_ref();
    summary.release_digest = plan.release_job().digest;
    summary.signatures = summary.releases.front().signatures;
  };

  // The run: stage 1 resolves the plan and the ends check it (a dry run stops
  // there, and never asks the destination anything); then every image flows.
  stages::Ends ends{(*source)->endpoint(), (*dest)->endpoint(), (*dest)->readable()};
  graph::Preflight preflight;
  if (!o.dry_run) {
    preflight = [&](stages::Plan& plan) { return preflight_ends(**source, **dest, spec.dest, run, plan); };
  }
  graph::MirrorRun result;
  {
    std::optional<ProgressReporter> reporter;
    if (!o.dry_run) {
      reporter.emplace(console, LiveCounters{run.progress, [&client] { return client.bytes_moved().load(); },
                                             [&engine] { return engine.stats().in_flight; }});
    }
    // An image set's dry run asks a registry destination (read-only) what it
    // lacks, for missing.txt; a release's dry run never touches the destination.
    auto mode = !o.dry_run                             ? graph::RunMode::Mirror
                : image_set_run && (*dest)->readable() ? graph::RunMode::Check
                                                       : graph::RunMode::Plan;
    result = graph::run_mirror(ends, run, spec, settings->limits, preflight, mode);
  }
  if (!result.plan) {
    std::string why = result.resolve_error ? result.resolve_error->message : run.reason();
    print_error(why);
    summary.release.status = RowStatus::Failed;
    summary.release.error = why;
    return finish(signals.received() ? signal_exit() : kExitUnusable);
  }
  const auto& plan = *result.plan;
  summary.blobs_only.share = plan.shard;
  summary.blocked = plan.blocked;

  if (o.dry_run) {
    const CheckedImages& checked = result.outcomes;  // empty unless the destination was asked
    std::fputs(format_plan(plan, checked).c_str(), stdout);
    if (plan.shard) std::fputs(("# shard " + format_share(*plan.shard) + "\n").c_str(), stdout);
    summarize_releases(plan, {}, {});
    for (const auto& r : summary.releases) {
      if (r.signatures.checked) {
        std::fputs(fmt::format("# signatures of {}: {}\n", r.version, signature_verdict(r.signatures)).c_str(), stdout);
      }
    }
    if (!plan.releases.empty()) summary.release = planned_row(plan.release_job());
    bool any_cannot = false;
    for (const auto& job : plan.images) {
      ImageRow row = planned_row(job);
      if (job.id < checked.size() && checked[job.id] && checked[job.id]->status == stages::ImageStatus::Failed) {
        row.status = RowStatus::Failed;
        row.error = checked[job.id]->error;
        any_cannot = true;
      }
      summary.images.add(row.status);
      if (!job.is_release) summary.components.push_back(std::move(row));
    }
    if (image_set_run) {
      bool written = write_text_file(out_file("mapping.txt"), format_mapping(plan));
      if (!checked.empty()) {
        written =
            write_text_file(out_file("missing.txt"), format_mapping(plan, checked, /*missing_only=*/true)) && written;
      }
      if (!written) return finish(kExitSomeFailed);
    }
    if (run.cancelled()) return finish(signals.received() ? signal_exit() : kExitUnusable);
    return finish(any_cannot ? kExitSomeFailed : kExitOk);
  }

  std::string stopped = run.cancelled() ? run.reason() : "";
  summarize_releases(plan, result.outcomes, stopped);
  if (!plan.releases.empty()) {
    summary.release = row_for(plan.release_job(), result.outcomes[plan.releases.front().job], stopped);
  }
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
  summary.blobs_not_attempted =
      stopped.empty() ? 0 : p.blobs_total - std::min<std::uint64_t>(p.blobs_total, blobs_ended);
  summary.sigstore.checked = spec.sigstore;
  summary.sigstore.found = p.attachments_found;
  summary.sigstore.copied = p.attachments_copied;
  summary.sigstore.present = p.attachments_present;
  summary.sigstore.failed =
      summary.sigstore.found - std::min(summary.sigstore.found, summary.sigstore.copied + summary.sigstore.present);
  summary.stopped_because = stopped;

  int exit_code = signals.received()      ? signal_exit()
                  : !stopped.empty()      ? kExitUnusable
                  : summary.images.failed ? kExitSomeFailed
                                          : kExitOk;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  summary.bytes_moved = client.bytes_moved().load();
  summary.throttled = engine.throttled();
  std::fputs(format_summary(summary).c_str(), stdout);
  if (!stopped.empty() && !signals.received()) print_error(stopped);
  for (const auto& r : summary.releases) {
    if (!r.signatures.warning.empty()) std::fprintf(stderr, "fastsync: warning: %s\n", r.signatures.warning.c_str());
  }
  bool any_in_place = std::any_of(summary.releases.begin(), summary.releases.end(), [](const ReleaseSummary& r) {
    return r.status == RowStatus::Copied || r.status == RowStatus::Skipped;
  });
  if (spec.blobs_only && !any_in_place) {
    std::fputs(fmt::format("\n# No manifest or tag was pushed. Once every {} is done, run the same command without "
                           "--shard/--blobs-only: it finds the blobs there and pushes the manifests.\n",
                           spec.shard ? "shard" : "blobs-only run")
                   .c_str(),
               stdout);
  }
  exit_code = (*dest)->finish(FinishedRun{plan, result.outcomes, summary, exit_code});
  if (image_set_run) {
    // What failed, with its reason, beside the cluster resources (none: no file, not an old one).
    std::string errors = format_errors(summary);
    std::error_code ec;
    if (errors.empty()) {
      std::filesystem::remove(out_file("mirroring-errors.txt"), ec);
    } else if (!write_text_file(out_file("mirroring-errors.txt"), errors) && exit_code == kExitOk) {
      exit_code = kExitSomeFailed;
    }
  }
  std::fflush(stdout);
  return finish(exit_code);
}

}  // namespace fastsync::cli
