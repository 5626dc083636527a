#include "cli/settings.h"

#include <algorithm>

#include "registry/net/trust.h"

namespace fastsync::cli {

Result<RunSettings> settings_from(const CliOptions& o) {
  RunSettings s;
  s.engine.max_per_origin = o.max_per_host;
  s.engine.resolve = o.resolve;

  auto& r = s.registry;
  r.insecure = o.insecure;
  r.http2 = o.http2;
  r.retry.retries = o.retries;
  r.retry.base_delay = std::chrono::milliseconds(o.retry_delay_ms);
  r.stall_limit = std::chrono::seconds(o.stall_timeout);
  r.upload_chunk_size = o.upload_chunk_size;
  r.segment_size = o.segment_size;
  r.segments_always = o.segments_always;
  r.segment_memory = o.segment_memory;
  // The default grows, up to eight times, once lanes pay (segmented_download.h); a given size is the limit.
  r.segment_memory_ceiling = o.segment_memory_given ? o.segment_memory : 8 * o.segment_memory;
  r.trust.read_environment();
  if (!o.ca_file.empty()) r.trust.ca_files.push_back(o.ca_file);
  if (!o.certs_dirs.empty()) r.trust.certs_dirs = o.certs_dirs;
  if (auto trusted = TrustStore(r.trust).validate(); !trusted) return trusted.error();

  s.archive.volume_size = o.archive_size;
  s.archive.writers = o.archive_writers;
  s.archive.since = o.since;

  s.limits.check = static_cast<std::size_t>(o.check_workers);
  s.limits.manifest = static_cast<std::size_t>(o.manifest_workers);
  s.limits.push = static_cast<std::size_t>(o.push_workers);
  // The blob pool: transfers in flight, shared by every image. An archive is
  // written by a few writers: more transfers would only wait for one.
  std::size_t pool = static_cast<std::size_t>(o.blob_concurrency);
  if (!o.to_dir.empty()) pool = std::min(pool, static_cast<std::size_t>(o.archive_writers));
  s.limits.blob = pool;
  r.blob_pool = pool;
  return s;
}

}  // namespace fastsync::cli
