// Registry error bodies, {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]},
// turned into one readable line.
#pragma once

#include <string>
#include <string_view>

namespace fastsync {

// "MANIFEST_UNKNOWN: manifest unknown; ..." for a registry error body; for anything
// else (an HTML page from a proxy, say) its first line, shortened. Empty if nothing useful.
std::string describe_error_body(std::string_view body);

// The first error code of a registry error body ("NAME_UNKNOWN"); empty if none.
std::string first_error_code(std::string_view body);

}  // namespace fastsync
