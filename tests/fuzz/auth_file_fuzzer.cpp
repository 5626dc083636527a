// libFuzzer: the pull secret is user input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry/distribution/auth_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto file = fastsync::AuthFile::parse(input, "fuzz.json");
  if (file) {
    (void)file->lookup("quay.io", "openshift-release-dev/ocp-release");
    (void)file->lookup("127.0.0.1:5000", "");
  }
  return 0;
}
