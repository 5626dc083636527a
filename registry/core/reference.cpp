#include "registry/core/reference.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "registry/core/digest.h"

namespace fastsync {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
bool is_valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < c.size() && !is_lower_alnum(c[i])) ++i;
    std::string_view sep = c.substr(start, i - start);
    bool dashes = std::all_of(sep.begin(), sep.end(), [](char ch) { return ch == '-'; });
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
  }
  return true;
}

bool looks_like_host(std::string_view first) {
  return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
         first == "localhost" || (!first.empty() && first.front() == '[');
}

bool is_valid_host(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {  // [ipv6]:port
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    auto rest = host.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':' || rest.size() == 1) return false;
    return std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  auto colon = host.rfind(':');
  std::string_view name = host.substr(0, colon);
  if (colon != std::string_view::npos) {
    auto port = host.substr(colon + 1);
    if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
  }
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
}

}  // namespace

bool is_valid_repository(std::string_view path) {
  if (path.empty() || path.size() > 255) return false;
  size_t start = 0;
  while (true) {
    auto slash = path.find('/', start);
    if (!is_valid_component(path.substr(start, slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool is_valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(tag.front())) return false;
  return std::all_of(tag.begin(), tag.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

bool is_loopback_host(std::string_view host_port) {
  std::string_view host = host_port;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
    return host == "::1";
  }
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host.rfind("127.", 0) == 0;
}

std::string Reference::name() const { return registry + "/" + repository; }

std::string Reference::str() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

Result<Reference> Reference::parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Error::make(ErrorKind::Invalid, fmt::format("invalid image reference \"{}\": {}", text, why));
  };
  Reference ref;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!is_sha256_digest(ref.digest)) return bad("digest must be sha256:<64 lowercase hex>");
  }
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || !looks_like_host(rest.substr(0, slash))) {
    return bad("it must start with a registry host (host[:port]/repository)");
  }
  ref.registry = std::string(rest.substr(0, slash));
  if (!is_valid_host(ref.registry)) return bad("registry host is not valid");
  rest = rest.substr(slash + 1);
  // A ':' after the last '/' separates the tag.
  auto last_slash = rest.rfind('/');
  auto colon = rest.find(':', last_slash == std::string_view::npos ? 0 : last_slash);
  if (colon != std::string_view::npos) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!is_valid_tag(ref.tag)) return bad("tag is not valid");
  }
  ref.repository = std::string(rest);
  if (!is_valid_repository(ref.repository)) return bad("repository path is not valid (lowercase, '/'-separated)");
  return ref;
}

SchemeAndRest split_scheme(std::string_view text) {
  for (std::string_view scheme : {"https", "http"}) {
    if (text.substr(0, scheme.size()) == scheme && text.substr(scheme.size(), 3) == "://") {
      return {std::string(scheme), std::string(text.substr(scheme.size() + 3))};
    }
  }
  return {"", std::string(text)};
}

Result<RegistryHost> RegistryHost::parse(std::string_view text) {
  RegistryHost out;
  auto split = split_scheme(text);
  out.scheme = split.scheme;
  std::string_view rest = split.rest;
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest.substr(0, rest.find('/'));
  std::string_view prefix = host.size() < rest.size() ? rest.substr(host.size() + 1) : std::string_view();
  if (!is_valid_host(host)) {
    return Error::make(
        ErrorKind::Invalid,
        fmt::format("invalid registry \"{}\": expected host[:port], e.g. registry.example.com:5000", text));
  }
  if (!prefix.empty() && !is_valid_repository(prefix)) {
    return Error::make(ErrorKind::Invalid,
                       fmt::format("invalid registry \"{}\": \"{}\" after the host is not a valid repository path "
                                   "(lowercase, '/'-separated)",
                                   text, prefix));
  }
  out.host = std::string(host);
  out.prefix = std::string(prefix);
  return out;
}

std::string nest_repository(std::string_view path, int max_components) {
  if (max_components <= 0) return std::string(path);
  std::vector<std::string_view> parts;
  for (std::size_t at = 0;;) {
    auto slash = path.find('/', at);
    parts.push_back(path.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at));
    if (slash == std::string_view::npos) break;
    at = slash + 1;
  }
  if (parts.size() <= static_cast<std::size_t>(max_components)) return std::string(path);
  std::string out;
  auto keep = static_cast<std::size_t>(max_components - 1);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += i <= keep ? "/" : "-";
    out += parts[i];
  }
  return out;
}

}  // namespace fastsync
