#include "cli/signals.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
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

CancelWatchdog::CancelWatchdog(std::chrono::seconds grace, std::function<std::string()> describe,
                               std::function<int()> exit_code)
    : grace_(grace), describe_(std::move(describe)), exit_code_(std::move(exit_code)) {}

void CancelWatchdog::arm() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || done_) return;
  thread_ = std::thread([this] {
    std::unique_lock waiting(mutex_);
    if (stopped_.wait_for(waiting, grace_, [this] { return done_; })) return;
    waiting.unlock();
    std::string report = describe_();
    std::fprintf(stderr,
                 "fastsync: error: the run did not stop within %lld s of being cancelled (a wait nothing woke: "
                 "please report it); exiting anyway. Still in flight:\n%s",
                 static_cast<long long>(grace_.count()), report.c_str());
    if (!report.empty() && report.back() != '\n') std::fputc('\n', stderr);
    std::fflush(stderr);
    std::fflush(stdout);
    _exit(exit_code_());
  });
}

CancelWatchdog::~CancelWatchdog() {
  std::thread waiting;
  {
    std::lock_guard lock(mutex_);
    done_ = true;
    waiting = std::move(thread_);
  }
  stopped_.notify_all();
  if (waiting.joinable()) waiting.join();
}

}  // namespace fastsync::cli
