// libFuzzer: WWW-Authenticate headers and image references come from the network.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry/core/reference.h"
#include "registry/distribution/www_authenticate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const auto& c : fastsync::parse_www_authenticate(input)) {
    (void)c.param("realm");
  }
  auto ref = fastsync::Reference::parse(input);
  if (ref && fastsync::Reference::parse(ref->str()).value().str() != ref->str()) __builtin_trap();  // round trip
  (void)fastsync::RegistryHost::parse(input);
  return 0;
}
