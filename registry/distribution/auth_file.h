// The --pull-secret file: a Docker/Podman auth JSON,
//   {"auths": {"quay.io": {"auth": "base64(user:password)"},
//              "https://registry.example.com:5000": {"username": "u", "password": "p"},
//              "quay.io/openshift-release-dev": {...}}}
// Keys may carry a scheme, a trailing "/v1/" or "/v2/", and a repository path
// prefix (the most specific matching entry wins, as in containers-auth.json).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "registry/core/result.h"

namespace fastsync {

struct Credentials {
  std::string username;
  std::string password;
};

// Which file the credentials come from, and why that one.
struct AuthFileChoice {
  std::string path;
  std::string reason;  // "--pull-secret", "REGISTRY_AUTH_FILE", ...
};

class AuthFile {
 public:
  // The file to read, as podman and skopeo choose it: `explicit_path`
  // (--pull-secret) when given; else $REGISTRY_AUTH_FILE (which must exist);
  // else the first that exists of ${XDG_RUNTIME_DIR}/containers/auth.json and
  // ~/.docker/config.json. None: an error naming every place looked at.
  static Result<AuthFileChoice> locate(const std::string& explicit_path);
  // Parses the JSON text; `origin` names the file in error messages.
  static Result<AuthFile> parse(std::string_view json, std::string_view origin);
  // Reads and parses a file.
  static Result<AuthFile> load(const std::string& path);
  // An empty store: every registry is accessed anonymously.
  AuthFile() = default;

  // Credentials for a repository on a registry host (host[:port]); nullopt = anonymous.
  std::optional<Credentials> lookup(std::string_view host, std::string_view repository = {}) const;

 private:
  struct Entry {
    std::string host;  // normalized host[:port]
    std::string path;  // repository prefix, may be empty
    Credentials credentials;
  };
  std::vector<Entry> entries_;
};

}  // namespace fastsync
