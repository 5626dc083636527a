#include "cli/archive_mode.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/statvfs.h>

#include <algorithm>

#include "release/release.h"
#include "release/update_graph.h"

namespace fastsync::cli {

std::string human_size(std::uint64_t bytes) {
  if (bytes >= (1ull << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30));
  if (bytes >= (1u << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1u << 20));
  return fmt::format("{} KiB", (bytes + 1023) / 1024);
}

Result<ArchiveSource> open_archive_source(const CliOptions& o) {
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
  if (releases.empty()) {
    return Error::make(ErrorKind::Invalid, fmt::format("archive {} holds no finished release (was its --to-dir run "
                                                       "interrupted? run it again to complete it)",
                                                       o.from_dir));
  }
  if (matching.empty()) {
    return Error::make(ErrorKind::Invalid, fmt::format("archive {} does not hold {}{} (it holds {})", o.from_dir,
                                                       o.versions.empty() ? std::string("that release")
                                                                          : fmt::format("{}", fmt::join(o.versions, ", ")),
                                                       o.arch_given ? "-" + o.arch : "", have));
  }
  std::string arch = matching.front()->arch;
  for (const auto* r : matching) {
    if (r->arch != arch) {
      return Error::make(ErrorKind::Invalid, fmt::format("archive {} holds releases of several architectures ({}): "
                                                         "choose one with --arch",
                                                         o.from_dir, have));
    }
  }
  ArchiveSource source;
  for (const auto* r : matching) source.releases.push_back(*r);
  std::sort(source.releases.begin(), source.releases.end(), [](const auto& a, const auto& b) {
    return release::compare_versions(a.version, b.version).value_or(0) < 0;
  });
  std::string repo = source.releases.front().tag.substr(0, source.releases.front().tag.rfind(':'));
  source.repository = Repository{(*reader)->host(), repo};
  source.reader = std::move(*reader);
  return source;
}

Task<Status> check_relied_blobs(RegistryApi& api, const release::ArchiveIndex& index, const Repository& dest) {
  std::size_t missing = 0;
  std::map<std::string, std::size_t> by_archive;
  for (const auto& [digest, blob] : index.relies_on) {
    auto there = co_await api.blob_exists(dest, digest);
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
                                    "earlier archive(s) {}; mirror those first (fastsync --from-dir) — nothing was pushed",
                                    missing, index.relies_on.size(), dest.str(), from));
}

Task<Status> check_free_space(RegistryApi& api, stages::RunControl& run, const stages::Plan& plan,
                              const release::ArchiveWriter& writer) {
  auto sizes = co_await stages::plan_blob_sizes(api, run, plan);
  if (!sizes) co_return sizes.error();
  std::uint64_t need = writer.bytes_to_write(*sizes);
  struct statvfs fs {};
  if (::statvfs(writer.dir().c_str(), &fs) != 0) co_return Status{};  // cannot tell: the writes will say
  std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (need > free) {
    co_return Error::make(ErrorKind::Invalid,
                          fmt::format("not enough free space in {}: the archive needs {} more, {} is free", writer.dir(),
                                      human_size(need), human_size(free)));
  }
  co_return Status{};
}

std::map<std::string, std::string> archive_refs(const stages::Plan& plan,
                                                const std::vector<std::optional<stages::ImageOutcome>>& outcomes) {
  std::map<std::string, std::string> refs;
  for (std::size_t i = 0; i < plan.images.size() && i < outcomes.size(); ++i) {
    for (const auto& extra : plan.images[i].extra_tags) {
      if (outcomes[i] && outcomes[i]->status != stages::ImageStatus::Failed) refs[extra] = plan.images[i].digest;
    }
    const auto& o = outcomes[i];
    if (!o || o->status == stages::ImageStatus::Failed) continue;
    refs[plan.images[i].tag] = plan.images[i].digest;
  }
  return refs;
}

}  // namespace fastsync::cli
