// SIGINT/SIGTERM: the first asks the run to stop cleanly; a second exits at once.
// SIGUSR1: print what every operation in flight is doing, and carry on.
#pragma once

#include <atomic>
#include <functional>
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

}  // namespace fastsync::cli
