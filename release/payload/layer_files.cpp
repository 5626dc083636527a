#include "release/payload/layer_files.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <set>

namespace fastsync::release {
namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveHandle = std::unique_ptr<archive, ArchiveDeleter>;

// libarchive pulls bytes through this callback from the layer's BlobReader.
struct PullState {
  BlobReader* reader = nullptr;
  std::vector<char> buffer = std::vector<char>(256 * 1024);
  std::optional<Error> error;
};

la_ssize_t pull(archive* a, void* user, const void** out) {
  auto* state = static_cast<PullState*>(user);
  auto n = state->reader->read(state->buffer.data(), state->buffer.size());
  if (!n) {
    state->error = n.error();
    archive_set_error(a, EIO, "%s", n.error().message.c_str());
    return -1;
  }
  *out = state->buffer.data();
  return static_cast<la_ssize_t>(*n);
}

// "./a/b" and "/a/b" name the same file as "a/b".
std::string normalize(std::string path) {
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path;
}

bool is_under(const std::string& path, const std::string& dir) {
  return dir.empty() || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

enum class Decision { Present, Deleted };

}  // namespace

Result<std::size_t> KeepingReader::read(char* buffer, std::size_t capacity) {
  auto n = inner_->read(buffer, capacity);
  if (!n) return n;
  if (*n == 0) {
    if (keeping_) {
      std::lock_guard lock(mutex_);
      kept_[digest_] = std::make_shared<const std::string>(std::move(bytes_));
    }
    keeping_ = false;
  } else if (keeping_) {
    if (bytes_.size() + *n > kLimit) {
      keeping_ = false;
      bytes_.clear();
      bytes_.shrink_to_fit();
    } else {
      bytes_.append(buffer, *n);
    }
  }
  return n;
}

Result<LayerFiles> read_layer_files(const std::vector<Layer>& layers, const std::vector<std::string>& wanted,
                                    std::size_t max_file_size, const FileSearch* search) {
  std::map<std::string, Decision> decided;
  std::set<std::string> searched;         // paths a search has seen in an upper layer
  std::vector<std::string> hidden_above;  // deleted or opaque in an upper layer, for the search
  LayerFiles files;
  std::set<std::string> want;
  for (const auto& w : wanted) want.insert(normalize(w));

  // A search with no wanted path (a catalog's configs directory) reads every layer.
  const bool every_layer = search && want.empty();
  for (auto layer = layers.rbegin(); layer != layers.rend() && (every_layer || decided.size() < want.size()); ++layer) {
    auto reader = layer->open();
    PullState state;
    state.reader = reader.get();
    ArchiveHandle a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    auto fail = [&](const std::string& what) -> Error {
      if (state.error) return *state.error;  // the download's own error (digest mismatch, network)
      return Error::make(ErrorKind::Invalid, fmt::format("release layer {}: {}", layer->name, what));
    };
    if (archive_read_open(a.get(), &state, nullptr, pull, nullptr) != ARCHIVE_OK) {
      return fail(fmt::format("not a tar archive ({})", archive_error_string(a.get())));
    }
    // Whiteouts apply to lower layers only, so they take effect after this layer.
    std::vector<std::string> deleted_paths;  // ".wh.<name>": <name> and anything under it
    std::vector<std::string> opaque_dirs;    // ".wh..wh..opq": everything under the dir
    std::map<std::string, Decision> here;
    archive_entry* entry = nullptr;
    int rc;
    while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
      std::string path = normalize(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "");
      auto slash = path.rfind('/');
      std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
      std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
      if (base == ".wh..wh..opq") {
        opaque_dirs.push_back(dir);
        continue;
      }
      if (base.rfind(".wh.", 0) == 0) {
        deleted_paths.push_back(dir.empty() ? base.substr(4) : dir + "/" + base.substr(4));
        continue;
      }
      if (search && !want.count(path) && is_under(path, search->dir) && searched.insert(path).second &&
          archive_entry_filetype(entry) == AE_IFREG) {
        bool hidden = false;
        for (const auto& d : hidden_above) hidden = hidden || path == d || is_under(path, d);
        auto size = archive_entry_size(entry);
        if (!hidden && size >= 0 && static_cast<std::size_t>(size) <= search->max_size) {
          std::string content(static_cast<std::size_t>(size), '\0');
          la_ssize_t got = archive_read_data(a.get(), content.data(), content.size());
          if (got < 0 || static_cast<std::size_t>(got) != content.size()) {
            return fail(fmt::format("cannot read {} ({})", path, archive_error_string(a.get())));
          }
          if (search->keep(path, content)) files[path] = std::move(content);
        }
        continue;
      }
      if (!want.count(path) || decided.count(path) || here.count(path)) continue;
      if (archive_entry_filetype(entry) != AE_IFREG) {
        here[path] = Decision::Deleted;  // a directory or link where a file was expected
        continue;
      }
      auto size = archive_entry_size(entry);
      if (size < 0 || static_cast<std::size_t>(size) > max_file_size) {
        return fail(fmt::format("{} is larger than {} bytes", path, max_file_size));
      }
      std::string content(static_cast<std::size_t>(size), '\0');
      la_ssize_t got = archive_read_data(a.get(), content.data(), content.size());
      if (got < 0 || static_cast<std::size_t>(got) != content.size()) {
        return fail(fmt::format("cannot read {} ({})", path, archive_error_string(a.get())));
      }
      files[path] = std::move(content);
      here[path] = Decision::Present;
    }
    if (rc != ARCHIVE_EOF) return fail(fmt::format("corrupt tar stream ({})", archive_error_string(a.get())));
    // The tar may end before the compressed stream does: read the rest so the
    // layer's digest is checked before anything from it is used.
    std::vector<char> rest(64 * 1024);
    while (true) {
      auto n = reader->read(rest.data(), rest.size());
      if (!n) return n.error();
      if (*n == 0) break;
    }
    for (auto& [path, d] : here) decided[path] = d;
    hidden_above.insert(hidden_above.end(), deleted_paths.begin(), deleted_paths.end());
    hidden_above.insert(hidden_above.end(), opaque_dirs.begin(), opaque_dirs.end());
    for (const auto& path : want) {
      if (decided.count(path)) continue;
      bool gone = false;
      for (const auto& d : deleted_paths) gone = gone || path == d || is_under(path, d);
      for (const auto& d : opaque_dirs) gone = gone || is_under(path, d);
      if (gone) decided[path] = Decision::Deleted;
    }
  }
  return files;
}

}  // namespace fastsync::release
