// Image references: host[:port]/path[:tag][@sha256:digest].
#pragma once

#include <string>
#include <string_view>

#include "registry/core/result.h"

namespace fastsync {

struct Reference {
  std::string registry;    // host[:port], e.g. "quay.io", "127.0.0.1:5000", "[::1]:5000"
  std::string repository;  // e.g. "openshift-release-dev/ocp-release"
  std::string tag;         // may be empty
  std::string digest;      // may be empty; "sha256:<hex>" when set

  // The tag or digest a registry request names (digest wins, as for a runtime).
  const std::string& identifier() const { return digest.empty() ? tag : digest; }
  // registry/repository
  std::string name() const;
  // The canonical string: registry/repository[:tag][@digest]
  std::string str() const;

  // Every reference fastsync handles names its registry: a first path component
  // counts as a host when it has a '.', a ':' or is "localhost" (Docker's rule).
  static Result<Reference> parse(std::string_view text);
};

// "https://quay.io/ns/repo" -> {"https", "quay.io/ns/repo"}; no scheme: {"", text}.
// The one place a user's "http://" or "https://" prefix is taken off.
struct SchemeAndRest {
  std::string scheme;  // "", "https" or "http"
  std::string rest;
};
SchemeAndRest split_scheme(std::string_view text);

// host[:port][/prefix] as a user typed it for --dest-registry / the host part
// of --source-registry: an optional "https://" or "http://" scheme and trailing
// '/' are accepted. The scheme, when given, is returned in `scheme`; a path
// after the host (oc-mirror's "put everything under this prefix") in `prefix`.
struct RegistryHost {
  std::string host;    // host[:port]
  std::string scheme;  // "", "https" or "http"
  std::string prefix;  // e.g. "mirror/ocp"; empty: none
  static Result<RegistryHost> parse(std::string_view text);
};

// A destination repository for registries that allow at most `max_components`
// path components (Quay: 2, GitLab: 3), as oc-mirror flattens it: the first
// max-1 components kept, the rest joined with '-' into the last one. 0: no limit.
std::string nest_repository(std::string_view path, int max_components);

bool is_valid_repository(std::string_view path);
bool is_valid_tag(std::string_view tag);
// Loopback hosts (localhost, 127.0.0.0/8, ::1) may speak plain HTTP without --insecure.
bool is_loopback_host(std::string_view host_port);

}  // namespace fastsync
