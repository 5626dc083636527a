// What the user sees while a mirror runs: on a terminal a live status line
// (redrawn in place), otherwise a plain line every few seconds; log lines from
// any thread are printed above it without tearing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "stages/types.h"

namespace fastsync::cli {

enum class ProgressMode { Live, Lines, Quiet };

// Owns stderr while a run is in progress.
class Console {
 public:
  explicit Console(ProgressMode mode) : mode_(mode) {}
  ProgressMode mode() const { return mode_; }
  void log_line(const std::string& line);
  void status(const std::string& line);
  void clear_status();

 private:
  ProgressMode mode_;
  std::mutex mutex_;
  std::string live_;  // the status line currently drawn
};

// Installs a spdlog logger that writes through `console` (warnings, or everything with verbose).
void install_logger(Console& console, bool verbose);

struct LiveCounters {
  const stages::Progress& progress;
  std::function<std::uint64_t()> bytes_moved;  // bytes read from sources so far
  std::function<int()> transfers_in_flight;
};

class ProgressReporter {
 public:
  ProgressReporter(Console& console, LiveCounters counters);
  ~ProgressReporter();
  void stop();

 private:
  std::string render(double seconds, double rate);

  Console& console_;
  LiveCounters counters_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// "596.0 MiB": the one byte format of everything fastsync prints (binary units, as its flags take them).
std::string human_bytes(double bytes);
std::string human_duration(double seconds);

}  // namespace fastsync::cli
