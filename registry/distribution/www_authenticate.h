// WWW-Authenticate challenges (RFC 7235) as registries send them:
//   Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull"
//   Basic realm="Registry Realm"
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fastsync {

struct Challenge {
  std::string scheme;                         // lowercase: "bearer", "basic", ...
  std::map<std::string, std::string> params;  // lowercase keys, unquoted values
  std::string param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  }
};

// All challenges in one header value; malformed trailing input is ignored.
std::vector<Challenge> parse_www_authenticate(std::string_view header);

}  // namespace fastsync
