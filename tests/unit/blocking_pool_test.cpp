#include "registry/core/blocking_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace fastsync {
namespace {

// More jobs than threads: the first `kThreads` run at once (each waits until
// all of them are running, so a pool that ran fewer would never get past
// them), no more than that ever do, and every job runs.
TEST(BlockingPool, RunsAsManyJobsAtOnceAsItHasThreadsAndNoMore) {
  constexpr int kThreads = 3;
  constexpr int kJobs = 12;
  std::mutex mutex;
  std::condition_variable changed;
  int running = 0;
  int most = 0;
  int done = 0;
  bool all_were_running = false;
  {
    BlockingPool pool(kThreads);
    for (int i = 0; i < kJobs; ++i) {
      pool.post([&] {
        std::unique_lock lock(mutex);
        most = std::max(most, ++running);
        if (running == kThreads) all_were_running = true;
        changed.notify_all();
        changed.wait(lock, [&] { return all_were_running; });
        --running;
        ++done;
        changed.notify_all();
      });
    }
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return done == kJobs; });
    EXPECT_EQ(pool.threads_started(), static_cast<std::size_t>(kThreads));
  }
  EXPECT_EQ(most, kThreads);
}

TEST(BlockingPool, RunGivesTheResultOrTheExceptionOnAPoolThread) {
  BlockingPool pool(2);
  auto caller = std::this_thread::get_id();
  auto work = [&]() -> Task<bool> {
    bool elsewhere = co_await pool.run([&] { return std::this_thread::get_id() != caller; });
    co_return elsewhere&& std::this_thread::get_id() != caller;  // resumed there too
  };
  EXPECT_TRUE(sync_wait(work()));
  auto failing = [&]() -> Task<int> {
    co_return co_await pool.run([]() -> int { throw std::runtime_error("disk on fire"); });
  };
  EXPECT_THROW(sync_wait(failing()), std::runtime_error);
}

// Nothing posted is lost when the pool goes: a coroutine waiting on a queued
// job would never resume.
TEST(BlockingPool, JobsQueuedWhenThePoolGoesStillRun) {
  std::atomic<int> ran{0};
  std::mutex mutex;
  std::condition_variable opened;
  bool open = false;
  {
    BlockingPool pool(1);
    pool.post([&] {
      std::unique_lock lock(mutex);
      opened.wait(lock, [&] { return open; });
      ++ran;
    });
    for (int i = 0; i < 5; ++i) pool.post([&] { ++ran; });
    std::lock_guard lock(mutex);
    open = true;
    opened.notify_all();
  }  // joins: the five queued behind the first ran before this returns
  EXPECT_EQ(ran.load(), 6);
}

// The last owner may let the pool go from one of the pool's own jobs (a
// coroutine resumed there that ends the run): no deadlock, no crash.
TEST(BlockingPool, MayBeDestroyedFromOneOfItsJobs) {
  auto pool = std::make_shared<BlockingPool>(2);
  std::weak_ptr<BlockingPool> weak = pool;
  std::mutex mutex;
  std::condition_variable changed;
  bool let_go = false;
  bool done = false;
  pool->post([&, owner = pool]() mutable {
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return let_go; });
    }
    owner.reset();  // the last owner: the pool goes on its own thread
    std::lock_guard lock(mutex);
    done = true;
    changed.notify_all();
  });
  pool.reset();
  std::unique_lock lock(mutex);
  let_go = true;
  changed.notify_all();
  changed.wait(lock, [&] { return done; });
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace fastsync
