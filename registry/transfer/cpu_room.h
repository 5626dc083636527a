// Whether the CPU left a run's rate to its links over a window of it. A run
// whose rate does not grow with its connections is capped by something they
// all share: one interface (a pod's), or a CPU too busy to move more. Only the
// first says lanes cannot pay, so a window counts as evidence of a shared link
// only when neither the machine nor this process was short of CPU in it.
#pragma once

#include <chrono>
#include <cstdint>

namespace fastsync {

class CpuRoom {
 public:
  CpuRoom();
  // Ends the window begun by the previous call (or construction) and starts
  // the next: true when, over it, the machine's CPUs were busy less than
  // kBusyShare of the time (/proc/stat; under the suite's load or stress-ng
  // they are busy 99 %, a quiet test run 10-40 %) and this process used less
  // than kProcessCores (beyond that its one engine thread can be the limit
  // with a core idle: a sanitizer build). False where nothing tells.
  bool window_had_room();

  static constexpr double kBusyShare = 0.75;    // of all CPUs' time
  static constexpr double kProcessCores = 0.7;  // of one CPU's time, this process's

 private:
  struct Reading {
    std::chrono::steady_clock::time_point at;
    std::uint64_t busy_ticks = 0, all_ticks = 0;  // /proc/stat, every CPU's (none where it cannot be read)
    double process_seconds = 0;                   // user + system
  };
  static Reading read();
  Reading last_;
};

}  // namespace fastsync
