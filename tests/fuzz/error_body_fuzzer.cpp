// libFuzzer: registry error bodies (or whatever a proxy sends instead) end up in messages.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry/distribution/error_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string text = fastsync::describe_error_body(input);
  if (text.find('\n') != std::string::npos || text.size() > 400) __builtin_trap();  // one short line, always
  return 0;
}
