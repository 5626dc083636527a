#include "registry/distribution/auth_file.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "registry/core/digest.h"

namespace fastsync {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "https://Registry.example.com:5000/v2/" -> {"registry.example.com:5000", ""}
// "quay.io/openshift-release-dev"         -> {"quay.io", "openshift-release-dev"}
std::pair<std::string, std::string> normalize_key(std::string_view key) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.substr(0, scheme.size()) == scheme) key.remove_prefix(scheme.size());
  }
  while (!key.empty() && key.back() == '/') key.remove_suffix(1);
  for (std::string_view api : {"/v1", "/v2"}) {
    if (key.size() >= api.size() && key.substr(key.size() - api.size()) == api) key.remove_suffix(api.size());
  }
  auto slash = key.find('/');
  std::string host = lower(key.substr(0, slash));
  std::string path = slash == std::string_view::npos ? std::string() : std::string(key.substr(slash + 1));
  // Docker Hub has several spellings.
  if (host == "index.docker.io" || host == "registry-1.docker.io") host = "docker.io";
  return {host, path};
}

}  // namespace

Result<AuthFileChoice> AuthFile::locate(const std::string& explicit_path) {
  if (!explicit_path.empty()) return AuthFileChoice{explicit_path, "--pull-secret"};
  std::error_code ec;
  if (const char* env = std::getenv("REGISTRY_AUTH_FILE"); env && *env) {
    if (!std::filesystem::exists(env, ec)) {
      return Error::make(ErrorKind::Invalid, fmt::format("REGISTRY_AUTH_FILE names {}, which does not exist", env));
    }
    return AuthFileChoice{env, "REGISTRY_AUTH_FILE"};
  }
  std::vector<std::string> looked;
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime) {
    std::string path = std::string(runtime) + "/containers/auth.json";
    if (std::filesystem::exists(path, ec)) return AuthFileChoice{path, "${XDG_RUNTIME_DIR}/containers/auth.json"};
    looked.push_back(path);
  } else {
    looked.push_back("${XDG_RUNTIME_DIR}/containers/auth.json (XDG_RUNTIME_DIR is not set)");
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string path = std::string(home) + "/.docker/config.json";
    if (std::filesystem::exists(path, ec)) return AuthFileChoice{path, "~/.docker/config.json"};
    looked.push_back(path);
  } else {
    looked.push_back("~/.docker/config.json (HOME is not set)");
  }
  std::string places = "REGISTRY_AUTH_FILE (not set)";
  for (const auto& p : looked) places += ", " + p;
  return Error::make(ErrorKind::Invalid, fmt::format("no pull secret: pass --pull-secret FILE (looked in {})", places));
}

Result<AuthFile> AuthFile::parse(std::string_view json, std::string_view origin) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("pull secret {} is not valid JSON (at byte {}: {})", origin, doc.GetErrorOffset(),
                                   rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (doc.IsObject() && !doc.HasMember("auths") && (doc.HasMember("credsStore") || doc.HasMember("credHelpers"))) {
    return Error::make(
        ErrorKind::Invalid,
        fmt::format("pull secret {} keeps its credentials in a credential helper (credsStore/credHelpers), "
                    "which fastsync does not run; write them to a file with podman login --authfile, "
                    "or pass --pull-secret",
                    origin));
  }
  if (!doc.IsObject() || !doc.HasMember("auths") || !doc["auths"].IsObject()) {
    return Error::make(
        ErrorKind::Invalid,
        fmt::format("pull secret {} has no \"auths\" object (expected {{\"auths\":{{\"host\":{{\"auth\":\"...\"}}}}}})",
                    origin));
  }
  AuthFile file;
  for (auto& member : doc["auths"].GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    auto field = [&](std::string_view what) {
      return Error::make(ErrorKind::Invalid, fmt::format("pull secret {}: auths.\"{}\"{}", origin, key, what));
    };
    if (!member.value.IsObject()) return field(" is not an object");
    const auto& v = member.value;
    Entry entry;
    std::tie(entry.host, entry.path) = normalize_key(key);
    if (entry.host.empty()) return field(" has an empty registry name");
    if (v.HasMember("auth") && v["auth"].IsString() && v["auth"].GetStringLength() > 0) {
      auto decoded = base64_decode(std::string_view(v["auth"].GetString(), v["auth"].GetStringLength()));
      if (!decoded) return field(".auth is not valid base64 (expected base64 of user:password)");
      auto colon = decoded->find(':');
      if (colon == std::string::npos) return field(".auth does not decode to user:password");
      entry.credentials = {decoded->substr(0, colon), decoded->substr(colon + 1)};
    } else if (v.HasMember("username") && v["username"].IsString()) {
      entry.credentials.username = v["username"].GetString();
      if (v.HasMember("password") && v["password"].IsString()) entry.credentials.password = v["password"].GetString();
    } else {
      // An entry with neither (e.g. only "email") grants nothing: treat as anonymous.
      continue;
    }
    file.entries_.push_back(std::move(entry));
  }
  return file;
}

Result<AuthFile> AuthFile::load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error::make(ErrorKind::Invalid, fmt::format("cannot read pull secret {}: it is a directory", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error::make(ErrorKind::Invalid, fmt::format("cannot read pull secret {}: {}", path, std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    return Error::make(ErrorKind::Invalid, fmt::format("cannot read pull secret {}: {}", path, std::strerror(errno)));
  }
  return parse(buf.str(), path);
}

std::optional<Credentials> AuthFile::lookup(std::string_view host, std::string_view repository) const {
  std::string want_host = normalize_key(host).first;
  const Entry* best = nullptr;
  for (const auto& e : entries_) {
    if (e.host != want_host) continue;
    bool matches = e.path.empty() || repository == e.path ||
                   (repository.size() > e.path.size() && repository.substr(0, e.path.size()) == e.path &&
                    repository[e.path.size()] == '/');
    if (matches && (!best || e.path.size() > best->path.size())) best = &e;
  }
  if (!best) return std::nullopt;
  return best->credentials;
}

}  // namespace fastsync
