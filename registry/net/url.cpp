#include "registry/net/url.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>

namespace fastsync {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlStringDeleter {
  void operator()(char* s) const { curl_free(s); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

UrlHandle parse(const std::string& url) {
  UrlHandle h(curl_url());
  if (!h || curl_url_set(h.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return nullptr;
  return h;
}

std::string get_part(CURLU* h, CURLUPart part, unsigned flags = 0) {
  char* raw = nullptr;
  if (curl_url_get(h, part, &raw, flags) != CURLUE_OK) return {};
  CurlString owned(raw);
  return owned.get();
}

}  // namespace

Result<std::string> resolve_url(const std::string& base, const std::string& location) {
  auto h = parse(base);
  if (!h) return Error::make(ErrorKind::Protocol, fmt::format("cannot parse URL {}", url_for_log(base)));
  // Setting a relative URL on a handle holding the base resolves it (RFC 3986).
  if (curl_url_set(h.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) {
    return Error::make(ErrorKind::Protocol,
                       fmt::format("registry sent an unusable Location \"{}\"", url_for_log(location)));
  }
  return get_part(h.get(), CURLUPART_URL);
}

Result<std::string> add_query_param(const std::string& url, std::string_view key, std::string_view value) {
  auto h = parse(url);
  if (!h) return Error::make(ErrorKind::Protocol, fmt::format("cannot parse URL {}", url_for_log(url)));
  std::string pair = fmt::format("{}={}", key, url_encode(value));
  if (curl_url_set(h.get(), CURLUPART_QUERY, pair.c_str(), CURLU_APPENDQUERY) != CURLUE_OK) {
    return Error::make(ErrorKind::Protocol, fmt::format("cannot add {} to URL {}", key, url_for_log(url)));
  }
  return get_part(h.get(), CURLUPART_URL);
}

std::string url_origin(const std::string& url) {
  auto h = parse(url);
  if (!h) return {};
  std::string host = get_part(h.get(), CURLUPART_HOST);
  std::string port = get_part(h.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host + ":" + port;
}

std::string url_host_port(const std::string& url) {
  auto h = parse(url);
  if (!h) return {};
  std::string host = get_part(h.get(), CURLUPART_HOST);
  std::string port = get_part(h.get(), CURLUPART_PORT);  // only when the URL spells one out
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return port.empty() ? host : host + ":" + port;
}

std::string url_scheme(const std::string& url) {
  auto h = parse(url);
  return h ? get_part(h.get(), CURLUPART_SCHEME) : std::string();
}

std::string url_for_log(const std::string& url) {
  auto q = url.find('?');
  return q == std::string::npos ? url : url.substr(0, q) + "?...";
}

std::string url_encode(std::string_view text) {
  char* raw = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  if (!raw) return std::string(text);
  CurlString owned(raw);
  return owned.get();
}

}  // namespace fastsync
