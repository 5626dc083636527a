#include "registry/distribution/error_body.h"

#include <rapidjson/document.h>

#include <cctype>

namespace fastsync {
namespace {

constexpr size_t kMaxLength = 300;

std::string printable_line(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r') break;
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
    if (out.size() >= kMaxLength) {
      out += "...";
      break;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string describe_error_body(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("errors") && doc["errors"].IsArray()) {
    std::string out;
    for (const auto& e : doc["errors"].GetArray()) {
      if (!e.IsObject()) continue;
      std::string item;
      if (e.HasMember("code") && e["code"].IsString()) item = e["code"].GetString();
      if (e.HasMember("message") && e["message"].IsString() && e["message"].GetStringLength() > 0) {
        item += (item.empty() ? "" : ": ") + std::string(e["message"].GetString());
      }
      if (item.empty()) continue;
      out += (out.empty() ? "" : "; ") + item;
    }
    return printable_line(out);
  }
  size_t start = 0;
  while (start < body.size() && std::isspace(static_cast<unsigned char>(body[start]))) ++start;
  return printable_line(body.substr(start));
}

std::string first_error_code(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("errors") || !doc["errors"].IsArray()) return {};
  for (const auto& e : doc["errors"].GetArray()) {
    if (e.IsObject() && e.HasMember("code") && e["code"].IsString()) return e["code"].GetString();
  }
  return {};
}

}  // namespace fastsync
