#include "cli/output.h"

#include <fmt/format.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "cli/progress.h"

namespace fastsync::cli {

std::string format_plan(const stages::Plan& plan, const CheckedImages& checked) {
  std::size_t width = 7;
  for (const auto& job : plan.images) {
    if (!job.is_additional && !job.is_catalog) width = std::max(width, job.name.size());
  }
  std::size_t missing = 0, there = 0, cannot = 0;
  auto standing = [&](std::size_t id) -> std::string {
    if (id >= checked.size() || !checked[id]) return "";
    switch (checked[id]->status) {
      case stages::ImageStatus::Skipped:
        ++there;
        return "  [already there]";
      case stages::ImageStatus::Failed:
        ++cannot;
        return "  [cannot be mirrored: " + checked[id]->error + "]";
      default:
        ++missing;
        return "  [missing]";
    }
  };
  std::string out;
  for (std::size_t i = 0; i < plan.releases.size(); ++i) {
    out += fmt::format("release {}: {} ({} components)\n", plan.releases[i].release.tag,
                       plan.release_job(i).source_ref(), plan.releases[i].release.components.size());
  }
  std::string section;  // the image set's section the images below come from
  for (const auto& job : plan.images) {
    std::string heading = job.section.empty() ? "" : job.section + ":";
    if (!heading.empty() && heading != section) out += heading + "\n";
    section = heading;
    if (job.is_additional || job.is_catalog) {  // as the file names it, and what it resolved to (or was rebuilt as)
      bool by_digest = job.name.find('@') != std::string::npos || job.digest.empty();
      out += fmt::format("  {}{}  ->  {}{}\n", job.name, by_digest ? "" : " (" + job.digest + ")", job.dest_ref(),
                         standing(job.id));
      continue;
    }
    out += fmt::format(
        "  {:<{}}  {}  ->  {}{}{}\n", job.is_release ? "release" : job.name, width, job.source_ref(), job.dest_ref(),
        job.extra_tags.empty() ? "" : fmt::format(" (+{} more tags)", job.extra_tags.size()), standing(job.id));
  }
  for (const auto& [catalog, lines] : plan.catalogs_kept) {
    out += fmt::format("catalog {} keeps:\n", catalog);
    for (const auto& line : lines) out += "  " + line + "\n";
  }
  if (!plan.blocked.empty()) out += "blockedImages:\n";
  for (const auto& b : plan.blocked)
    out += fmt::format("  blocked  {} (named by {}): {}\n", b.reference, b.named_by, b.why);
  std::string counts;
  if (!checked.empty()) {
    counts = fmt::format(" ({} missing at the destination, {} already there{})", missing, there,
                         cannot ? fmt::format(", {} cannot be mirrored", cannot) : "");
  }
  out += fmt::format("{} images planned{}{}; dry run: nothing was written to the destination.\n", plan.images.size(),
                     counts, plan.blocked.empty() ? "" : fmt::format(", {} blocked", plan.blocked.size()));
  return out;
}

std::string signature_verdict(const SignatureSummary& s) {
  if (s.verified.empty()) return "warning: " + s.warning;
  return fmt::format("{} verified by {}", s.verified.size(), s.keys);
}

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

const char* to_string(RowStatus status) {
  switch (status) {
    case RowStatus::Planned:
      return "planned";
    case RowStatus::Copied:
      return "copied";
    case RowStatus::Skipped:
      return "skipped";
    case RowStatus::Failed:
      return "failed";
    case RowStatus::BlobsIn:
      return "blobs-in";
    case RowStatus::NotAttempted:
      return "not-attempted";
  }
  return "unknown";
}

RowStatus row_status(const std::optional<stages::ImageOutcome>& outcome, bool run_stopped) {
  if (!outcome) return run_stopped ? RowStatus::NotAttempted : RowStatus::Failed;
  switch (outcome->status) {
    case stages::ImageStatus::Planned:
      return RowStatus::Planned;
    case stages::ImageStatus::Copied:
      return RowStatus::Copied;
    case stages::ImageStatus::Skipped:
      return RowStatus::Skipped;
    case stages::ImageStatus::BlobsIn:
      return RowStatus::BlobsIn;
    case stages::ImageStatus::Failed:
      break;
  }
  // A fatal failure stopped the run: the first said why, the rest only repeat it.
  bool stopped_by_run = outcome->cancelled || outcome->fatal;
  return run_stopped && stopped_by_run ? RowStatus::NotAttempted : RowStatus::Failed;
}

void ImageCounts::add(RowStatus status) {
  ++total;
  switch (status) {
    case RowStatus::Copied:
      ++copied;
      break;
    case RowStatus::Skipped:
      ++skipped;
      break;
    case RowStatus::Failed:
      ++failed;
      break;
    case RowStatus::BlobsIn:
      ++blobs_in;
      break;
    case RowStatus::NotAttempted:
      ++not_attempted;
      break;
    case RowStatus::Planned:
      break;
  }
}

namespace {

// "N copied, N skipped (already there), N failed[, N not attempted (the run stopped)], of N"
std::string format_counts(const ImageCounts& c, bool blobs_only, const char* skipped_note) {
  std::string out = blobs_only ? fmt::format("{} with their blobs in", c.blobs_in) : fmt::format("{} copied", c.copied);
  out += fmt::format(", {} skipped{}, {} failed", c.skipped, skipped_note, c.failed);
  if (c.not_attempted) out += fmt::format(", {} not attempted (the run stopped)", c.not_attempted);
  return out + fmt::format(", of {}", c.total);
}

}  // namespace

std::string format_summary(const RunSummary& s) {
  std::string out;
  std::string verdict = !s.stopped_because.empty() ? "stopped"
                        : s.images.failed > 0      ? "finished with failures"
                        : s.blobs_only.on          ? "blobs in, no manifest pushed"
                                                   : "done";
  if (!s.image_set.empty()) {
    std::string versions;
    for (const auto& r : s.releases) versions += (versions.empty() ? "" : ", ") + r.version;
    out += fmt::format("fastsync: image set {} ({}{}) -> {}: {}\n", s.image_set,
                       s.releases.empty() ? "no release" : "releases " + versions + " " + s.arch,
                       s.blocked.empty() ? "" : fmt::format(", {} blocked", s.blocked.size()), s.dest_host, verdict);
  } else if (s.releases.size() > 1) {
    std::string versions;
    for (const auto& r : s.releases) versions += (versions.empty() ? "" : ", ") + r.version;
    out += fmt::format("fastsync: releases {} ({}) -> {}: {}\n", versions, s.arch, s.dest_repository, verdict);
  } else {
    out += fmt::format("fastsync: release {}-{} -> {}: {}\n", s.version, s.arch, s.dest_repository, verdict);
  }
  if (!s.stopped_because.empty()) out += fmt::format("  stopped: {}\n", s.stopped_because);
  if (s.blobs_only.share) out += "  shard:   " + format_share(*s.blobs_only.share) + "\n";
  out += "  images:  " + format_counts(s.images, s.blobs_only.on, " (already there)") + "\n";
  out += fmt::format("  blobs:   {} copied, {} mounted, {} already present, {} failed{}, of {} unique\n",
                     s.blobs_copied, s.blobs_mounted, s.blobs_present, s.blobs_failed,
                     s.blobs_not_attempted ? fmt::format(", {} not attempted (the run stopped)", s.blobs_not_attempted)
                                           : std::string(),
                     s.blobs_unique);
  double rate = s.seconds > 0 ? static_cast<double>(s.bytes_moved) / s.seconds : 0;
  out += fmt::format("  moved:   {} in {} ({}/s)\n", human_bytes(static_cast<double>(s.bytes_moved)),
                     human_duration(s.seconds), human_bytes(rate));
  for (const auto& [origin, t] : s.throttled) {
    out += fmt::format(
        "  throttled: {} pushed back {} times (429, 503 or refused); down to {} requests at once, {} "
        "at the end\n",
        origin, t.pushbacks, t.lowest, t.now);
  }
  if (s.releases.size() > 1 || !s.image_set.empty()) {
    for (const auto& r : s.releases) {
      out += fmt::format("  release {}: {} {}@{} (components: {})\n", r.version, to_string(r.status), r.dest, r.digest,
                         format_counts(r.components, s.blobs_only.on, ""));
      if (r.status == RowStatus::Failed && !r.error.empty()) out += fmt::format("    why: {}\n", r.error);
      if (r.signatures.checked) out += fmt::format("    signatures: {}\n", signature_verdict(r.signatures));
    }
  } else if (s.release.in_place()) {
    out += fmt::format("  release: {}@{}\n", s.release.dest, s.release_digest);
  }
  if (s.signatures.checked && s.releases.size() == 1 && s.image_set.empty()) {
    out += fmt::format("  signatures: {}\n", signature_verdict(s.signatures));
    for (const auto& r : s.signatures.rejected) out += fmt::format("    refused: {}\n", r);
  }
  if (s.sigstore.checked) {
    out += fmt::format("  sigstore: {} found, {} copied, {} already present, {} failed\n", s.sigstore.found,
                       s.sigstore.copied, s.sigstore.present, s.sigstore.failed);
  }
  if (!s.blocked.empty()) {
    out += "  blocked (never copied):\n";
    for (const auto& b : s.blocked) out += fmt::format("    {} named by {}: {}\n", b.reference, b.named_by, b.why);
  }
  std::vector<const ImageRow*> failed;
  for (const auto& row : s.components) {
    if (row.status == RowStatus::Failed) failed.push_back(&row);
  }
  if (s.release.status == RowStatus::Failed) failed.push_back(&s.release);
  if (!failed.empty()) {
    out += "  failed:\n";
    std::size_t shown = 0;
    for (const auto* row : failed) {
      if (++shown > 50) {
        out += fmt::format("    ... and {} more (see --report)\n", failed.size() - 50);
        break;
      }
      out += fmt::format("    {}: {}\n", row->name, row->error);
    }
  }
  return out;
}

std::string format_share(const stages::ShardShare& share) {
  return fmt::format("{}: {} of the plan's {} blobs, {} of {}{}", share.shard.str(), share.blobs.size(),
                     share.plan_blobs, human_bytes(static_cast<double>(share.bytes)),
                     human_bytes(static_cast<double>(share.plan_bytes)),
                     share.unread_images ? fmt::format(" ({} images unreadable, left out)", share.unread_images) : "");
}

std::vector<std::string> mirrored_sources(const stages::Plan& plan, const std::vector<std::string>& release_sources) {
  std::set<std::string> sources(release_sources.begin(), release_sources.end());
  for (const auto& r : plan.releases) {
    if (release_sources.empty()) sources.insert(r.release.repository.str());
    for (const auto& c : r.release.components) {
      // As image-references names it: that is what the cluster will ask for.
      auto at = c.original.find('@');
      sources.insert(c.original.substr(0, at));
    }
  }
  return {sources.begin(), sources.end()};
}

std::string format_mirror_set(const std::vector<MirrorEntry>& entries, const std::string& name, MirrorSetKind kind) {
  std::string out;
  switch (kind) {
    case MirrorSetKind::ContentSourcePolicy:
      out += "apiVersion: operator.openshift.io/v1alpha1\nkind: ImageContentSourcePolicy\n";
      break;
    case MirrorSetKind::Digest:
      out += "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\n";
      break;
    case MirrorSetKind::Tag:
      out += "apiVersion: config.openshift.io/v1\nkind: ImageTagMirrorSet\n";
      break;
  }
  const char* list = kind == MirrorSetKind::ContentSourcePolicy ? "repositoryDigestMirrors"
                     : kind == MirrorSetKind::Digest            ? "imageDigestMirrors"
                                                                : "imageTagMirrors";
  out += fmt::format("metadata:\n  name: {}\nspec:\n  {}:\n", name, list);
  for (const auto& e : entries) out += fmt::format("  - mirrors:\n    - {}\n    source: {}\n", e.mirror, e.source);
  return out;
}

std::string format_mirror_set(const std::vector<std::string>& sources, const std::string& mirror,
                              const std::string& name, bool icsp) {
  std::vector<MirrorEntry> entries;
  for (const auto& source : sources) entries.push_back(MirrorEntry{source, mirror});
  return format_mirror_set(entries, name, icsp ? MirrorSetKind::ContentSourcePolicy : MirrorSetKind::Digest);
}

std::string format_install_config(const std::vector<std::string>& sources, const std::string& mirror) {
  std::string out = "imageDigestSources:\n";
  for (const auto& source : sources) out += fmt::format("- mirrors:\n  - {}\n  source: {}\n", mirror, source);
  return out;
}

SignatureSummary summarize_signatures(const stages::SignatureCheck& check, const release::Release& release) {
  SignatureSummary out;
  out.checked = check.checked;
  out.keys = check.keys;
  for (const auto& v : check.verified) out.verified.push_back(fmt::format("{} ({})", v.origin, v.key));
  out.rejected = check.rejected;
  out.problems = check.problems;
  out.warning = check.warning(release);
  return out;
}

std::string report_json(const RunSummary& s) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  auto count = [&](const char* key, std::uint64_t value) {
    w.Key(key);
    w.Uint64(value);
  };
  auto row = [&](const ImageRow& r) {
    w.StartObject();
    str("name", r.name);
    str("source", r.source);
    str("digest", r.digest);
    str("dest", r.dest);
    str("status", to_string(r.status));
    count("bytes", r.bytes);
    if (!r.error.empty()) str("error", r.error);
    w.EndObject();
  };
  w.StartObject();
  w.Key("release");
  w.StartObject();
  str("version", s.version);
  str("arch", s.arch);
  str("source", s.release_source);
  str("digest", s.release_digest);
  str("dest", s.release.dest);
  str("status", to_string(s.release.status));
  if (!s.release.error.empty()) str("error", s.release.error);
  w.EndObject();
  if (!s.pull_secret.empty()) str("pull_secret", s.pull_secret);
  w.Key("releases");
  w.StartArray();
  for (const auto& r : s.releases) {
    w.StartObject();
    str("version", r.version);
    str("arch", r.arch);
    str("source", r.source);
    str("digest", r.digest);
    str("dest", r.dest);
    str("status", to_string(r.status));
    if (!r.error.empty()) str("error", r.error);
    const auto& c = r.components;
    for (auto [key, value] : {std::pair{"components", c.total},
                              {"copied", c.copied + c.blobs_in},
                              {"skipped", c.skipped},
                              {"failed", c.failed},
                              {"not_attempted", c.not_attempted}})
      count(key, value);
    if (r.signatures.checked) {
      count("signatures_verified", r.signatures.verified.size());
      if (!r.signatures.warning.empty()) str("signature_warning", r.signatures.warning);
      if (!r.signatures.config_map.empty()) str("signature_config_map", r.signatures.config_map);
    }
    w.Key("risks");
    w.StartArray();
    for (const auto& risk : r.risks) w.String(risk.c_str(), static_cast<rapidjson::SizeType>(risk.size()));
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  if (s.signatures.checked) {
    auto list = [&](const char* key, const std::vector<std::string>& items) {
      w.Key(key);
      w.StartArray();
      for (const auto& i : items) w.String(i.c_str(), static_cast<rapidjson::SizeType>(i.size()));
      w.EndArray();
    };
    w.Key("signatures");
    w.StartObject();
    str("keys", s.signatures.keys);
    list("verified", s.signatures.verified);
    list("rejected", s.signatures.rejected);
    list("problems", s.signatures.problems);
    if (!s.signatures.warning.empty()) str("warning", s.signatures.warning);
    if (!s.signatures.config_map.empty()) str("config_map", s.signatures.config_map);
    w.EndObject();
  }
  if (s.sigstore.checked) {
    w.Key("sigstore");
    w.StartObject();
    for (auto [key, value] : {std::pair{"found", s.sigstore.found},
                              {"copied", s.sigstore.copied},
                              {"present", s.sigstore.present},
                              {"failed", s.sigstore.failed}})
      count(key, value);
    w.EndObject();
  }
  w.Key("images");
  w.StartArray();
  for (const auto& r : s.components) row(r);
  w.EndArray();
  w.Key("summary");
  w.StartObject();
  w.Key("dry_run");
  w.Bool(s.dry_run);
  count("images", s.images.total);
  count("copied", s.images.copied);
  count("skipped", s.images.skipped);
  count("failed", s.images.failed);
  count("not_attempted", s.images.not_attempted);
  if (s.blobs_only.on) {
    count("blobs_in", s.images.blobs_in);
    w.Key("blobs_only");
    w.StartObject();
    const stages::ShardShare none;  // without --shard: every blob, no share to report
    const auto& share = s.blobs_only.share ? *s.blobs_only.share : none;
    if (s.blobs_only.share) str("shard", share.shard.str());
    for (auto [key, value] : {std::pair<const char*, std::uint64_t>{"share_blobs", share.blobs.size()},
                              {"share_bytes", share.bytes},
                              {"plan_blobs", share.plan_blobs},
                              {"plan_bytes", share.plan_bytes},
                              {"unread_images", share.unread_images}})
      count(key, value);
    w.EndObject();
  }
  w.Key("blobs");
  w.StartObject();
  count("unique", s.blobs_unique);
  count("copied", s.blobs_copied);
  count("mounted", s.blobs_mounted);
  count("present", s.blobs_present);
  count("failed", s.blobs_failed);
  count("not_attempted", s.blobs_not_attempted);
  w.EndObject();
  if (!s.image_set.empty()) str("image_set", s.image_set);
  w.Key("blocked");
  w.StartArray();
  for (const auto& b : s.blocked) {
    w.StartObject();
    str("reference", b.reference);
    str("named_by", b.named_by);
    str("why", b.why);
    w.EndObject();
  }
  w.EndArray();
  count("bytes_moved", s.bytes_moved);
  w.Key("seconds");
  w.Double(s.seconds);
  if (!s.stopped_because.empty()) str("stopped", s.stopped_because);
  w.Key("requests");
  w.StartObject();
  for (const auto& [kind, n] : s.requests) count(kind.c_str(), n);
  w.EndObject();
  w.Key("throttled");
  w.StartObject();
  for (const auto& [origin, t] : s.throttled) {
    w.Key(origin.c_str());
    w.StartObject();
    count("pushbacks", t.pushbacks);
    w.Key("lowest");
    w.Int(t.lowest);
    w.Key("at_end");
    w.Int(t.now);
    w.EndObject();
  }
  w.EndObject();
  w.Key("exit_code");
  w.Int(s.exit_code);
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string format_mapping(const stages::Plan& plan, const CheckedImages& checked, bool missing_only) {
  std::string out;
  for (const auto& job : plan.images) {
    if (missing_only) {
      bool lacking =
          job.id < checked.size() && checked[job.id] && checked[job.id]->status == stages::ImageStatus::Planned;
      if (!lacking) continue;
    }
    out += fmt::format("docker://{}=docker://{}\n", job.source_ref(), job.dest_ref());
  }
  return out;
}

std::string format_errors(const RunSummary& s) {
  std::string out;
  auto add = [&](const ImageRow& row) {
    if (row.status == RowStatus::Failed)
      out += fmt::format("{} {} -> {}: {}\n", row.name, row.source, row.dest, row.error);
  };
  for (const auto& r : s.releases) {
    if (r.status == RowStatus::Failed)
      out += fmt::format("release {} {} -> {}: {}\n", r.version, r.source, r.dest, r.error);
  }
  for (const auto& row : s.components) add(row);
  return out;
}

}  // namespace fastsync::cli
