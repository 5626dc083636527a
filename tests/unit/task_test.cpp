#include "registry/core/task.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace fastsync {
namespace {

Task<int> add(int a, int b) { co_return a + b; }
Task<long long> chain(int depth) {
  long long total = 0;
  for (int i = 0; i < depth; ++i) total += co_await add(i, 1);
  co_return total;
}
Task<int> thrower() {
  throw std::runtime_error("boom");
  co_return 0;
}

TEST(Task, RunsSynchronousChainsWithoutGrowingTheStack) {
#if defined(FASTSYNC_ASAN) || defined(FASTSYNC_TSAN_BUILD)
  // Sanitizer builds do not turn symmetric transfer into a tail call, so the
  // stack does grow there: only correctness is checked.
  constexpr int kDepth = 2000;
#else
  constexpr int kDepth = 100000;  // would overflow the stack without symmetric transfer
#endif
  EXPECT_EQ(sync_wait(chain(kDepth)), kDepth + static_cast<long long>(kDepth - 1) * kDepth / 2);
}

TEST(Task, PropagatesExceptionsToTheAwaiter) { EXPECT_THROW(sync_wait(thrower()), std::runtime_error); }

TEST(AsyncValue, WakesEveryWaiterOnceAndLateComersDoNotWait) {
  AsyncValue<int> v;
  std::atomic<int> sum{0};
  auto waiter = [&]() -> Task<void> { sum += co_await v.wait(); };
  for (int i = 0; i < 5; ++i) spawn(waiter(), [] {}, [](std::exception_ptr) { FAIL(); });
  EXPECT_EQ(sum.load(), 0);
  std::thread setter([&] { EXPECT_TRUE(v.set(7)); });
  setter.join();
  EXPECT_EQ(sum.load(), 35);
  EXPECT_FALSE(v.set(9));
  sync_wait(waiter());
  EXPECT_EQ(sum.load(), 42);
}

// Finishing out of order (two on other threads, one at once) still gives
// results in the order given; a throwing task is rethrown after all finished.
TEST(WhenAll, GivesResultsInOrderOnceTheLastFinishes) {
  AsyncValue<int> late;
  auto waits = [&]() -> Task<int> { co_return co_await late.wait(); };
  auto slow = [](int v) -> Task<int> { co_return co_await run_blocking([v] { return v * 10; }); };
  std::vector<Task<int>> tasks;
  tasks.push_back(waits());
  tasks.push_back(slow(2));
  tasks.push_back(add(1, 2));
  std::thread setter([&] { late.set(1); });
  auto results = sync_wait(when_all(std::move(tasks)));
  setter.join();
  EXPECT_EQ(results, (std::vector<int>{1, 20, 3}));
  EXPECT_TRUE(sync_wait(when_all(std::vector<Task<int>>{})).empty());

  std::atomic<int> finished{0};
  auto counted = [&](int v) -> Task<int> {
    ++finished;
    co_return v;
  };
  std::vector<Task<int>> failing;
  failing.push_back(counted(1));
  failing.push_back(thrower());
  failing.push_back(counted(2));
  EXPECT_THROW(sync_wait(when_all(std::move(failing))), std::runtime_error);
  EXPECT_EQ(finished.load(), 2);
}

TEST(RunBlocking, ResumesAfterWorkOnAnotherThread) {
  auto caller = std::this_thread::get_id();
  auto work = [&]() -> Task<bool> {
    auto other = co_await run_blocking([&] { return std::this_thread::get_id() != caller; });
    co_return other;
  };
  EXPECT_TRUE(sync_wait(work()));
}

}  // namespace
}  // namespace fastsync
