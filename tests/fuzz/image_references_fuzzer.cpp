// libFuzzer: image-references and release-metadata come from a release image's layer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "release/payload/image_references.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto refs = fastsync::release::parse_image_references(input);
  if (refs) {
    for (const auto& c : refs->components) {
      if (c.name.empty() || c.image.digest.empty()) __builtin_trap();  // validation promised both
    }
  }
  (void)fastsync::release::parse_release_metadata(input);
  return 0;
}
