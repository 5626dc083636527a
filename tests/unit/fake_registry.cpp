#include "tests/unit/fake_registry.h"

#include <fmt/format.h>

namespace fastsync::testing {
namespace {

class MemoryReader : public BlobReader {
 public:
  MemoryReader(std::string bytes, std::string digest) : bytes_(std::move(bytes)), digest_(std::move(digest)) {}
  Result<std::size_t> read(char* buffer, std::size_t capacity) override {
    std::size_t n = std::min(capacity, bytes_.size() - pos_);
    std::memcpy(buffer, bytes_.data() + pos_, n);
    pos_ += n;
    if (n == 0 && sha256_digest(bytes_) != digest_) {
      return Error::make(ErrorKind::DigestMismatch, "fake: blob does not match " + digest_);
    }
    return n;
  }

 private:
  std::string bytes_;
  std::string digest_;
  std::size_t pos_ = 0;
};

Error not_found(const std::string& what) {
  return Error::make(ErrorKind::NotFound, "fake: " + what + " not found", 404);
}

}  // namespace

std::string FakeRegistry::add_blob(const Repository& repo, const std::string& bytes) {
  std::lock_guard lock(mutex_);
  std::string digest = sha256_digest(bytes);
  repos_[repo.str()].blobs[digest] = bytes;
  return digest;
}

std::string FakeRegistry::add_manifest(const Repository& repo, const std::string& bytes, const std::string& media_type,
                                       const std::string& tag) {
  std::lock_guard lock(mutex_);
  ManifestData m{bytes, media_type, sha256_digest(bytes)};
  auto& r = repos_[repo.str()];
  r.manifests[m.digest] = m;
  if (!tag.empty()) r.tags[tag] = m.digest;
  return m.digest;
}

std::string FakeRegistry::add_image(const Repository& repo, const std::vector<std::string>& layers, bool oci,
                                    const std::string& tag) {
  std::string joined;
  for (const auto& l : layers) joined += sha256_digest(l);
  std::string config = fmt::format(R"({{"architecture":"amd64","os":"linux","layers":"{}"}})", sha256_digest(joined));
  std::string config_digest = add_blob(repo, config);
  std::string layer_json;
  for (const auto& l : layers) {
    std::string d = add_blob(repo, l);
    layer_json +=
        fmt::format(R"({}{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{}"}})",
                    layer_json.empty() ? "" : ",", l.size(), d);
  }
  std::string mt(oci ? media_type::kOciManifest : media_type::kDockerManifest);
  std::string bytes = fmt::format(
      R"({{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{}"}},"layers":[{}]}})",
      mt, config.size(), config_digest, layer_json);
  return add_manifest(repo, bytes, mt, tag);
}

std::string FakeRegistry::add_list(const Repository& repo, const std::vector<std::string>& child_digests,
                                   const std::string& tag) {
  std::string entries;
  const char* arches[] = {"amd64", "arm64", "ppc64le", "s390x"};
  for (std::size_t i = 0; i < child_digests.size(); ++i) {
    auto child = find_manifest(repo, child_digests[i]);
    entries +=
        fmt::format(R"({}{{"mediaType":"{}","size":{},"digest":"{}","platform":{{"os":"linux","architecture":"{}"}}}})",
                    i ? "," : "", child->media_type, child->bytes.size(), child->digest, arches[i % 4]);
  }
  std::string bytes =
      fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}})", media_type::kDockerList, entries);
  return add_manifest(repo, bytes, std::string(media_type::kDockerList), tag);
}

std::vector<FakeRegistry::Event> FakeRegistry::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

std::size_t FakeRegistry::count(const std::string& op) const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& e : events_) n += e.op == op;
  return n;
}

std::vector<std::string> FakeRegistry::violations() const {
  std::lock_guard lock(mutex_);
  return violations_;
}

FakeRegistry::Repo FakeRegistry::snapshot(const Repository& repo) const {
  std::lock_guard lock(mutex_);
  auto it = repos_.find(repo.str());
  return it == repos_.end() ? Repo{} : it->second;
}

bool FakeRegistry::has_blob(const Repository& repo, const std::string& digest) const {
  std::lock_guard lock(mutex_);
  auto it = repos_.find(repo.str());
  return it != repos_.end() && it->second.blobs.count(digest);
}

void FakeRegistry::record(std::string op, const Repository& repo, std::string ref, std::string session) {
  events_.push_back(Event{std::move(op), repo.str(), std::move(ref), std::move(session)});
}

Result<ManifestData> FakeRegistry::find_manifest(const Repository& repo, const std::string& reference) const {
  auto it = repos_.find(repo.str());
  if (it == repos_.end()) return not_found("repository " + repo.str());
  std::string digest = reference;
  if (auto tag = it->second.tags.find(reference); tag != it->second.tags.end()) digest = tag->second;
  auto m = it->second.manifests.find(digest);
  if (m == it->second.manifests.end()) return not_found("manifest " + reference);
  return m->second;
}

Task<Result<ManifestData>> FakeRegistry::get_manifest(const Repository& repo, const std::string& reference) {
  std::lock_guard lock(mutex_);
  record("get_manifest", repo, reference);
  if (auto f = fail_manifest_reads.find(repo.str()); f != fail_manifest_reads.end()) co_return f->second;
  co_return find_manifest(repo, reference);
}

Task<Result<std::string>> FakeRegistry::manifest_digest(const Repository& repo, const std::string& reference) {
  std::lock_guard lock(mutex_);
  record("manifest_digest", repo, reference);
  if (auto f = fail_manifest_reads.find(repo.str()); f != fail_manifest_reads.end()) co_return f->second;
  auto m = find_manifest(repo, reference);
  if (!m) co_return m.error();
  co_return m->digest;
}

Task<Status> FakeRegistry::put_manifest(const Repository& repo, const std::string& reference,
                                        const ManifestData& manifest) {
  std::lock_guard lock(mutex_);
  record("put_manifest", repo, reference);
  if (auto f = fail_manifest_put.find(reference); f != fail_manifest_put.end()) co_return f->second;
  auto& r = repos_[repo.str()];
  auto parsed = parse_manifest(manifest.bytes, manifest.media_type);
  if (!parsed) co_return parsed.error();
  // What a registry enforces, and what fastsync must never rely on it to catch.
  if (parsed->is_list) {
    for (const auto& c : parsed->children) {
      if (!r.manifests.count(c.digest)) violations_.push_back("list " + reference + " pushed before child " + c.digest);
    }
  } else {
    for (const auto& d : [&] {
           auto all = parsed->layers;
           all.push_back(parsed->config);
           return all;
         }()) {
      if (!r.blobs.count(d.digest)) violations_.push_back("manifest " + reference + " pushed before blob " + d.digest);
    }
  }
  if (sha256_digest(manifest.bytes) != manifest.digest) violations_.push_back("manifest bytes changed: " + reference);
  r.manifests[manifest.digest] = manifest;
  if (!is_sha256_digest(reference)) r.tags[reference] = manifest.digest;
  co_return Status{};
}

Task<Status> FakeRegistry::blob_exists(const Repository& repo, const std::string& digest) {
  std::lock_guard lock(mutex_);
  record("blob_exists", repo, digest);
  auto it = repos_.find(repo.str());
  if (it == repos_.end() || !it->second.blobs.count(digest)) co_return not_found("blob " + digest);
  co_return Status{};
}

Task<Result<MountOutcome>> FakeRegistry::mount_blob(const Repository& to, const std::string& digest,
                                                    const Repository& from) {
  std::lock_guard lock(mutex_);
  MountOutcome outcome;
  auto src = repos_.find(from.str());
  if (refuse_mounts || src == repos_.end() || !src->second.blobs.count(digest)) {
    if (mount_opens_session) outcome.upload_session = "session-" + std::to_string(++sessions_opened_);
    record("mount", to, digest, outcome.upload_session);
    co_return outcome;
  }
  record("mount", to, digest);
  repos_[to.str()].blobs[digest] = src->second.blobs[digest];
  outcome.mounted = true;
  co_return outcome;
}

Task<Result<std::uint64_t>> FakeRegistry::receive_blob(ImageSource& source, const Repository& from,
                                                       const Repository& to, const Descriptor& blob,
                                                       std::string upload_session) {
  if (&source == static_cast<ImageSource*>(this))
    co_return co_await copy_blob(from, to, blob, std::move(upload_session));
  BlobOpener opener = [&source, from, blob] { return source.open_blob(from, blob); };
  co_return co_await store_blob(to, blob, std::move(upload_session), std::move(opener));
}

Task<Result<std::uint64_t>> FakeRegistry::copy_blob(const Repository& from, const Repository& to,
                                                    const Descriptor& blob, std::string upload_session) {
  std::lock_guard lock(mutex_);
  record("copy_blob", to, blob.digest, upload_session);
  if (auto f = fail_blob_copy.find(blob.digest); f != fail_blob_copy.end()) co_return f->second;
  auto src = repos_.find(from.str());
  if (src == repos_.end() || !src->second.blobs.count(blob.digest)) co_return not_found("blob " + blob.digest);
  const std::string& bytes = src->second.blobs[blob.digest];
  if (sha256_digest(bytes) != blob.digest || bytes.size() != blob.size) {
    co_return Error::make(ErrorKind::DigestMismatch, "fake: source bytes do not match " + blob.digest);
  }
  repos_[to.str()].blobs[blob.digest] = bytes;
  co_return static_cast<std::uint64_t>(bytes.size());
}

std::unique_ptr<BlobReader> FakeRegistry::open_blob(const Repository& repo, const Descriptor& blob) {
  std::lock_guard lock(mutex_);
  record("open_blob", repo, blob.digest);
  auto it = repos_.find(repo.str());
  std::string bytes = it == repos_.end() ? std::string() : it->second.blobs[blob.digest];
  return std::make_unique<MemoryReader>(std::move(bytes), blob.digest);
}

Task<Status> FakeRegistry::upload_blob(const Repository& repo, const std::string& digest,
                                       std::shared_ptr<const std::string> bytes, std::string upload_session) {
  std::lock_guard lock(mutex_);
  record("upload_blob", repo, digest, upload_session);
  if (auto f = fail_blob_copy.find(digest); f != fail_blob_copy.end()) co_return f->second;
  if (sha256_digest(*bytes) != digest) co_return Error::make(ErrorKind::DigestMismatch, "fake: upload does not match");
  repos_[repo.str()].blobs[digest] = *bytes;
  co_return Status{};
}

Task<Result<std::uint64_t>> FakeRegistry::store_blob(const Repository& to, const Descriptor& blob,
                                                     std::string upload_session, BlobOpener open_source) {
  auto reader = open_source();
  std::string bytes;
  char buf[4096];
  while (true) {
    auto n = reader->read(buf, sizeof buf);
    if (!n) co_return n.error();
    if (*n == 0) break;
    bytes.append(buf, *n);
  }
  std::lock_guard lock(mutex_);
  record("store_blob", to, blob.digest, upload_session);
  if (sha256_digest(bytes) != blob.digest)
    co_return Error::make(ErrorKind::DigestMismatch, "fake: stored bytes do not match");
  repos_[to.str()].blobs[blob.digest] = bytes;
  co_return static_cast<std::uint64_t>(bytes.size());
}

Task<Status> FakeRegistry::check_access(const Repository& repo, bool) {
  std::lock_guard lock(mutex_);
  record("check_access", repo, "");
  co_return Status{};
}

}  // namespace fastsync::testing
