#include "registry/distribution/www_authenticate.h"

#include <cctype>

namespace fastsync {
namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void skip_space_and_commas() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ',')) ++i_;
  }
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void advance() { ++i_; }
  size_t pos() const { return i_; }
  void seek(size_t p) { i_ = p; }
  std::string_view token() {
    size_t start = i_;
    while (i_ < s_.size() && is_token_char(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }
  // An unquoted parameter value: up to the next ',' or blank.
  std::string_view bare() {
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ' ' && s_[i_] != '\t') ++i_;
    return s_.substr(start, i_ - start);
  }
  // Assumes the opening quote is current.
  std::string quoted() {
    std::string out;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out.push_back(s_[i_++]);
    }
    if (i_ < s_.size()) ++i_;  // closing quote
    return out;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::vector<Challenge> parse_www_authenticate(std::string_view header) {
  std::vector<Challenge> out;
  Scanner sc(header);
  sc.skip_space_and_commas();
  while (!sc.done()) {
    std::string_view scheme = sc.token();
    if (scheme.empty()) break;
    Challenge ch;
    ch.scheme = lower(scheme);
    sc.skip_space();
    // auth-params until the next "token SP" that starts a new challenge.
    while (!sc.done()) {
      size_t mark = sc.pos();
      sc.skip_space_and_commas();
      std::string_view key = sc.token();
      sc.skip_space();
      if (key.empty() || sc.peek() != '=') {
        sc.seek(mark);  // not a parameter: a new challenge starts here
        break;
      }
      sc.advance();  // '='
      sc.skip_space();
      std::string value = sc.peek() == '"' ? sc.quoted() : std::string(sc.bare());
      ch.params[lower(key)] = value;
    }
    out.push_back(std::move(ch));
    sc.skip_space_and_commas();
  }
  return out;
}

}  // namespace fastsync
