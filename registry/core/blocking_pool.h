// A few threads for blocking work — a blob read from a file, a blob written
// into an archive volume — shared by the copies of a run, instead of a thread
// started (and torn down) for each blob. Threads start as work arrives, up to
// the limit, and stay until the pool goes.
//
// Liveness: work waits in the queue only while every thread runs a job, and
// each job is a blob read or written whose other end the stall limit and
// cancellation bound; the owner sizes the pool to the copies it lets run at
// once, so a job rarely waits at all.
#pragma once

#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "registry/core/task.h"

namespace fastsync {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads);
  ~BlockingPool();  // joins the threads once their jobs are done
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `job` on one of the pool's threads.
  void post(std::function<void()> job);

  // Runs `work` on one of the pool's threads; the awaiting coroutine resumes
  // there once it is done (as with run_blocking).
  template <typename F>
  auto run(F work) -> Task<decltype(work())> {
    using R = decltype(work());
    struct Awaiter {
      BlockingPool& pool;
      F& work;
      std::optional<R> result;
      std::exception_ptr error;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) {
        pool.post([this, h] {
          try {
            result.emplace(work());
          } catch (...) {
            error = std::current_exception();
          }
          h.resume();
        });
      }
      R await_resume() {
        if (error) std::rethrow_exception(error);
        return std::move(*result);
      }
    };
    co_return co_await Awaiter{*this, work, std::nullopt, nullptr};
  }

  std::size_t threads_started() const;

 private:
  // Shared with the threads: one that outlives the pool (see the destructor) still has it.
  struct State {
    std::mutex mutex;
    std::condition_variable work;
    std::deque<std::function<void()>> queue;
    std::size_t idle = 0;
    bool stopping = false;
  };
  static void serve(const std::shared_ptr<State>& state);

  const std::size_t limit_;
  const std::shared_ptr<State> state_ = std::make_shared<State>();
  std::vector<std::thread> threads_;  // guarded by state_->mutex
};

}  // namespace fastsync
