// libFuzzer: the payload's verification ConfigMap (hand-read YAML block
// scalars) and a signed document, both from the network before they are trusted.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "release/signatures/signatures.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto keys = fastsync::release::parse_verification_keys(input, "fuzz.yaml");
  if (keys) {
    for (const auto& k : *keys) {
      // Every key is named as the ConfigMap names them, and holds something.
      if (k.name.rfind(fastsync::release::kVerifierKeyPrefix, 0) != 0 || k.data.empty()) __builtin_trap();
    }
  }
  const std::string digest = "sha256:" + std::string(64, 'a');
  auto identity = fastsync::release::check_signed_document(input, digest);
  if (identity && identity->empty()) __builtin_trap();
  return 0;
}
