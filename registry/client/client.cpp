#include "registry/client/client.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace fastsync {
namespace {

TrustSettings effective_trust(const RegistryOptions& options) {
  TrustSettings trust = options.trust;
  if (options.insecure) trust.verify = false;
  return trust;
}

std::optional<UploadSession> session_of(const std::string& location) {
  if (location.empty()) return std::nullopt;
  return UploadSession{location};
}

}  // namespace

RegistryClient::RegistryClient(HttpEngine& engine, AuthFile auth, RegistryOptions options)
    : engine_(engine),
      auth_(std::move(auth)),
      options_(std::move(options)),
      trust_(effective_trust(options_)),
      segment_budget_(std::make_shared<SegmentBudget>(options_.blob_pool, options_.segment_memory, &bytes_moved_,
                                                      options_.segment_memory_ceiling)),
      file_readers_(options_.blob_pool) {
  // Copies waiting for a slot of the blob pool wake when the run is cancelled.
  engine_.on_cancel([budget = segment_budget_] { budget->cancel(); });
  test_unwakeable_copy_ = std::getenv("FASTSYNC_TEST_UNWAKEABLE_COPY") != nullptr;
}

void RegistryClient::set_scheme(const std::string& host, const std::string& scheme) {
  std::lock_guard lock(mutex_);
  schemes_[host] = scheme;
}

Registry& RegistryClient::registry(const std::string& host) {
  std::lock_guard lock(mutex_);
  auto& slot = registries_[host];
  if (!slot) {
    auto scheme = schemes_.find(host);
    slot = std::make_unique<Registry>(engine_, host, auth_, options_, trust_, board_,
                                      scheme == schemes_.end() ? std::string() : scheme->second);
  }
  return *slot;
}

std::map<std::string, std::uint64_t> RegistryClient::request_counts() {
  std::map<std::string, std::uint64_t> totals;
  std::lock_guard lock(mutex_);
  for (auto& [host, reg] : registries_) {
    for (int k = 0; k < static_cast<int>(CallKind::Count_); ++k) {
      totals[to_string(static_cast<CallKind>(k))] += reg->counters().count(static_cast<CallKind>(k));
    }
    totals["retries"] += reg->counters().retries.load();
    totals["token_refreshes"] += reg->counters().token_refreshes.load();
  }
  return totals;
}

std::string RegistryClient::describe_activity() { return board_.report(engine_.snapshot(std::chrono::seconds(1))); }

Task<Result<ManifestData>> RegistryClient::get_manifest(const Repository& repo, const std::string& reference) {
  co_return co_await registry(repo.registry).get_manifest(repo.path, reference);
}

Task<Result<std::vector<Attachment>>> RegistryClient::referrer_attachments(Repository repo, std::string digest) {
  auto digests = co_await registry(repo.registry).referrers(repo.path, digest);
  if (!digests) co_return digests.error();
  std::vector<Attachment> found;
  for (auto& d : *digests) found.push_back(Attachment{{}, std::move(d)});
  co_return found;
}

Task<Result<std::vector<Attachment>>> RegistryClient::attachments(const Repository& repo, const std::string& digest) {
  // A repository whose tags fit in one page was listed once: a signature tag
  // missing from the list needs no HEAD. (quay.io's art-dev does not fit, and
  // is asked per image.) The referrers API is asked at the same time: a rerun
  // asks this for every image.
  auto listed = co_await listed_tags(repo);
  if (listed && !listed->contains(sigstore_tag(digest))) co_return co_await referrer_attachments(repo, digest);
  std::vector<Task<Result<std::vector<Attachment>>>> asks;
  asks.push_back(ImageSource::attachments(repo, digest));
  asks.push_back(referrer_attachments(repo, digest));
  auto answers = co_await when_all(std::move(asks));
  if (!answers[0]) co_return answers[0];
  if (!answers[1]) co_return answers[1].error();
  std::vector<std::string> referrers;
  for (const auto& a : *answers[1]) referrers.push_back(a.digest);
  add_referrers(*answers[0], referrers);
  co_return std::move(answers[0]);
}

Task<Result<std::string>> RegistryClient::manifest_digest(const Repository& repo, const std::string& reference) {
  auto head = co_await registry(repo.registry).head_manifest(repo.path, reference);
  if (!head) co_return head.error();
  co_return head->digest;
}

Task<Status> RegistryClient::put_manifest(const Repository& repo, const std::string& reference,
                                          const ManifestData& manifest) {
  // Freshness is about the repository as this run found it: ask before our
  // first tag lands there, or a blob probed after it (an image whose blobs were
  // all present is tagged early) would see our own tag and fall back to HEADs.
  if (!is_sha256_digest(reference)) co_await fresh_repository(repo);
  // An image found present may share a blob that a mount-as-probe is landing on.
  std::optional<LinkGate::Pass> pass;
  if (found_present(repo, manifest.digest)) {
    auto gate = link_gate(repo);
    auto held = co_await gate->put();
    pass.emplace(std::move(held));
  }
  co_return co_await registry(repo.registry).put_manifest(repo.path, reference, manifest);
}

Task<Status> RegistryClient::blob_exists(const Repository& repo, const std::string& digest) {
  auto size = co_await registry(repo.registry).head_blob(repo.path, digest);
  if (!size) co_return size.error();
  co_return Status{};
}

Task<Result<MountOutcome>> RegistryClient::mount_blob(const Repository& to, const std::string& digest,
                                                      const Repository& from) {
  auto result = co_await registry(to.registry).mount_blob(to.path, digest, from.path);
  if (!result) co_return result.error();
  MountOutcome outcome;
  outcome.mounted = result->mounted;
  if (result->session) outcome.upload_session = result->session->location;
  co_return outcome;
}

Task<Result<std::uint64_t>> RegistryClient::copy_blob(const Repository& from, const Repository& to,
                                                      const Descriptor& blob, std::string upload_session) {
  if (test_unwakeable_copy_.exchange(false)) {
    // Test hook (FASTSYNC_TEST_UNWAKEABLE_COPY): the first copy waits on what
    // nothing ever sets, so a test can prove the stop watchdog reports it.
    auto activity = board_.begin(fmt::format("copy blob {}: test hook, a wait nothing wakes", blob.digest));
    auto never = std::make_shared<AsyncValue<bool>>();
    activity.working("waiting forever");
    std::fprintf(stderr, "fastsync: test hook: copy of %s waits forever\n", blob.digest.c_str());
    co_await never->wait();
  }
  BlobCopyOptions options;
  options.bytes_moved = &bytes_moved_;
  options.session = session_of(upload_session);
  options.segments.segment_size = options_.segment_size;
  options.segments.policy = options_.segments_always ? SegmentPolicy::Always : SegmentPolicy::Adaptive;
  options.segment_budget = segment_budget_;
  co_return co_await fastsync::copy_blob(registry(from.registry), from.path, registry(to.registry), to.path, blob,
                                         options);
}

std::unique_ptr<BlobReader> RegistryClient::open_blob(const Repository& repo, const Descriptor& blob) {
  return open_blob_reader(registry(repo.registry), repo.path, blob, &bytes_moved_);
}

Task<Result<std::uint64_t>> RegistryClient::receive_blob(ImageSource& source, const Repository& from,
                                                         const Repository& to, const Descriptor& blob,
                                                         std::string upload_session) {
  if (&source == static_cast<ImageSource*>(this))
    co_return co_await copy_blob(from, to, blob, std::move(upload_session));
  BlobOpener opener = [&source, from, blob] { return source.open_blob(from, blob); };
  co_return co_await store_blob(to, blob, std::move(upload_session), std::move(opener));
}

Task<Result<std::uint64_t>> RegistryClient::store_blob(const Repository& to, const Descriptor& blob,
                                                       std::string upload_session, BlobOpener open_source) {
  BlobCopyOptions options;
  options.bytes_moved = &bytes_moved_;
  options.session = session_of(upload_session);
  options.readers = &file_readers_;
  co_return co_await fastsync::store_blob(std::move(open_source), registry(to.registry), to.path, blob, options);
}

Task<Status> RegistryClient::upload_blob(const Repository& repo, const std::string& digest,
                                         std::shared_ptr<const std::string> bytes, std::string upload_session) {
  auto session = session_of(upload_session);
  co_return co_await registry(repo.registry).upload_blob(repo.path, digest, std::move(bytes), std::move(session));
}

namespace {

// The answer slot for `key`, and whether this caller came first and must fill
// it: a repository is asked once per run, later callers wait for the answer.
template <typename T>
std::pair<std::shared_ptr<AsyncValue<T>>, bool> claim(std::mutex& mutex,
                                                      std::map<std::string, std::shared_ptr<AsyncValue<T>>>& slots,
                                                      const std::string& key) {
  std::lock_guard lock(mutex);
  auto& slot = slots[key];
  if (slot) return {slot, false};
  slot = std::make_shared<AsyncValue<T>>();
  return {slot, true};
}

}  // namespace

Task<bool> RegistryClient::fresh_repository(const Repository& repo) {
  auto claimed = claim(mutex_, fresh_, repo.str());
  if (claimed.second) {
    auto tags = co_await registry(repo.registry).has_tags(repo.path);
    // Unknown (an error) counts as not fresh: HEAD first is never wrong.
    claimed.first->set(tags && !*tags);
  }
  co_return co_await claimed.first->wait();  // Liveness: one request (stall limit, cancellation)
}

Task<RegistryClient::TagSet> RegistryClient::listed_tags(const Repository& repo) {
  auto claimed = claim(mutex_, listed_, repo.str());
  if (claimed.second) {
    auto page = co_await registry(repo.registry).first_tag_page(repo.path, options_.tag_page_size);
    TagSet all;
    if (page && !page->more) all = std::make_shared<const std::set<std::string>>(page->tags.begin(), page->tags.end());
    claimed.first->set(std::move(all));
  }
  co_return co_await claimed.first->wait();  // Liveness: one request (stall limit, cancellation)
}

Task<Result<BlobProbe>> RegistryClient::probe_blob(Repository to, std::string digest,
                                                   std::optional<Repository> mount_from) {
  if (co_await fresh_repository(to)) {
    // distribution, Quay and Harbor answer a mount from the repository itself
    // 201 when the blob is there (an interrupted earlier run) and 202 with a session when not.
    auto gate = link_gate(to);
    auto pass = co_await gate->mount();
    auto mounted = co_await registry(to.registry).mount_blob(to.path, digest, mount_from ? mount_from->path : to.path);
    if (mounted && mounted->mounted) co_return BlobProbe{true, mount_from.has_value(), {}};
    if (mounted && mounted->session) co_return BlobProbe{false, false, mounted->session->location};
    // Refused outright (some registries answer mounts 401 or 404): ask the usual way.
  }
  co_return co_await ImageDestination::probe_blob(std::move(to), std::move(digest), std::move(mount_from));
}

std::shared_ptr<LinkGate> RegistryClient::link_gate(const Repository& repo) {
  std::lock_guard lock(mutex_);
  auto& gate = link_gates_[repo.str()];
  if (!gate) gate = std::make_shared<LinkGate>();
  return gate;
}

bool RegistryClient::found_present(const Repository& repo, const std::string& digest) {
  std::lock_guard lock(mutex_);
  return found_present_.contains(repo.at(digest));
}

Task<Result<ManifestStanding>> RegistryClient::find_manifest(Repository repo, std::string digest, std::string tag,
                                                             bool with_bytes) {
  std::string key = repo.at(digest);
  auto standing = co_await ask_manifest(std::move(repo), std::move(digest), std::move(tag), with_bytes);
  if (standing && standing->present) {
    std::lock_guard lock(mutex_);
    found_present_.insert(std::move(key));
  }
  co_return standing;
}

Task<Result<ManifestStanding>> RegistryClient::ask_manifest(Repository repo, std::string digest, std::string tag,
                                                            bool with_bytes) {
  if (!tag.empty() && co_await fresh_repository(repo)) {
    // A tagged image in a repository with no tags was never mirrored there
    // whole: at most an interrupted run's untagged children are, and pushing
    // those again is harmless. Asking by digest cost the destination a
    // request per image (a release's first mirror: 190 GETs answered 404).
    co_return ManifestStanding{false, false, std::nullopt};
  }
  if (!tag.empty()) {
    std::optional<bool> tagged;
    if (with_bytes) {
      auto manifest = co_await get_manifest(repo, tag);
      if (manifest && manifest->digest == digest) {
        ManifestStanding standing{true, true, std::move(*manifest)};
        co_return standing;
      }
      if (manifest || manifest.error().kind == ErrorKind::NotFound) tagged = false;
    } else {
      auto named = co_await manifest_digest(repo, tag);
      if (named && *named == digest) co_return ManifestStanding{true, true, std::nullopt};
      if (named || named.error().kind == ErrorKind::NotFound) tagged = false;
    }
    // Missing (a new release's tag) or naming another image: the digest decides
    // whether the image is there, and the tag is known to need a push.
    auto standing =
        co_await ImageDestination::find_manifest(std::move(repo), std::move(digest), std::move(tag), with_bytes);
    if (standing) standing->tagged = tagged;
    co_return standing;
  }
  co_return co_await ImageDestination::find_manifest(std::move(repo), std::move(digest), std::move(tag), with_bytes);
}

Task<Status> RegistryClient::check_access(const Repository& repo, bool push) {
  co_return co_await registry(repo.registry).check_access(repo.path, push);
}

}  // namespace fastsync
