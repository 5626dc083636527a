// SIGINT/SIGTERM: the first asks the run to stop cleanly; a second exits at once.
// SIGUSR1: print what every operation in flight is doing, and carry on.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace fastsync::cli {

class SignalWatcher {
 public:
  // Call first thing in main, before any thread exists: every thread created
  // later inherits the mask, so only the watcher ever sees these signals.
  static void block_signals();

  explicit SignalWatcher(std::function<void(int)> on_first_signal, std::function<void()> on_diagnostics = {});
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  int received() const { return received_.load(); }  // first signal, 0 if none

 private:
  std::function<void(int)> on_first_;
  std::function<void()> on_diagnostics_;
  std::atomic<int> received_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Once a run is cancelled (a signal, a fatal error) it must reach its summary
// within seconds: every wait is woken by the cancellation or bounded by the
// stall limit. Should one not be, this reports rather than hides it: after
// `grace` it prints what is still in flight (as SIGUSR1 does) and exits with
// `exit_code()`, so nobody has to find the second Ctrl-C.
class CancelWatchdog {
 public:
  CancelWatchdog(std::chrono::seconds grace, std::function<std::string()> describe, std::function<int()> exit_code);
  ~CancelWatchdog();  // the run stopped in time: disarm
  CancelWatchdog(const CancelWatchdog&) = delete;
  CancelWatchdog& operator=(const CancelWatchdog&) = delete;

  // The run was cancelled: the grace period starts now (once; thread-safe).
  void arm();

 private:
  const std::chrono::seconds grace_;
  std::function<std::string()> describe_;
  std::function<int()> exit_code_;
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace fastsync::cli
