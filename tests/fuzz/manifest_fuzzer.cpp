// libFuzzer: manifests arrive from registries we do not control.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry/core/digest.h"
#include "registry/core/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (std::string_view content_type :
       {std::string_view(), fastsync::media_type::kOciIndex, std::string_view("application/json; charset=utf-8")}) {
    auto m = fastsync::parse_manifest(input, content_type);
    if (!m) continue;
    for (const auto& d : m->layers) {
      if (!fastsync::is_sha256_digest(d.digest)) __builtin_trap();  // only checkable digests get through
    }
    (void)fastsync::find_platform(*m, "linux/amd64");
  }
  return 0;
}
