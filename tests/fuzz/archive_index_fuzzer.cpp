// libFuzzer: fastsync-archive.json arrives on a disk from the other side of an air gap.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "release/archive/archive_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto index = fastsync::release::ArchiveIndex::parse(input, "fuzz.json");
  if (index) {
    // Validation promised every blob lies inside a volume of the archive, and that the index survives a round trip.
    for (const auto& [digest, b] : index->blobs) {
      if (b.volume < 1 || static_cast<std::size_t>(b.volume) > index->volumes.size()) __builtin_trap();
      if (b.offset + b.size > index->volumes[static_cast<std::size_t>(b.volume - 1)].size) __builtin_trap();
    }
    auto again = fastsync::release::ArchiveIndex::parse(index->to_json(), "again.json");
    if (!again || again->blobs.size() != index->blobs.size()) __builtin_trap();
  }
  return 0;
}
