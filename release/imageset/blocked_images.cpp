#include "release/imageset/blocked_images.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace fastsync::imageset {

std::string without_transport(const std::string& name) {
  constexpr std::string_view kDocker = "docker://";
  return name.rfind(kDocker, 0) == 0 ? name.substr(kDocker.size()) : name;
}

std::string BlockedBy::describe(const std::string& file) const {
  return fmt::format("blockedImages entry \"{}\" ({}:{})", entry, file, line);
}

namespace {

// A number in a regular expression too long for libstdc++: it reads a
// back-reference (\N) or a repeat count ({N,M}) into an int without checking
// for overflow (undefined behaviour, found by the image_set fuzzer). No
// image name needs more than a few digits there.
std::optional<std::string> oversized_number(const std::string& pattern) {
  for (std::size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] != '\\' && pattern[i] != '{' && pattern[i] != ',') continue;
    std::size_t digits = 0;
    while (i + 1 + digits < pattern.size() && std::isdigit(static_cast<unsigned char>(pattern[i + 1 + digits]))) {
      ++digits;
    }
    if (digits > 6) return pattern.substr(i, 1 + std::min<std::size_t>(digits, 12));
  }
  return std::nullopt;
}

}  // namespace

Result<BlockedImages> BlockedImages::from(const std::vector<NamedImage>& entries, const std::string& file) {
  BlockedImages blocked;
  blocked.file_ = file;
  for (const auto& e : entries) {
    Rule rule{BlockedBy{e.name, e.line}, std::nullopt, std::nullopt};
    std::string name = without_transport(e.name);
    bool looks_like_pattern = name.find_first_of("^$*+?()[]{}|\\") != std::string::npos;
    if (auto ref = Reference::parse(name); ref && !looks_like_pattern) {
      rule.reference = *ref;
    } else {
      if (auto number = oversized_number(name)) {
        return Error::make(ErrorKind::Invalid,
                           fmt::format("{}:{}: mirror.blockedImages: \"{}\" has a number too large for a regular "
                                       "expression (\"{}...\")",
                                       file, e.line, e.name, *number));
      }
      try {
        rule.pattern = std::regex(name, std::regex::ECMAScript);
      } catch (const std::regex_error& err) {
        return Error::make(ErrorKind::Invalid,
                           fmt::format("{}:{}: mirror.blockedImages: \"{}\" is neither an image reference nor a "
                                       "valid regular expression ({})",
                                       file, e.line, e.name, err.what()));
      }
    }
    blocked.rules_.push_back(std::move(rule));
  }
  return blocked;
}

std::optional<BlockedBy> BlockedImages::match(const Reference& image) const {
  std::string full = image.str();
  for (const auto& rule : rules_) {
    if (rule.reference) {
      const Reference& r = *rule.reference;
      if (r.name() != image.name()) continue;
      bool by_tag = !r.tag.empty() && r.digest.empty();
      if ((r.tag.empty() && r.digest.empty()) || (by_tag && r.tag == image.tag) ||
          (!r.digest.empty() && r.digest == image.digest)) {
        return rule.by;
      }
    } else if (std::regex_search(full, *rule.pattern)) {
      return rule.by;
    }
  }
  return std::nullopt;
}

}  // namespace fastsync::imageset
