#include "registry/core/blocking_pool.h"

#include <algorithm>

namespace fastsync {

BlockingPool::BlockingPool(std::size_t threads) : limit_(std::max<std::size_t>(1, threads)) {}

BlockingPool::~BlockingPool() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    threads.swap(threads_);
  }
  state_->work.notify_all();
  for (auto& t : threads) {
    // A job that lets the pool go (its coroutine dropped the last owner)
    // cannot wait for its own thread: that one ends on its own, holding the
    // state it shares.
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }
}

void BlockingPool::post(std::function<void()> job) {
  {
    std::lock_guard lock(state_->mutex);
    state_->queue.push_back(std::move(job));
    // Idle threads already woken for earlier jobs count against the queue.
    if (state_->queue.size() > state_->idle && threads_.size() < limit_) {
      threads_.emplace_back([state = state_] { serve(state); });
      return;
    }
  }
  state_->work.notify_one();
}

std::size_t BlockingPool::threads_started() const {
  std::lock_guard lock(state_->mutex);
  return threads_.size();
}

void BlockingPool::serve(const std::shared_ptr<State>& state) {
  std::unique_lock lock(state->mutex);
  while (true) {
    ++state->idle;
    // Liveness: woken by post() or by the destructor.
    state->work.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
    --state->idle;
    if (state->queue.empty()) return;  // stopping, and every job ran
    auto job = std::move(state->queue.front());
    state->queue.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // what it held goes before the lock is taken again
    lock.lock();
  }
}

}  // namespace fastsync
