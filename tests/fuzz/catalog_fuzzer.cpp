// libFuzzer: a file of an operator catalog (JSON objects or YAML documents, as
// a catalog image carries them), its selection and the catalog written back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "release/imageset/catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  fastsync::imageset::Catalog catalog;
  auto added = catalog.add_file(input, "configs/fuzz/catalog.json");
  if (!added) {
    // Every refusal names the file.
    if (added.error().message.rfind("configs/fuzz/catalog.json", 0) != 0) __builtin_trap();
    return 0;
  }
  for (bool full : {false, true}) {
    fastsync::imageset::CatalogFilter filter;
    filter.full = full;
    auto kept = fastsync::imageset::select_bundles(catalog, filter, "fuzz");
    if (!kept) continue;
    (void)fastsync::imageset::images_of(*kept);
    // What is written back reads back.
    for (const auto& [path, text] : fastsync::imageset::render_catalog(*kept)) {
      fastsync::imageset::Catalog again;
      if (!again.add_file(text, path)) __builtin_trap();
    }
  }
  return 0;
}
