// blockedImages: images never copied, whichever section names them. An entry
// is matched as oc-mirror v2 matches it:
//   - a repository (quay.io/org/tool): every image of that repository;
//   - a reference with a tag or a digest: that image only (a tag matches the
//     image named by that tag; a digest the image with that digest);
//   - anything else that is a valid regular expression (it holds one of
//     ^ $ * + ? ( ) [ ] { } | \): searched for in the image's full reference,
//     registry/path[:tag][@digest].
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "registry/core/reference.h"
#include "release/imageset/image_set.h"

namespace fastsync::imageset {

// Why an image is left out: the entry that matched, as written, and its line.
struct BlockedBy {
  std::string entry;
  int line = 0;
  std::string describe(const std::string& file) const;  // "blockedImages entry \"…\" (file:line)"
};

class BlockedImages {
 public:
  BlockedImages() = default;
  // One error line naming the file and line of an entry that is neither a
  // reference nor a valid regular expression.
  static Result<BlockedImages> from(const std::vector<NamedImage>& entries, const std::string& file);
  // The entry blocking `image`, if any.
  std::optional<BlockedBy> match(const Reference& image) const;
  bool empty() const { return rules_.empty(); }
  const std::string& file() const { return file_; }

 private:
  struct Rule {
    BlockedBy by;
    std::optional<Reference> reference;  // a repository, or an image by tag or digest
    std::optional<std::regex> pattern;
  };
  std::vector<Rule> rules_;
  std::string file_;
};

// "docker://quay.io/x:1" -> "quay.io/x:1": oc-mirror's files may name images with a transport.
std::string without_transport(const std::string& name);

}  // namespace fastsync::imageset
