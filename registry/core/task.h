// Minimal C++20 coroutine toolkit: a lazy Task<T>, a way to start one detached,
// a once-set value many coroutines can wait on, and a bridge for blocking callers.
//
// Why coroutines: a registry operation is a chain of requests (token, HEAD,
// redirect, retry after a delay). Written as a coroutine it reads top to bottom,
// yet no thread waits: each co_await on the network parks the frame and the HTTP
// engine resumes it when the response arrives.
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace fastsync {

template <typename T>
class Task;

namespace detail {

struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    // Symmetric transfer to whoever awaited us keeps the stack flat when
    // many tasks complete synchronously (the fake registry in unit tests).
    auto next = h.promise().continuation;
    return next ? next : std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

struct PromiseBase {
  std::coroutine_handle<> continuation;
  std::exception_ptr error;
  std::suspend_always initial_suspend() noexcept { return {}; }
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

}  // namespace detail

// A lazily started coroutine producing a T. Await it exactly once.
template <typename T>
class [[nodiscard]] Task {
 public:
  struct promise_type : detail::PromiseBase {
    std::optional<T> value;
    Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    template <typename U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
  };

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    handle_.promise().continuation = awaiting;
    return handle_;
  }
  T await_resume() {
    auto& p = handle_.promise();
    if (p.error) std::rethrow_exception(p.error);
    return std::move(*p.value);
  }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

template <>
class [[nodiscard]] Task<void> {
 public:
  struct promise_type : detail::PromiseBase {
    Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    void return_void() {}
  };

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    handle_.promise().continuation = awaiting;
    return handle_;
  }
  void await_resume() {
    if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
  }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

// Eagerly started, self-destroying frame used to run a Task to completion
// without anyone awaiting it.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

template <typename T, typename OnValue, typename OnError>
Detached run_detached(Task<T> task, OnValue on_value, OnError on_error) {
  std::exception_ptr failure;
  if constexpr (std::is_void_v<T>) {
    try {
      co_await std::move(task);
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      on_error(failure);
    } else {
      on_value();
    }
  } else {
    std::optional<T> value;
    try {
      value.emplace(co_await std::move(task));
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      on_error(failure);
    } else {
      on_value(std::move(*value));
    }
  }
}

}  // namespace detail

// Starts `task` now on the calling thread; `on_value` (or `on_error` if the
// task threw) runs on whichever thread finishes it.
template <typename T, typename OnValue, typename OnError>
void spawn(Task<T> task, OnValue on_value, OnError on_error) {
  detail::run_detached(std::move(task), std::move(on_value), std::move(on_error));
}

// Blocks the calling thread until `task` completes. Never call it on the HTTP
// engine's thread or from inside a coroutine.
template <typename T>
T sync_wait(Task<T> task) {
  std::promise<T> promise;
  auto future = promise.get_future();
  if constexpr (std::is_void_v<T>) {
    spawn(
        std::move(task), [&promise] { promise.set_value(); },
        [&promise](std::exception_ptr e) { promise.set_exception(e); });
  } else {
    spawn(
        std::move(task), [&promise](T v) { promise.set_value(std::move(v)); },
        [&promise](std::exception_ptr e) { promise.set_exception(e); });
  }
  return future.get();
}

// A value set once, awaited by any number of coroutines. Waiters that arrive
// after it is set continue without suspending. Used to fetch a token once for
// all concurrent callers, and to join two halves of a streamed copy.
template <typename T>
class AsyncValue {
 public:
  // Returns false if a value was already set (the new one is dropped).
  bool set(T value) {
    std::vector<std::coroutine_handle<>> ready;
    {
      std::lock_guard lock(mutex_);
      if (value_) return false;
      value_.emplace(std::move(value));
      ready.swap(waiters_);
    }
    for (auto h : ready) h.resume();
    return true;
  }

  bool has_value() const {
    std::lock_guard lock(mutex_);
    return value_.has_value();
  }

  // A copy of the value if it is set.
  std::optional<T> try_get() const {
    std::lock_guard lock(mutex_);
    return value_;
  }

  auto wait() {
    struct Awaiter {
      AsyncValue& self;
      bool await_ready() {
        std::lock_guard lock(self.mutex_);
        return self.value_.has_value();
      }
      bool await_suspend(std::coroutine_handle<> h) {
        std::lock_guard lock(self.mutex_);
        if (self.value_) return false;
        self.waiters_.push_back(h);
        return true;
      }
      T await_resume() {
        std::lock_guard lock(self.mutex_);
        return *self.value_;
      }
    };
    return Awaiter{*this};
  }

 private:
  mutable std::mutex mutex_;
  std::optional<T> value_;
  std::vector<std::coroutine_handle<>> waiters_;
};

// Runs every task at once and resumes, once the last has finished, with
// their results in the order given. A task that threw makes when_all throw
// the first such exception, after all have finished.
template <typename T>
Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
  struct Join {
    std::mutex mutex;
    std::vector<std::optional<T>> results;
    std::exception_ptr error;
    std::size_t left = 0;
    AsyncValue<bool> done;
  };
  auto join = std::make_shared<Join>();
  join->results.resize(tasks.size());
  join->left = tasks.size();
  if (tasks.empty()) co_return std::vector<T>{};
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto finish_one = [join](auto record) {
      bool last = false;
      {
        std::lock_guard lock(join->mutex);
        record(*join);
        last = --join->left == 0;
      }
      if (last) join->done.set(true);
    };
    spawn(
        std::move(tasks[i]), [finish_one, i](T value) { finish_one([&](Join& j) { j.results[i].emplace(std::move(value)); }); },
        [finish_one](std::exception_ptr e) {
          finish_one([&](Join& j) {
            if (!j.error) j.error = e;
          });
        });
  }
  co_await join->done.wait();
  if (join->error) std::rethrow_exception(join->error);
  std::vector<T> out;
  out.reserve(join->results.size());
  for (auto& r : join->results) out.push_back(std::move(*r));
  co_return out;
}

// Runs blocking work (libarchive pulling a layer, say) on a short-lived thread
// of its own, so neither the HTTP engine nor a TBB worker waits on it. The
// awaiting coroutine resumes on that thread once the work is done.
template <typename F>
auto run_blocking(F work) -> Task<decltype(work())> {
  using R = decltype(work());
  struct Awaiter {
    F& work;
    std::optional<R> result;
    std::exception_ptr error;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      std::thread([this, h] {
        try {
          result.emplace(work());
        } catch (...) {
          error = std::current_exception();
        }
        h.resume();
      }).detach();
    }
    R await_resume() {
      if (error) std::rethrow_exception(error);
      return std::move(*result);
    }
  };
  co_return co_await Awaiter{work, std::nullopt, nullptr};
}

}  // namespace fastsync
