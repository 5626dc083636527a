#include "cli/options.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <sstream>

#include "registry/core/reference.h"
#include "release/payload/release.h"
#include "release/payload/update_graph.h"
#include "stages/shard.h"

namespace po = boost::program_options;

namespace fastsync::cli {
namespace {

constexpr int kExitUsage = 2;

std::string usage_header() {
  return "fastsync: mirror an OpenShift release into a private registry.\n\n"
         "Usage:\n"
         "  fastsync --version 4.20.8 --dest-registry registry.example.com --pull-secret pull-secret.json \\\n"
         "    [--workers 16] [--blob-workers 4] [--dest-repo openshift/release] \\\n"
         "    [--source-registry quay.io/openshift-release-dev/ocp-release] [--insecure]\n\n"
         "Exit codes: 0 done; 1 some images failed; 2 bad command line or pull secret;\n"
         "3 release or destination unusable; 130/143 interrupted by SIGINT/SIGTERM.\n";
}

// Every problem is one line naming the flag.
std::optional<std::string> validate(CliOptions& o) {
  auto positive = [](const char* flag, int value, int max) -> std::optional<std::string> {
    if (value < 1 || value > max) return fmt::format("--{} must be between 1 and {} (got {})", flag, max, value);
    return std::nullopt;
  };
  if (!o.to_dir.empty() && !o.from_dir.empty()) return std::string("--to-dir and --from-dir cannot be combined");
  if (o.to_dir.empty() && o.dest_registry.empty()) {
    return std::string("--dest-registry (or --to-dir) is required (see fastsync --help)");
  }
  if (!o.to_dir.empty() && !o.dest_registry.empty()) {
    return std::string("--to-dir takes the place of --dest-registry: give one of them");
  }
  // "--version 4.20.8,4.20.9 --version 4.20.10": one list, in the order given, each once.
  std::vector<std::string> versions;
  for (const auto& v : o.versions) {
    std::size_t start = 0;
    while (start <= v.size()) {
      auto comma = v.find(',', start);
      std::string one = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (one.empty()) return fmt::format("--version \"{}\" has an empty entry", v);
      if (std::find(versions.begin(), versions.end(), one) == versions.end()) versions.push_back(one);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  o.versions = versions;
  if (!o.config.empty()) {
    // The file chooses what to mirror; the flags say where to and how.
    const char* chooser = !o.versions.empty()      ? "--version"
                          : !o.channels.empty()    ? "--channel"
                          : !o.min_version.empty() ? "--min-version"
                          : !o.max_version.empty() ? "--max-version"
                          : o.shortest_path        ? "--shortest-path"
                                                   : nullptr;
    if (chooser)
      return fmt::format("{}: the image set file {} chooses what to mirror; give one of them", chooser, o.config);
  }
  if (o.max_nested_paths < 0 || o.max_nested_paths > 64) {
    return fmt::format("--max-nested-paths must be between 0 and 64 (got {})", o.max_nested_paths);
  }
  if (!o.channels.empty() && !o.versions.empty()) {
    return std::string("--version and --channel both choose releases: give one of them");
  }
  if (o.channels.empty() && (!o.min_version.empty() || !o.max_version.empty() || o.shortest_path)) {
    return std::string("--min-version, --max-version and --shortest-path go with --channel");
  }
  if (!o.channels.empty() && !o.from_dir.empty()) {
    return std::string("--channel goes with the connected side: --from-dir mirrors the releases its archive holds");
  }
  auto web_url = [](const std::string& url) { return url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0; };
  if (!web_url(o.graph_data_url)) {
    return fmt::format("--graph-data \"{}\" must be an http:// or https:// URL", o.graph_data_url);
  }
  if (auto base = Reference::parse(o.graph_base_image); !base) {
    return fmt::format("--graph-base-image \"{}\": {}", o.graph_base_image, base.error().message);
  }
  if (!o.channels.empty() && !web_url(o.graph_url)) {
    return fmt::format("--graph-url \"{}\" must be an http:// or https:// URL", o.graph_url);
  }
  for (const auto* flag : {&o.min_version, &o.max_version}) {
    if (!flag->empty() && !release::is_release_version(*flag)) {
      return fmt::format("--{} \"{}\" is not a release version (e.g. 4.20.8)",
                         flag == &o.min_version ? "min-version" : "max-version", *flag);
    }
  }
  if (o.from_dir.empty() && o.versions.empty() && o.channels.empty() && o.config.empty()) {
    return std::string("--version (or --channel, or --config) is required (see fastsync --help)");
  }
  if (!o.since.empty() && o.to_dir.empty()) return std::string("--since goes with --to-dir");
  if (!o.shard.empty() && !stages::parse_shard(o.shard)) {
    return fmt::format("--shard \"{}\" must be K/N with 0 <= K < N, e.g. 0/4 (K is 0-based, as JOB_COMPLETION_INDEX)",
                       o.shard);
  }
  if ((!o.shard.empty() || o.blobs_only) && (!o.to_dir.empty() || !o.from_dir.empty())) {
    return fmt::format(
        "--{} splits a registry-to-registry mirror: an archive (--to-dir, --from-dir) is written or "
        "read by one process",
        o.shard.empty() ? "blobs-only" : "shard");
  }
  if (!o.shard.empty()) o.blobs_only = true;
  if (o.no_signatures && o.require_signatures) {
    return std::string("--no-signatures and --require-signatures cannot be combined");
  }
  if (o.no_signatures && (!o.signature_stores.empty() || !o.signature_keyring.empty())) {
    return std::string("--no-signatures turns signatures off: drop --signature-store/--signature-keyring");
  }
  if (!o.from_dir.empty() && !o.signature_stores.empty()) {
    return std::string("--from-dir reads signatures from the archive: --signature-store goes with the connected side");
  }
  for (const auto& store : o.signature_stores) {
    if (!web_url(store)) {
      return fmt::format("--signature-store \"{}\" must be an http:// or https:// URL", store);
    }
  }
  for (auto check : {positive("workers", o.workers, 4096), positive("blob-workers", o.blob_workers, 4096),
                     positive("stall-timeout", o.stall_timeout, 86400), positive("stop-timeout", o.stop_timeout, 86400),
                     positive("max-per-host", o.max_per_host, 4096)}) {
    if (check) return check;
  }
  for (auto [flag, value] : {std::pair{"check-workers", o.check_workers},
                             {"manifest-workers", o.manifest_workers},
                             {"blob-concurrency", o.blob_concurrency},
                             {"push-workers", o.push_workers}}) {
    if (value != 0) {
      if (auto check = positive(flag, value, 65536)) return check;
    }
  }
  for (const auto& r : o.resolve) {
    if (std::count(r.begin(), r.end(), ':') < 2) {
      return fmt::format("--resolve \"{}\" must look like host:port:address", r);
    }
  }
  if (o.retries < 0 || o.retries > 100) return fmt::format("--retries must be between 0 and 100 (got {})", o.retries);
  if (o.retry_delay_ms < 0) return fmt::format("--retry-delay-ms must not be negative (got {})", o.retry_delay_ms);
  if (!release::is_known_arch(o.arch)) {
    return fmt::format("--arch must be one of x86_64, aarch64, ppc64le, s390x, multi (got \"{}\")", o.arch);
  }
  for (const auto& v : o.versions) {
    if (!is_valid_tag(release::release_tag(v, o.arch))) {
      return fmt::format("--version \"{}\" is not a release version (e.g. 4.20.8)", v);
    }
  }
  if (o.to_dir.empty()) {
    if (auto host = RegistryHost::parse(o.dest_registry); !host) {
      return fmt::format("--dest-registry: {}", host.error().message);
    }
  }
  if (auto check = positive("archive-writers", o.archive_writers, 256)) return check;
  if (!is_valid_repository(o.dest_repo)) {
    return fmt::format("--dest-repo \"{}\" is not a valid repository path (lowercase, '/'-separated)", o.dest_repo);
  }
  auto ref = Reference::parse(split_scheme(o.source_registry).rest);
  if (!ref) return fmt::format("--source-registry: {}", ref.error().message);
  if (!ref->tag.empty() || !ref->digest.empty()) {
    return fmt::format("--source-registry \"{}\" must name a repository, without a tag or digest", o.source_registry);
  }
  if (!o.release_platform.empty() && std::count(o.release_platform.begin(), o.release_platform.end(), '/') < 1) {
    return fmt::format("--release-platform must look like os/arch, e.g. linux/arm64 (got \"{}\")", o.release_platform);
  }
  if (o.check_workers == 0) o.check_workers = o.workers;
  if (o.manifest_workers == 0) o.manifest_workers = o.workers;
  if (o.push_workers == 0) o.push_workers = o.workers;
  if (o.blob_concurrency == 0) o.blob_concurrency = o.workers * o.blob_workers;
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  double number = 0;
  try {
    std::size_t used = 0;
    number = std::stod(std::string(text.substr(0, digits)), &used);
    if (used != digits) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit(text.substr(digits));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // clang-format off
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},          {"b", 1},
      {"k", 1024.0},    {"kib", 1024.0},    {"kb", 1e3},
      {"m", 1048576.0}, {"mib", 1048576.0}, {"mb", 1e6},
      {"g", 1073741824.0},    {"gib", 1073741824.0},    {"gb", 1e9},
      {"t", 1099511627776.0}, {"tib", 1099511627776.0}, {"tb", 1e12}};
  // clang-format on
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      double bytes = number * factor;
      if (bytes < 0 || bytes > 1.8e19) return std::nullopt;
      return static_cast<std::uint64_t>(bytes);
    }
  }
  return std::nullopt;
}

ParsedCommandLine parse_command_line(int argc, const char* const argv[]) {
  CliOptions o;
  po::options_description main("Mirror");
  main.add_options()("config,c", po::value(&o.config)->value_name("FILE"),
                     "an image set file (oc-mirror v2's ImageSetConfiguration): releases by channel, additional "
                     "and blocked images; takes the place of --version and --channel")(
      "out-dir", po::value(&o.out_dir)->default_value(o.out_dir)->value_name("DIR"),
      "with --config: where the cluster resources are written (idms-oc-mirror.yaml, itms-oc-mirror.yaml)")(
      "max-nested-paths", po::value(&o.max_nested_paths)->default_value(o.max_nested_paths)->value_name("N"),
      "for registries that allow N path components at most (Quay: 2): deeper destination repositories are "
      "flattened as oc-mirror does (the last ones joined with '-'); 0: as they are")(
      "version", po::value(&o.versions)->composing()->value_name("X.Y.Z"),
      "release version to mirror, e.g. 4.20.8; repeatable or a comma list: several releases in one run "
      "(required, except with --channel or --from-dir)")(
      "dest-registry", po::value(&o.dest_registry)->value_name("HOST[:PORT][/PREFIX]"),
      "registry to mirror into, everything under PREFIX if given "
      "(required, except with --to-dir)")(
      "pull-secret", po::value(&o.pull_secret)->value_name("FILE"),
      "Docker auth JSON with credentials for the source and destination (default: $REGISTRY_AUTH_FILE, "
      "$XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json)")(
      "workers", po::value(&o.workers)->default_value(o.workers)->value_name("N"), "images processed in parallel")(
      "blob-workers", po::value(&o.blob_workers)->default_value(o.blob_workers)->value_name("N"),
      "blob transfers per image worker (the blob pool is workers x blob-workers)")(
      "dest-repo", po::value(&o.dest_repo)->default_value(o.dest_repo)->value_name("PATH"),
      "repository at the destination for the release and its components")(
      "source-registry", po::value(&o.source_registry)->default_value(o.source_registry)->value_name("REPO"),
      "where the release image lives")("insecure", po::bool_switch(&o.insecure),
                                       "skip TLS verification and allow plain HTTP");
  po::options_description airgap("Air gap");
  airgap.add_options()("to-dir", po::value(&o.to_dir)->value_name("DIR"),
                       "mirror into an archive directory instead of a registry (tar volumes + fastsync-archive.json)")(
      "from-dir", po::value(&o.from_dir)->value_name("DIR"),
      "mirror from an archive directory made by --to-dir instead of the source registry")(
      "archive-size", po::value<std::string>()->value_name("SIZE"),
      "largest volume of an archive, e.g. 4GiB or 700MiB (default 4000MiB: fits FAT32 and a DVD)")(
      "since", po::value(&o.since)->composing()->value_name("PREV"),
      "with --to-dir: leave out blobs an earlier archive (directory or index file) carried; repeatable")(
      "archive-writers", po::value(&o.archive_writers)->default_value(o.archive_writers)->value_name("N"),
      "with --to-dir: volumes written at once (blob transfers in flight)");
  po::options_description scale("Scale-out (see deploy/kubernetes)");
  scale.add_options()(
      "shard", po::value(&o.shard)->value_name("K/N"),
      "copy only shard K of N of the release's blobs (K from 0; balanced by bytes, the same split in every shard); "
      "implies --blobs-only")(
      "blobs-only", po::bool_switch(&o.blobs_only),
      "copy blobs and push no manifest or tag; exit 0 once they are in. A run without it then pushes the manifests");
  po::options_description signatures("Signatures");
  signatures.add_options()("signature-store", po::value(&o.signature_stores)->composing()->value_name("URL"),
                           "where release signatures are fetched (<URL>/sha256=<hex>/signature-N); repeatable "
                           "(default: mirror.openshift.com's and storage.googleapis.com's official stores)")(
      "signature-keyring", po::value(&o.signature_keyring)->value_name("FILE"),
      "OpenPGP public keys (binary or armored) to verify release signatures with "
      "(default: the keys the release payload carries, as oc does)")(
      "signature-dir", po::value(&o.signature_dir)->default_value(o.signature_dir)->value_name("DIR"),
      "where the signature ConfigMap (signature-sha256-<hex>.json) is written")(
      "require-signatures", po::bool_switch(&o.require_signatures),
      "stop before pushing anything unless a release signature verifies (exit 3)")(
      "no-signatures", po::bool_switch(&o.no_signatures), "do not fetch or verify release signatures")(
      "no-sigstore", po::bool_switch(&o.no_sigstore),
      "do not copy cosign signatures (sha256-<hex>.sig tags and OCI referrers) with the images");
  po::options_description release_opts("Release");
  release_opts.add_options()(
      "channel", po::value(&o.channels)->composing()->value_name("NAME"),
      "choose releases from the update graph's channel (e.g. stable-4.20); repeatable: one graph across them")(
      "min-version", po::value(&o.min_version)->value_name("X.Y.Z"),
      "with --channel: the oldest release to mirror (default: --max-version alone)")(
      "max-version", po::value(&o.max_version)->value_name("X.Y.Z"),
      "with --channel: the newest release to mirror (default: the channel's latest)")(
      "shortest-path", po::bool_switch(&o.shortest_path),
      "with --channel: only the releases on a shortest upgrade path from --min-version to --max-version")(
      "graph-url", po::value(&o.graph_url)->default_value(o.graph_url)->value_name("URL"),
      "the OpenShift update service's graph endpoint")(
      "graph-data", po::value(&o.graph_data_url)->default_value(o.graph_data_url)->value_name("URL"),
      "with an image set's graph: true: the update graph data tarball the graph image holds")(
      "graph-base-image", po::value(&o.graph_base_image)->default_value(o.graph_base_image)->value_name("IMAGE"),
      "with an image set's graph: true: the image the graph image is built on (it needs bash and cp)")(
      "arch", po::value(&o.arch)->default_value(o.arch)->value_name("ARCH"),
      "x86_64, aarch64, ppc64le, s390x or multi (the release tag is <version>-<arch>)")(
      "release-platform", po::value(&o.release_platform)->value_name("OS/ARCH"),
      "for a manifest-list release: the image whose release-manifests are read (default linux/amd64)")(
      "dry-run", po::bool_switch(&o.dry_run), "resolve the release, print the plan, write nothing");
  po::options_description tuning("Concurrency and network");
  tuning.add_options()("check-workers", po::value(&o.check_workers)->value_name("N"),
                       "destination checks in flight (default: workers)")(
      "manifest-workers", po::value(&o.manifest_workers)->value_name("N"),
      "manifest fetches in flight (default: workers)")(
      "blob-concurrency", po::value(&o.blob_concurrency)->value_name("N"),
      "blob transfers in flight, shared by all images (default: workers x blob-workers)")(
      "push-workers", po::value(&o.push_workers)->value_name("N"), "manifest pushes in flight (default: workers)")(
      "max-per-host", po::value(&o.max_per_host)->default_value(o.max_per_host)->value_name("N"),
      "requests in flight to one host")("retries", po::value(&o.retries)->default_value(o.retries)->value_name("N"),
                                        "retries per request (exponential backoff with jitter; Retry-After honoured)")(
      "retry-delay-ms", po::value(&o.retry_delay_ms)->default_value(o.retry_delay_ms)->value_name("MS"),
      "first backoff delay")("stall-timeout",
                             po::value(&o.stall_timeout)->default_value(o.stall_timeout)->value_name("SECONDS"),
                             "abort and retry a transfer that moves no byte for this long")(
      "stop-timeout", po::value(&o.stop_timeout)->default_value(o.stop_timeout)->value_name("SECONDS"),
      "after Ctrl-C or a fatal error, print what is still in flight and exit anyway if the run has not "
      "stopped within this long")("ca-file", po::value(&o.ca_file)->value_name("FILE"),
                                  "trust this CA (PEM) in addition to the system's")(
      "certs-dir", po::value(&o.certs_dirs)->composing()->value_name("DIR"),
      "per-registry certificates: DIR/<host[:port]>/*.crt (CAs), *.cert + *.key (client certificate); "
      "repeatable (default: /etc/containers/certs.d, /etc/docker/certs.d)")(
      "upload-chunk-size", po::value<std::string>()->value_name("SIZE"),
      "upload blobs larger than SIZE in chunks of SIZE (e.g. 8MiB), for proxies that cap request bodies "
      "(default: whole blobs, chunks only once a registry answers 413)")(
      "segment-size", po::value<std::string>()->value_name("SIZE"),
      "a blob of at least 2 x SIZE that would finish last is split into parallel Range requests of SIZE "
      "over free blob transfer slots, while they raise its rate (default 2MiB; 0: never)")(
      "segments-always", po::bool_switch(&o.segments_always), "split every such blob at once, whether it pays or not")(
      "segment-memory", po::value<std::string>()->value_name("SIZE"),
      "at most this much of those segments held in memory ahead of the upload, in all (default 12MiB, "
      "growing to 96MiB once split blobs' extra lanes pay; a size given here is the limit)")(
      "http2", po::bool_switch(&o.http2), "use HTTP/2 where the registry offers it (default HTTP/1.1)")(
      "resolve", po::value(&o.resolve)->composing()->value_name("HOST:PORT:ADDR"),
      "connect to ADDR for HOST:PORT, like curl --resolve (repeatable)");
  po::options_description output("Output");
  output.add_options()("report", po::value(&o.report_path)->value_name("FILE"), "write a JSON report of every image")(
      "idms-out", po::value(&o.idms_out)->value_name("FILE"), "write the ImageDigestMirrorSet (or ICSP) YAML here")(
      "icsp", po::bool_switch(&o.icsp), "print an ImageContentSourcePolicy instead (clusters before 4.13)")(
      "quiet,q", po::bool_switch(&o.quiet), "no progress display")(
      "verbose,v", po::bool_switch(&o.verbose), "log every retry and redirect")("help,h", "show this help");
  po::options_description all;
  all.add(main).add(airgap).add(scale).add(signatures).add(release_opts).add(tuning).add(output);

  ParsedCommandLine result;
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
    if (vm.count("help")) {
      std::ostringstream help;
      help << usage_header() << "\n" << all;
      result.text = help.str();
      return result;
    }
    po::notify(vm);
    o.arch_given = vm.count("arch") && !vm["arch"].defaulted();
    // A size option: its value into `target`, or false with the one error line.
    auto size_option = [&](const char* name, std::uint64_t minimum, const char* least, const char* example,
                           std::uint64_t& target, bool zero_allowed = false) {
      if (!vm.count(name)) return true;
      auto text = vm[name].as<std::string>();
      auto size = parse_size(text);
      if (!size || (*size < minimum && !(zero_allowed && *size == 0))) {
        result.exit_code = kExitUsage;
        result.text = fmt::format("--{} \"{}\" is not a size of at least {} (e.g. {}{})", name, text, least, example,
                                  zero_allowed ? ", or 0" : "");
        return false;
      }
      target = *size;
      return true;
    };
    if (!size_option("archive-size", 1u << 20, "1MiB", "4GiB", o.archive_size)) return result;
    if (vm.count("source-registry") && !vm["source-registry"].defaulted() && vm.count("from-dir")) {
      result.exit_code = kExitUsage;
      result.text = "--from-dir takes the place of --source-registry: give one of them";
      return result;
    }
    if (!size_option("upload-chunk-size", 1024, "1KiB", "8MiB", o.upload_chunk_size) ||
        !size_option("segment-size", 64u << 10, "64KiB", "2MiB", o.segment_size, true) ||
        !size_option("segment-memory", 1u << 20, "1MiB", "12MiB", o.segment_memory)) {
      return result;
    }
    o.segment_memory_given = vm.count("segment-memory") > 0;  // no default in vm: given
  } catch (const po::error& e) {
    result.exit_code = kExitUsage;
    result.text = fmt::format("{} (see fastsync --help)", e.what());
    return result;
  }
  if (auto problem = validate(o)) {
    result.exit_code = kExitUsage;
    result.text = *problem;
    return result;
  }
  result.options = std::move(o);
  return result;
}

}  // namespace fastsync::cli
