#include "cli/signals.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

namespace fastsync::cli {
namespace {

sigset_t watched() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  return set;
}

}  // namespace

void SignalWatcher::block_signals() {
  sigset_t set = watched();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalWatcher::SignalWatcher(std::function<void(int)> on_first_signal, std::function<void()> on_diagnostics)
    : on_first_(std::move(on_first_signal)), on_diagnostics_(std::move(on_diagnostics)) {
  thread_ = std::thread([this] {
    sigset_t set = watched();
    // The destructor wakes the wait (a SIGUSR1 sent to this thread alone); the
    // tick only bounds the exit should that ever be lost.
    const timespec tick{1, 0};
    while (!stop_.load()) {
      siginfo_t info;
      int sig = sigtimedwait(&set, &info, &tick);
      if (sig <= 0 || stop_.load()) continue;
      if (sig == SIGUSR1) {
        if (on_diagnostics_) on_diagnostics_();
        continue;
      }
      int expected = 0;
      if (received_.compare_exchange_strong(expected, sig)) {
        on_first_(sig);
      } else {
        static const char kMsg[] = "\nfastsync: second signal, exiting now\n";
        ssize_t ignored = ::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
        (void)ignored;
        _exit(128 + sig);
      }
    }
  });
}

SignalWatcher::~SignalWatcher() {
  stop_.store(true);
  // Waking it, rather than waiting out a tick, is what lets a short run
  // (a rerun finding everything present) exit as soon as it is done.
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

}  // namespace fastsync::cli
