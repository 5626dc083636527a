#pragma once

#include "cli/options.h"

namespace fastsync::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitSomeFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnusable = 3;  // release not resolvable, destination refuses us

// Runs a whole mirror (or a dry run) and returns the process exit code.
int run_mirror_command(const CliOptions& options);

}  // namespace fastsync::cli
