#include "release/imageset/blocked_images.h"

#include <fmt/format.h>

namespace fastsync::imageset {

std::string without_transport(const std::string& name) {
  constexpr std::string_view kDocker = "docker://";
  return name.rfind(kDocker, 0) == 0 ? name.substr(kDocker.size()) : name;
}

std::string BlockedBy::describe(const std::string& file) const {
  return fmt::format("blockedImages entry \"{}\" ({}:{})", entry, file, line);
}

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
