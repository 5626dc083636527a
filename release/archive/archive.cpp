#include "release/archive/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "registry/core/digest.h"
#include "registry/core/log.h"

namespace fastsync::release {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kBlock = 512;
constexpr std::uint64_t kTrailer = 2 * kBlock;  // tar end-of-archive
constexpr std::size_t kCopyBuffer = 256 * 1024;
constexpr auto kSaveInterval = std::chrono::seconds(1);  // the index is rewritten at most this often mid-run

std::uint64_t entry_bytes(std::uint64_t size) { return kBlock + (size + kBlock - 1) / kBlock * kBlock; }

std::string blob_path(const std::string& digest) { return "blobs/sha256/" + digest.substr(7); }

std::string errno_text() { return std::strerror(errno); }

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::make(ErrorKind::Invalid, fmt::format("cannot read {}: {}", path, errno_text()));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

Status write_file_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error::make(ErrorKind::LocalIo, fmt::format("cannot write {}: {}", tmp, errno_text()));
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = errno_text();
      ::close(fd);
      return Error::make(ErrorKind::LocalIo, fmt::format("cannot write {}: {}", tmp, why));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error::make(ErrorKind::LocalIo, fmt::format("cannot write {}: {}", path, errno_text()));
  }
  return Status{};
}

// A blob read in place from a volume, hashed as it goes.
class FileRangeReader : public BlobReader {
 public:
  FileRangeReader(std::string path, std::uint64_t offset, std::uint64_t size, std::string digest)
      : path_(std::move(path)), offset_(offset), left_(size), digest_(std::move(digest)) {}
  ~FileRangeReader() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Result<std::size_t> read(char* buffer, std::size_t capacity) override {
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) return Error::make(ErrorKind::LocalIo, fmt::format("cannot read {}: {}", path_, errno_text()));
    }
    if (left_ == 0) {
      if (!checked_) {
        checked_ = true;
        std::string actual = hash_.finish();
        if (actual != digest_) {
          return Error::make(
              ErrorKind::DigestMismatch,
              fmt::format("blob {} in {}: content hashes to {} (the volume is damaged)", digest_, path_, actual));
        }
      }
      return std::size_t{0};
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(capacity, left_));
    ssize_t n = 0;
    do {
      n = ::pread(fd_, buffer, want, static_cast<off_t>(offset_));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Error::make(ErrorKind::LocalIo, fmt::format("cannot read {}: {}", path_, errno_text()));
    if (n == 0) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("{} ends before blob {} does (the volume is truncated)", path_, digest_));
    }
    hash_.update(std::string_view(buffer, static_cast<std::size_t>(n)));
    offset_ += static_cast<std::uint64_t>(n);
    left_ -= static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }

 private:
  std::string path_;
  std::uint64_t offset_;
  std::uint64_t left_;
  std::string digest_;
  Sha256 hash_;
  int fd_ = -1;
  bool checked_ = false;
};

class FailingReader : public BlobReader {
 public:
  explicit FailingReader(Error e) : error_(std::move(e)) {}
  Result<std::size_t> read(char*, std::size_t) override { return error_; }

 private:
  Error error_;
};

class MemoryReader : public BlobReader {
 public:
  explicit MemoryReader(std::shared_ptr<const std::string> bytes) : bytes_(std::move(bytes)) {}
  Result<std::size_t> read(char* buffer, std::size_t capacity) override {
    std::size_t n = std::min(capacity, bytes_->size() - at_);
    std::memcpy(buffer, bytes_->data() + at_, n);
    at_ += n;
    return n;
  }

 private:
  std::shared_ptr<const std::string> bytes_;
  std::size_t at_ = 0;
};

// A (small) blob whole: a manifest.
Result<std::string> read_whole(const std::string& dir, const ArchiveBlob& blob) {
  auto reader =
      open_file_range((fs::path(dir) / volume_name(blob.volume)).string(), blob.offset, blob.size, blob.digest);
  std::string out(blob.size, '\0');
  std::size_t at = 0;
  while (true) {
    auto n = reader->read(out.data() + at, out.size() - at);
    if (!n) return n.error();
    if (*n == 0) break;
    at += *n;
  }
  return out;
}

// skopeo 1.9 (Debian 12) looks only at OCI media types in index.json and reads
// the manifest bytes as they are: Docker manifests and lists are listed under
// their OCI counterparts so `skopeo inspect --raw` and `skopeo copy` find them;
// the bytes (and so the digests) stay exactly as mirrored.
std::string layout_media_type(const std::string& media_type) {
  if (media_type == "application/vnd.docker.distribution.manifest.v2+json") {
    return "application/vnd.oci.image.manifest.v1+json";
  }
  if (media_type == "application/vnd.docker.distribution.manifest.list.v2+json") {
    return "application/vnd.oci.image.index.v1+json";
  }
  return media_type;
}

std::string oci_index_json(const ArchiveIndex& index, const std::map<std::string, std::string>& refs) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("schemaVersion");
  w.Int(2);
  w.Key("mediaType");
  w.String("application/vnd.oci.image.index.v1+json");
  w.Key("manifests");
  w.StartArray();
  for (const auto& [ref, digest] : refs) {
    auto m = index.manifests.find(digest);
    if (m == index.manifests.end()) continue;
    w.StartObject();
    w.Key("mediaType");
    w.String(layout_media_type(m->second.media_type).c_str());
    w.Key("digest");
    w.String(digest.c_str());
    w.Key("size");
    w.Uint64(m->second.size);
    w.Key("annotations");
    w.StartObject();
    w.Key("org.opencontainers.image.ref.name");
    w.String(ref.c_str());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string archive_host(const std::string& dir) {
  std::error_code ec;
  fs::path abs = fs::absolute(dir, ec).lexically_normal();
  std::string text = abs.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return "dir:" + text;
}

std::unique_ptr<BlobReader> open_file_range(std::string path, std::uint64_t offset, std::uint64_t size,
                                            std::string digest) {
  return std::make_unique<FileRangeReader>(std::move(path), offset, size, std::move(digest));
}

// ---------------------------------------------------------------- writing

struct ArchiveWriter::Volume {
  int number = 0;
  std::string path;
  int fd = -1;
  std::uint64_t size = 0;       // bytes in the file
  std::uint64_t committed = 0;  // end of the last complete, verified entry
  Sha256 hash;                  // of bytes [0, size)
  struct archive* writer = nullptr;
  bool discarding = false;  // rolling an entry back: libarchive's last words go nowhere
  std::string write_error;
  bool own = false;  // holds one blob larger than a volume: closed right after it

  ~Volume() {
    if (writer) {
      discarding = true;
      archive_write_free(writer);
    }
    if (fd >= 0) ::close(fd);
  }

  static la_ssize_t on_write(struct archive* a, void* user, const void* buffer, size_t length) {
    auto* v = static_cast<Volume*>(user);
    if (v->discarding) return static_cast<la_ssize_t>(length);
    const char* p = static_cast<const char*>(buffer);
    std::size_t done = 0;
    while (done < length) {
      ssize_t n = ::write(v->fd, p + done, length - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        v->write_error = fmt::format("cannot write {}: {}", v->path, n < 0 ? errno_text() : "nothing written");
        archive_set_error(a, n < 0 ? errno : EIO, "%s", v->write_error.c_str());
        return -1;
      }
      done += static_cast<std::size_t>(n);
    }
    v->hash.update(std::string_view(p, length));
    v->size += length;
    return static_cast<la_ssize_t>(length);
  }

  // A tar writer appending at the file's current end, without blocking, so
  // every byte reaches the file (and its offset is known) as it is written.
  Status start_writer() {
    writer = archive_write_new();
    if (!writer || archive_write_set_format_ustar(writer) != ARCHIVE_OK ||
        archive_write_add_filter_none(writer) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(writer, 0) != ARCHIVE_OK ||
        archive_write_open2(writer, this, nullptr, on_write, nullptr, nullptr) != ARCHIVE_OK) {
      return Error::make(ErrorKind::LocalIo, fmt::format("cannot start writing {}", path));
    }
    return Status{};
  }

  Error failure(const std::string& what) const {
    std::string why = !write_error.empty() ? write_error : (writer ? archive_error_string(writer) : "");
    return Error::make(ErrorKind::LocalIo, fmt::format("{}: {}", what, why.empty() ? "write failed" : why));
  }

  // Cuts the file back to `to` bytes (an entry that failed) and starts a new writer there.
  Status roll_back(std::uint64_t to, Sha256 hash_at) {
    discarding = true;
    archive_write_free(writer);
    writer = nullptr;
    discarding = false;
    if (::ftruncate(fd, static_cast<off_t>(to)) != 0 || ::lseek(fd, static_cast<off_t>(to), SEEK_SET) < 0) {
      return Error::make(ErrorKind::LocalIo, fmt::format("cannot truncate {}: {}", path, errno_text()));
    }
    size = to;
    hash = std::move(hash_at);
    write_error.clear();
    return start_writer();
  }

  // One entry; `fill` writes its data. On failure the entry is rolled back.
  Result<std::uint64_t> write_entry(const std::string& name, std::uint64_t length,
                                    const std::function<Status(struct archive*)>& fill) {
    std::uint64_t start = size;
    Sha256 hash_at = hash.clone();
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name.c_str());
    archive_entry_set_size(entry, static_cast<la_int64_t>(length));
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_mtime(entry, 0, 0);  // reproducible volumes
    int rc = archive_write_header(writer, entry);
    archive_entry_free(entry);
    auto give_up = [&](Error e) -> Result<std::uint64_t> {
      auto rolled = roll_back(start, std::move(hash_at));
      if (!rolled) return rolled.error();
      return e;
    };
    if (rc != ARCHIVE_OK) return give_up(failure(fmt::format("writing {} in {}", name, path)));
    std::uint64_t data_offset = size;
    if (data_offset != start + kBlock) {
      return give_up(Error::make(ErrorKind::Protocol, fmt::format("{}: unexpected tar header size", path)));
    }
    auto filled = fill(writer);
    if (!filled) return give_up(filled.error());
    if (archive_write_finish_entry(writer) != ARCHIVE_OK) {
      return give_up(failure(fmt::format("writing {} in {}", name, path)));
    }
    if (size != start + entry_bytes(length)) {
      return give_up(
          Error::make(ErrorKind::Protocol, fmt::format("{}: entry {} has an unexpected length", path, name)));
    }
    committed = size;
    return data_offset;
  }
};

// A thread for each volume being filled, and as many again for the
// manifests stage 5 writes meanwhile (small entries that should not wait
// behind a large layer for a thread).
ArchiveWriter::ArchiveWriter(std::string dir, ArchiveOptions options)
    : dir_(std::move(dir)),
      host_(archive_host(dir_)),
      options_(std::move(options)),
      blob_writers_(2 * static_cast<std::size_t>(std::max(1, options_.writers))) {}

ArchiveWriter::~ArchiveWriter() = default;

Result<std::unique_ptr<ArchiveWriter>> ArchiveWriter::open(const std::string& dir, ArchiveOptions options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    return Error::make(ErrorKind::Invalid, fmt::format("cannot create archive directory {}: {}", dir, ec.message()));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return Error::make(ErrorKind::Invalid, fmt::format("cannot write to archive directory {}: {}", dir, errno_text()));
  }
  if (options.writers < 1) options.writers = 1;
  std::unique_ptr<ArchiveWriter> w(new ArchiveWriter(dir, std::move(options)));
  if (auto s = w->load_since(); !s) return s.error();
  if (auto s = w->resume(); !s) return s.error();
  return w;
}

Status ArchiveWriter::load_since() {
  for (const auto& prev : options_.since) {
    std::string path = fs::is_directory(prev) ? (fs::path(prev) / std::string(kArchiveIndexName)).string() : prev;
    auto text = read_text(path);
    if (!text) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("--since {}: no archive index there ({})", prev, text.error().message));
    }
    auto earlier = ArchiveIndex::parse(*text, path);
    if (!earlier) return earlier.error();
    std::string name = fs::path(path).parent_path().filename().string();
    if (name.empty()) name = prev;
    for (const auto& [digest, b] : earlier->blobs) earlier_.emplace(digest, ReliedBlob{digest, b.size, name});
    // What the earlier archive relied on must be at the far side too: so this one relies on it as well.
    for (const auto& [digest, b] : earlier->relies_on) earlier_.emplace(digest, b);
    index_.since.push_back(name);
  }
  return Status{};
}

Status ArchiveWriter::resume() {
  std::string path = (fs::path(dir_) / std::string(kArchiveIndexName)).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status{};
  auto text = read_text(path);
  if (!text) return text.error();
  auto previous = ArchiveIndex::parse(*text, path);
  if (!previous) return previous.error();
  auto since = std::move(index_.since);
  index_ = std::move(*previous);
  for (auto& s : since) {
    if (std::find(index_.since.begin(), index_.since.end(), s) == index_.since.end()) index_.since.push_back(s);
  }
  index_.complete = false;  // until this run finishes
  for (std::size_t i = 0; i < index_.volumes.size(); ++i) {
    auto& vol = index_.volumes[i];
    std::string vpath = (fs::path(dir_) / vol.name).string();
    std::uint64_t actual = fs::file_size(vpath, ec);
    if (ec) return Error::make(ErrorKind::Invalid, fmt::format("cannot resume {}: {} is missing", dir_, vol.name));
    if (vol.closed) {
      if (actual != vol.size) {
        return Error::make(ErrorKind::Invalid, fmt::format("cannot resume {}: {} is {} bytes, the index says {}", dir_,
                                                           vol.name, actual, vol.size));
      }
      continue;
    }
    if (actual < vol.size) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("cannot resume {}: {} is shorter ({} bytes) than the index says "
                                     "({})",
                                     dir_, vol.name, actual, vol.size));
    }
    // An entry torn by the interruption lies past the recorded size: cut it off.
    auto reopened = open_volume(static_cast<int>(i + 1), vol.size);
    if (!reopened) return reopened.error();
    if (actual > vol.size) logging::info("{}: dropped {} bytes of an interrupted entry", vol.name, actual - vol.size);
    volumes_.push_back(std::move(*reopened));
  }
  return Status{};
}

Result<std::unique_ptr<ArchiveWriter::Volume>> ArchiveWriter::open_volume(int number, std::uint64_t keep_bytes) {
  auto v = std::make_unique<Volume>();
  v->number = number;
  v->path = (fs::path(dir_) / volume_name(number)).string();
  int flags = O_RDWR | O_CREAT | O_CLOEXEC | (keep_bytes == 0 ? O_TRUNC : 0);
  v->fd = ::open(v->path.c_str(), flags, 0644);
  if (v->fd < 0) return Error::make(ErrorKind::LocalIo, fmt::format("cannot open {}: {}", v->path, errno_text()));
  if (keep_bytes > 0) {
    if (::ftruncate(v->fd, static_cast<off_t>(keep_bytes)) != 0) {
      return Error::make(ErrorKind::LocalIo, fmt::format("cannot truncate {}: {}", v->path, errno_text()));
    }
    // The volume's hash covers every byte: re-read what is kept.
    std::vector<char> buf(kCopyBuffer);
    for (std::uint64_t at = 0; at < keep_bytes;) {
      ssize_t n =
          ::pread(v->fd, buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), keep_bytes - at)),
                  static_cast<off_t>(at));
      if (n <= 0) return Error::make(ErrorKind::LocalIo, fmt::format("cannot read {}: {}", v->path, errno_text()));
      v->hash.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      at += static_cast<std::uint64_t>(n);
    }
    if (::lseek(v->fd, static_cast<off_t>(keep_bytes), SEEK_SET) < 0) {
      return Error::make(ErrorKind::LocalIo, fmt::format("cannot seek in {}: {}", v->path, errno_text()));
    }
  }
  v->size = keep_bytes;
  v->committed = keep_bytes;
  if (auto s = v->start_writer(); !s) return s.error();
  return v;
}

Result<ArchiveWriter::Volume*> ArchiveWriter::take_volume(std::uint64_t entry) {
  std::unique_lock lock(mutex_);
  bool oversized = entry + kTrailer > options_.volume_size;
  while (true) {
    Volume* pick = nullptr;
    for (auto& v : volumes_) {
      if (busy_.count(v.get())) continue;
      bool fits = v->size + entry + kTrailer <= options_.volume_size;
      if (oversized ? v->committed == 0 : fits || v->committed == 0) {
        pick = v.get();
        break;
      }
    }
    if (!pick) {
      // A free volume too full for this entry is closed, making room for a new one.
      for (auto it = volumes_.begin(); it != volumes_.end(); ++it) {
        if (busy_.count(it->get())) continue;
        if (auto s = close_volume(**it); !s) logging::error("{}", s.error().message);
        volumes_.erase(it);
        break;
      }
    }
    if (!pick && static_cast<int>(volumes_.size()) < options_.writers) {
      int number = static_cast<int>(index_.volumes.size()) + 1;
      auto opened = open_volume(number, 0);
      if (!opened) return opened.error();
      index_.volumes.push_back(ArchiveVolume{volume_name(number), 0, "", false});
      volumes_.push_back(std::move(*opened));
      pick = volumes_.back().get();
    }
    if (pick) {
      busy_.insert(pick);
      pick->own = oversized;
      return Result<Volume*>(pick);
    }
    // Liveness: a writer gives its volume back once its blob is written or has
    // failed; each reads from a download the stall limit and cancellation end.
    free_volume_.wait(lock);
  }
}

void ArchiveWriter::give_back(Volume* volume) {
  std::lock_guard lock(mutex_);
  busy_.erase(volume);
  if (volume->own) {
    // It holds one blob larger than --archive-size: nothing else goes in.
    for (auto it = volumes_.begin(); it != volumes_.end(); ++it) {
      if (it->get() != volume) continue;
      if (auto s = close_volume(*volume); !s) logging::error("{}", s.error().message);
      volumes_.erase(it);
      break;
    }
  }
  free_volume_.notify_all();
}

Status ArchiveWriter::close_volume(Volume& v) {
  // Called with mutex_ held.
  auto& entry = index_.volumes[static_cast<std::size_t>(v.number - 1)];
  if (archive_write_close(v.writer) != ARCHIVE_OK) return v.failure(fmt::format("closing {}", v.path));
  archive_write_free(v.writer);
  v.writer = nullptr;
  if (::fdatasync(v.fd) != 0)
    return Error::make(ErrorKind::LocalIo, fmt::format("cannot sync {}: {}", v.path, errno_text()));
  entry.size = v.size;
  entry.sha256 = v.hash.finish();
  entry.closed = true;
  ::close(v.fd);
  v.fd = -1;
  save_due_ = true;  // the caller saves once it let go of the lock
  return Status{};
}

void ArchiveWriter::save_index(bool force) {
  // One save at a time, in order; a periodic one is skipped while another runs.
  std::unique_lock saving(save_mutex_, std::defer_lock);
  if (force) {
    saving.lock();
  } else if (!saving.try_lock()) {
    return;
  }
  ArchiveIndex snapshot;
  std::vector<int> to_sync;
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    if (!force && !save_due_ && now - last_save_ < kSaveInterval) return;
    last_save_ = now;
    save_due_ = false;
    snapshot = index_;
    for (auto& v : volumes_) {
      auto& entry = snapshot.volumes[static_cast<std::size_t>(v->number - 1)];
      if (entry.closed) continue;  // closed: its final size (trailer included) is recorded
      entry.size = v->committed;
      if (v->fd >= 0) to_sync.push_back(::dup(v->fd));
    }
  }
  // The index vouches only for bytes that are on the disk. Flushing takes a
  // while with a lot written: the writers carry on meanwhile.
  for (int fd : to_sync) {
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::close(fd);
  }
  auto saved = write_file_atomically((fs::path(dir_) / std::string(kArchiveIndexName)).string(), snapshot.to_json());
  if (!saved) logging::warn("{}", saved.error().message);
}

Status ArchiveWriter::write_blob(const std::string& digest, std::uint64_t size, BlobReader& reader) {
  auto taken = take_volume(entry_bytes(size));
  if (!taken) return taken.error();
  Volume* v = *taken;
  if (v->own) {
    logging::warn("blob {} ({} bytes) is larger than --archive-size: it gets volume {} of its own", digest, size,
                  volume_name(v->number));
  }
  // Not zero-filled: every byte is read into before it is written out.
  std::unique_ptr<char[]> buffer(new char[kCopyBuffer]);
  auto offset = v->write_entry(blob_path(digest), size, [&](struct archive* a) -> Status {
    std::uint64_t total = 0;
    while (true) {
      auto n = reader.read(buffer.get(), kCopyBuffer);
      if (!n) return n.error();
      if (*n == 0) break;
      total += *n;
      if (total > size) {
        return Error::make(ErrorKind::DigestMismatch, fmt::format("blob {}: more than its {} bytes", digest, size));
      }
      if (archive_write_data(a, buffer.get(), *n) != static_cast<la_ssize_t>(*n)) {
        return v->failure(fmt::format("writing blob {} to {}", digest, v->path));
      }
    }
    if (total != size) {
      return Error::make(ErrorKind::DigestMismatch,
                         fmt::format("blob {}: {} bytes, its descriptor states {}", digest, total, size));
    }
    return Status{};
  });
  if (offset) {
    std::lock_guard lock(mutex_);
    index_.blobs[digest] = ArchiveBlob{digest, size, v->number, *offset};
  }
  give_back(v);
  save_index(false);
  if (!offset) return offset.error();
  return Status{};
}

Status ArchiveWriter::write_named(const std::string& path, const std::string& bytes, Volume& volume) {
  auto offset = volume.write_entry(path, bytes.size(), [&](struct archive* a) -> Status {
    if (!bytes.empty() && archive_write_data(a, bytes.data(), bytes.size()) != static_cast<la_ssize_t>(bytes.size())) {
      return volume.failure(fmt::format("writing {} to {}", path, volume.path));
    }
    return Status{};
  });
  if (!offset) return offset.error();
  return Status{};
}

std::uint64_t ArchiveWriter::bytes_to_write(const std::map<std::string, std::uint64_t>& planned) const {
  std::lock_guard lock(mutex_);
  std::uint64_t total = 0;
  for (const auto& [digest, size] : planned) {
    if (index_.blobs.count(digest) || earlier_.count(digest)) continue;
    total += entry_bytes(size);
  }
  // Each volume ends with a trailer; the writers' last volumes may end part-full.
  std::uint64_t volumes = total / options_.volume_size + static_cast<std::uint64_t>(options_.writers) + 1;
  return total + volumes * kTrailer + 64 * 1024;
}

Status ArchiveWriter::finish(const std::vector<ArchiveRelease>& releases, const std::vector<ArchiveImage>& images,
                             const std::map<std::string, std::string>& refs, bool complete) {
  const std::string layout_json = R"({"imageLayoutVersion":"1.0.0"})";
  std::string refs_json;
  {
    std::lock_guard lock(mutex_);
    refs_json = oci_index_json(index_, refs);
  }
  auto taken = take_volume(entry_bytes(layout_json.size()) + entry_bytes(refs_json.size()));
  if (!taken) return taken.error();
  Volume* v = *taken;
  auto layout = write_named("oci-layout", layout_json, *v);
  if (layout) layout = write_named("index.json", refs_json, *v);
  v->own = false;
  give_back(v);
  Status closed;
  {
    std::lock_guard lock(mutex_);
    for (auto& rel : releases) {
      auto same = [&](const ArchiveRelease& r) { return r.version == rel.version && r.arch == rel.arch; };
      index_.releases.erase(std::remove_if(index_.releases.begin(), index_.releases.end(), same),
                            index_.releases.end());
      index_.releases.push_back(rel);
    }
    for (auto& image : images) {
      auto same = [&](const ArchiveImage& i) {
        return i.section == image.section && i.source == image.source && i.tag == image.tag &&
               (!i.tag.empty() || i.digest == image.digest);
      };
      index_.images.erase(std::remove_if(index_.images.begin(), index_.images.end(), same), index_.images.end());
      index_.images.push_back(image);
    }
    for (auto& vol : volumes_) {
      if (auto s = close_volume(*vol); !s && closed) closed = s;
    }
    volumes_.clear();
    index_.complete = complete && layout && closed;
  }
  save_index(true);
  if (!layout) return layout;
  return closed;
}

ArchiveIndex ArchiveWriter::index() const {
  std::lock_guard lock(mutex_);
  return index_;
}

Task<Result<ManifestData>> ArchiveWriter::get_manifest(const Repository& repo, const std::string& reference) {
  std::optional<ArchiveManifest> manifest;
  std::optional<ArchiveBlob> blob;
  {
    std::lock_guard lock(mutex_);
    if (const ArchiveManifest* m = index_.find_manifest(reference, repo.path)) {
      manifest = *m;
      blob = index_.blobs.at(m->digest);
    }
  }
  if (!manifest) {
    co_return Error::make(ErrorKind::NotFound, fmt::format("manifest {} is not in archive {}", reference, dir_));
  }
  auto bytes = read_whole(dir_, *blob);
  if (!bytes) co_return bytes.error();
  co_return ManifestData{std::move(*bytes), manifest->media_type, manifest->digest};
}

Task<Result<std::string>> ArchiveWriter::manifest_digest(const Repository& repo, const std::string& reference) {
  std::lock_guard lock(mutex_);
  if (is_sha256_digest(reference)) {
    if (index_.manifests.count(reference)) co_return reference;
  } else {
    std::string wanted = repo.path + ":" + reference;
    for (const auto& [digest, m] : index_.manifests) {
      if (std::find(m.tags.begin(), m.tags.end(), wanted) != m.tags.end()) co_return digest;
    }
  }
  co_return Error::make(ErrorKind::NotFound, fmt::format("manifest {} is not in archive {}", reference, dir_));
}

Task<Status> ArchiveWriter::put_manifest(const Repository& repo, const std::string& reference,
                                         const ManifestData& manifest) {
  bool have = false;
  {
    std::lock_guard lock(mutex_);
    have = index_.blobs.count(manifest.digest) > 0;
  }
  if (!have) {
    auto bytes = std::make_shared<const std::string>(manifest.bytes);
    std::string digest = manifest.digest;
    // A named callable, not a temporary: GCC 12 destroys a temporary coroutine argument twice.
    auto work = [this, bytes, digest] {
      MemoryReader reader(bytes);
      return write_blob(digest, bytes->size(), reader);
    };
    auto written = co_await blob_writers_.run(std::move(work));
    if (!written) co_return written.error();
  }
  std::lock_guard lock(mutex_);
  auto& m = index_.manifests[manifest.digest];
  m.digest = manifest.digest;
  m.media_type = manifest.media_type;
  m.size = manifest.bytes.size();
  if (auto parsed = parse_manifest(manifest.bytes, manifest.media_type); parsed && !parsed->subject.empty()) {
    m.subject = parsed->subject;  // a referrer: found again by its subject on the far side
  }
  if (!is_sha256_digest(reference)) {
    std::string tag = repo.path + ":" + reference;
    if (std::find(m.tags.begin(), m.tags.end(), tag) == m.tags.end()) m.tags.push_back(tag);
  }
  co_return Status{};
}

Task<Status> ArchiveWriter::blob_exists(const Repository&, const std::string& digest) {
  std::lock_guard lock(mutex_);
  if (index_.blobs.count(digest)) co_return Status{};
  if (auto e = earlier_.find(digest); e != earlier_.end()) {
    // Carried by an earlier archive: this one relies on the far side having it.
    index_.relies_on.emplace(digest, e->second);
    co_return Status{};
  }
  co_return Error::make(ErrorKind::NotFound, fmt::format("blob {} is not in archive {}", digest, dir_));
}

// Every blob of an archive is in one place: a "mount" finds it there or not.
Task<Result<MountOutcome>> ArchiveWriter::mount_blob(const Repository&, const std::string&, const Repository&) {
  co_return MountOutcome{};
}

Task<Status> ArchiveWriter::upload_blob(const Repository&, const std::string& digest,
                                        std::shared_ptr<const std::string> bytes, std::string) {
  auto work = [this, bytes, digest] {
    MemoryReader reader(bytes);
    return write_blob(digest, bytes->size(), reader);
  };
  co_return co_await blob_writers_.run(std::move(work));
}

Task<Result<std::uint64_t>> ArchiveWriter::receive_blob(ImageSource& source, const Repository& from, const Repository&,
                                                        const Descriptor& blob, std::string) {
  std::string digest = blob.digest;
  std::uint64_t size = blob.size;
  // The source's reader is blocking: it and the volume write run on a writer thread.
  auto work = [this, &source, from, blob, digest, size] {
    auto reader = source.open_blob(from, blob);
    return write_blob(digest, size, *reader);
  };
  auto written = co_await blob_writers_.run(std::move(work));
  if (!written) co_return written.error();
  co_return size;
}

Task<Status> ArchiveWriter::check_access(const Repository&, bool) { co_return Status{}; }

// ---------------------------------------------------------------- reading

ArchiveReader::ArchiveReader(std::string dir, ArchiveIndex index)
    : dir_(std::move(dir)), host_(archive_host(dir_)), index_(std::move(index)) {}

Result<std::unique_ptr<ArchiveReader>> ArchiveReader::open(const std::string& dir) {
  std::string path = (fs::path(dir) / std::string(kArchiveIndexName)).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("{} is not a fastsync archive: it has no {}", dir, kArchiveIndexName));
  }
  auto text = read_text(path);
  if (!text) return text.error();
  auto index = ArchiveIndex::parse(*text, path);
  if (!index) return index.error();
  std::vector<std::string> problems;
  for (const auto& vol : index->volumes) {
    std::string vpath = (fs::path(dir) / vol.name).string();
    std::uint64_t actual = fs::file_size(vpath, ec);
    if (ec) {
      problems.push_back(fmt::format("{} is missing", vol.name));
    } else if (vol.closed ? actual != vol.size : actual < vol.size) {
      problems.push_back(fmt::format("{} is {} bytes, the index says {}", vol.name, actual, vol.size));
    }
  }
  if (!problems.empty()) {
    std::string list;
    for (const auto& p : problems) list += (list.empty() ? "" : "; ") + p;
    return Error::make(ErrorKind::Invalid, fmt::format("archive {} is not whole: {}", dir, list));
  }
  return std::unique_ptr<ArchiveReader>(new ArchiveReader(dir, std::move(*index)));
}

Result<ManifestData> ArchiveReader::manifest_for(const Repository& repo, const std::string& reference) const {
  const ArchiveManifest* m = index_.find_manifest(reference, repo.path);
  if (!m) return Error::make(ErrorKind::NotFound, fmt::format("manifest {} is not in archive {}", reference, dir_));
  auto bytes = read_whole(dir_, index_.blobs.at(m->digest));
  if (!bytes) return bytes.error();
  return ManifestData{std::move(*bytes), m->media_type, m->digest};
}

Task<Result<ManifestData>> ArchiveReader::get_manifest(const Repository& repo, const std::string& reference) {
  co_return manifest_for(repo, reference);
}

Task<Result<std::string>> ArchiveReader::manifest_digest(const Repository& repo, const std::string& reference) {
  if (const auto* m = index_.find_manifest(reference, repo.path)) co_return m->digest;
  co_return Error::make(ErrorKind::NotFound, fmt::format("manifest {} is not in archive {}", reference, dir_));
}

Task<Status> ArchiveReader::blob_exists(const Repository&, const std::string& digest) {
  if (index_.blobs.count(digest)) co_return Status{};
  co_return Error::make(ErrorKind::NotFound, fmt::format("blob {} is not in archive {}", digest, dir_));
}

std::unique_ptr<BlobReader> ArchiveReader::open_blob(const Repository&, const Descriptor& blob) {
  auto it = index_.blobs.find(blob.digest);
  if (it == index_.blobs.end()) {
    std::string where;
    if (auto r = index_.relies_on.find(blob.digest); r != index_.relies_on.end()) {
      where = fmt::format(" (it was in the earlier archive {})", r->second.archive);
    }
    return std::make_unique<FailingReader>(
        Error::make(ErrorKind::NotFound, fmt::format("blob {} is not in archive {}{}", blob.digest, dir_, where)));
  }
  const ArchiveBlob& b = it->second;
  return open_file_range((fs::path(dir_) / volume_name(b.volume)).string(), b.offset, b.size, b.digest);
}

Task<Result<std::vector<Attachment>>> ArchiveReader::attachments(const Repository& repo, const std::string& digest) {
  auto found = co_await ImageSource::attachments(repo, digest);
  if (!found) co_return found;
  std::vector<std::string> referrers;
  for (const auto& [d, m] : index_.manifests) {
    if (m.subject == digest) referrers.push_back(d);
  }
  add_referrers(*found, referrers);
  co_return found;
}

Task<FetchedSignatures> ArchiveReader::release_signatures(const std::string& digest) {
  FetchedSignatures out;
  for (const auto& rel : index_.releases) {
    if (rel.digest != digest) continue;
    for (std::size_t i = 0; i < rel.signatures.size(); ++i) {
      out.found.push_back(
          SignatureCandidate{fmt::format("{}/{} signature {}", dir_, kArchiveIndexName, i + 1), rel.signatures[i]});
    }
  }
  co_return out;
}

}  // namespace fastsync::release
