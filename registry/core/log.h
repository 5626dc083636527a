// Logging for every layer, through spdlog, without spdlog's templates at each
// call site: spdlog's formatting, instantiated per call, was a fifth of a
// translation unit's compile time (a third under sanitizers). The level check
// is inline; a line that is logged is formatted here and written by log.cpp.
#pragma once

#include <fmt/format.h>

#include <string_view>
#include <utility>

namespace fastsync::logging {

enum class Level { Debug, Info, Warn, Error };

bool enabled(Level level);
void write(Level level, std::string_view line);

template <typename... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Debug)) write(Level::Debug, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Info)) write(Level::Info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Warn)) write(Level::Warn, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::Error)) write(Level::Error, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace fastsync::logging
