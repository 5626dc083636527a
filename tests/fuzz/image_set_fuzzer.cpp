// libFuzzer: the image set file (a user's YAML) and its blocked-image entries.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "release/imageset/blocked_images.h"
#include "release/imageset/image_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto set = fastsync::imageset::parse_image_set(input, "fuzz.yaml");
  if (!set) {
    // Every refusal is one line naming the file.
    if (set.error().message.rfind("fuzz.yaml", 0) != 0) __builtin_trap();
    return 0;
  }
  auto blocked = fastsync::imageset::BlockedImages::from(set->blocked_images, set->file);
  if (blocked) {
    auto ref = fastsync::Reference::parse("quay.io/org/image:1");
    if (ref) (void)blocked->match(*ref);
  }
  return 0;
}
