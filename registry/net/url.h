// URL handling through libcurl's URL API (never by hand).
#pragma once

#include <string>
#include <string_view>

#include "registry/core/result.h"

namespace fastsync {

// Resolves a Location header (absolute, host-relative or path-relative, with or
// without its own query) against the URL of the request that returned it.
Result<std::string> resolve_url(const std::string& base, const std::string& location);

// Adds "key=value" to the URL's query, keeping any query it already has.
Result<std::string> add_query_param(const std::string& url, std::string_view key, std::string_view value);

// "host:port" with the scheme's default port filled in, lowercase; "" if unparsable.
// Two URLs are the same origin for credentials when scheme and this agree.
std::string url_origin(const std::string& url);

// "host[:port]" as the URL writes it (no default port added): how users name
// a registry, and how certs.d directories are named.
std::string url_host_port(const std::string& url);

// scheme of a URL ("https", "http"), "" if unparsable.
std::string url_scheme(const std::string& url);

// The URL without its query string: safe to print (CDN URLs carry signatures).
std::string url_for_log(const std::string& url);

// Percent-encodes a query component.
std::string url_encode(std::string_view text);

}  // namespace fastsync
