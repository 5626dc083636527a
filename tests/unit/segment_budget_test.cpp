// What Range segments may take from a run: extra connections only from slots
// of the blob pool (freed ones first to the blobs asking), and memory only up
// to the budget.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "registry/transfer/segmented_download.h"

namespace fastsync {
namespace {

// A copy that takes a slot (waiting for one if need be) and holds it until released.
struct Copy {
  bool in = false;
  AsyncValue<bool> release;
};

Task<void> hold_copy(SegmentBudget& budget, Copy& c) {
  co_await budget.copy_slot();
  c.in = true;
  co_await c.release.wait();
  budget.copy_finished();
}

void start(Task<void> t) {
  spawn(
      std::move(t), [] {}, [](std::exception_ptr) { FAIL() << "a copy threw"; });
}

TEST(SegmentBudget, ExtraConnectionsOnlyFromFreeSlotsOfThePool) {
  SegmentBudget budget(4, 16u << 20);
  Copy a, b, c;
  start(hold_copy(budget, a));
  start(hold_copy(budget, b));
  EXPECT_TRUE(budget.try_add_lane());  // 2 of 4 busy: a lane makes 3
  EXPECT_TRUE(budget.try_add_lane());  // and 4
  EXPECT_FALSE(budget.try_add_lane()) << "the pool is full: no more lanes";
  start(hold_copy(budget, c));
  EXPECT_FALSE(c.in) << "a copy went past a full pool";
  budget.remove_lane();
  EXPECT_TRUE(c.in) << "the slot a lane gave back went to no one";
  EXPECT_FALSE(budget.try_add_lane());
  a.release.set(true);
  EXPECT_TRUE(budget.try_add_lane());
  b.release.set(true);
  c.release.set(true);
}

// The run's largest blobs start first and are its long pole: a slot that
// frees goes to a blob asking for lanes before a copy still waiting.
TEST(SegmentBudget, AFreedSlotGoesToABlobAskingForLanesBeforeAWaitingCopy) {
  SegmentBudget budget(2, 16u << 20);
  Copy a, b, waiting;
  start(hold_copy(budget, a));
  start(hold_copy(budget, b));
  start(hold_copy(budget, waiting));
  ASSERT_FALSE(waiting.in);
  int lanes = 0;
  bool declined = false;
  budget.ask_for_lane(budget.join(8u << 20), 0, [&] {
    declined = true;
    return false;  // no longer needed: handed on
  });
  budget.ask_for_lane(budget.join(8u << 20), 0, [&] {
    ++lanes;
    return true;
  });
  a.release.set(true);
  EXPECT_TRUE(declined);
  EXPECT_EQ(lanes, 1) << "the slot went past the blob asking for a lane";
  EXPECT_FALSE(waiting.in);
  EXPECT_FALSE(budget.try_add_lane());
  budget.remove_lane();  // the lane ends: no one asks, so the copy gets it
  EXPECT_TRUE(waiting.in);
  b.release.set(true);
  waiting.release.set(true);
  EXPECT_TRUE(budget.try_add_lane());
  EXPECT_TRUE(budget.try_add_lane());
  EXPECT_FALSE(budget.try_add_lane());
}

// A pool of one slot, held by a copy until the test releases it, and blobs
// asking for lanes; each offer is recorded by the asker's name.
struct AskingBlobs {
  SegmentBudget budget;
  Copy holder;
  std::vector<std::string> offered;
  explicit AskingBlobs(std::uint64_t memory) : budget(1, memory) { start(hold_copy(budget, holder)); }
  std::uint64_t blob(std::uint64_t size, double seconds_left) {
    auto member = budget.join(size);
    budget.report_finish(member, seconds_left);
    return member;
  }
  void ask(std::uint64_t member, std::uint64_t segment, std::string name, std::function<bool()> take) {
    budget.ask_for_lane(member, segment, [this, name, take] {
      offered.push_back(name);
      return take();
    });
  }
};

// Of the blobs asking for lanes, the run waits longest for the one that
// reported the latest finish: it is offered a freed slot first, whatever the
// order they asked in.
TEST(SegmentBudget, AFreedSlotGoesToTheAskingBlobThatFinishesLast) {
  AskingBlobs a(16u << 20);
  auto soon = a.blob(20u << 20, 3);
  auto late = a.blob(20u << 20, 30);
  auto gone = a.blob(90u << 20, 300);
  a.ask(soon, 1u << 20, "soon", [] { return true; });
  a.ask(gone, 1u << 20, "gone", [] { return false; });
  a.ask(late, 1u << 20, "late", [] { return true; });
  a.budget.leave(gone);  // its copy ended: it reads as finishing now
  a.holder.release.set(true);
  EXPECT_EQ(a.offered, (std::vector<std::string>{"late"}));
  a.budget.remove_lane();
  EXPECT_EQ(a.offered, (std::vector<std::string>{"late", "soon"}));
  a.budget.remove_lane();
  EXPECT_EQ(a.offered, (std::vector<std::string>{"late", "soon", "gone"})) << "a declined offer is handed on";
  EXPECT_TRUE(a.budget.try_add_lane());
}

// A lane needs memory for its first segment. The blob finishing last, while
// segments ahead of other frontiers hold that memory, is passed over rather
// than offered a slot it must hand on (and stop asking): the slot goes on,
// and the blob gets the first one that frees once its segment fits.
TEST(SegmentBudget, AnAskerWhoseSegmentDoesNotFitKeepsAskingUntilItDoes) {
  AskingBlobs a(8u << 20);
  auto big = a.blob(90u << 20, 30);
  auto small = a.blob(20u << 20, 3);
  ASSERT_TRUE(a.budget.try_reserve(small, 6u << 20));  // its segments ahead of its frontier
  // As a lane's first segment does.
  a.ask(big, 4u << 20, "big", [&a, big] { return a.budget.try_reserve(big, 4u << 20); });
  a.ask(small, 1u << 20, "small", [&a, small] { return a.budget.try_reserve(small, 1u << 20); });
  a.holder.release.set(true);
  EXPECT_EQ(a.offered, (std::vector<std::string>{"small"})) << "offered a slot its segment has no memory for";
  a.budget.release(small, 6u << 20);  // small's frontier passed its segments
  a.budget.remove_lane();
  EXPECT_EQ(a.offered, (std::vector<std::string>{"small", "big"})) << "the blob due last stopped asking";
  EXPECT_FALSE(a.budget.try_add_lane());
}

TEST(SegmentBudget, MemoryIsReservedUpToTheBudgetAndGivenBack) {
  SegmentBudget budget(64, 16u << 20);
  auto blob = budget.join(100u << 20);
  EXPECT_TRUE(budget.try_reserve(blob, 8u << 20));
  EXPECT_TRUE(budget.try_reserve(blob, 8u << 20));
  EXPECT_FALSE(budget.try_reserve(blob, 1));
  budget.release(blob, 2u << 20);
  EXPECT_FALSE(budget.try_reserve(blob, 3u << 20));
  EXPECT_TRUE(budget.try_reserve(blob, 2u << 20));
}

// Lanes that pay double the memory, up to the ceiling and no further; with
// no ceiling above it (a size the user gave) it never grows.
TEST(SegmentBudget, MemoryGrowsToItsCeilingWhenLanesPayAndNoFurther) {
  SegmentBudget budget(64, 4u << 20, nullptr, 12u << 20);
  auto blob = budget.join(100u << 20);
  EXPECT_TRUE(budget.try_reserve(blob, 4u << 20));
  EXPECT_FALSE(budget.try_reserve(blob, 1));
  budget.grow_memory();
  EXPECT_EQ(budget.memory_total(), 8u << 20);
  EXPECT_TRUE(budget.try_reserve(blob, 4u << 20));
  EXPECT_FALSE(budget.try_reserve(blob, 1));
  budget.grow_memory();
  budget.grow_memory();
  EXPECT_EQ(budget.memory_total(), 12u << 20);
  EXPECT_TRUE(budget.try_reserve(blob, 4u << 20));
  EXPECT_FALSE(budget.try_reserve(blob, 1));

  SegmentBudget fixed(64, 4u << 20);
  fixed.grow_memory();
  EXPECT_EQ(fixed.memory_total(), 4u << 20);
}

// The run waits for its largest blob at the end: what the larger blobs could
// still use is theirs; a smaller blob gets the rest, and all once they are done.
TEST(SegmentBudget, MemoryGoesToTheLargerBlobsFirst) {
  SegmentBudget budget(64, 12u << 20);
  auto large = budget.join(90u << 20);
  auto small = budget.join(20u << 20);
  budget.set_appetite(large, 8u << 20);
  budget.set_appetite(small, 8u << 20);
  EXPECT_TRUE(budget.try_reserve(small, 2u << 20));
  EXPECT_TRUE(budget.try_reserve(small, 2u << 20));
  EXPECT_FALSE(budget.try_reserve(small, 2u << 20)) << "the smaller blob took what the larger could use";
  EXPECT_TRUE(budget.try_reserve(large, 4u << 20));
  EXPECT_TRUE(budget.try_reserve(large, 4u << 20));
  EXPECT_FALSE(budget.try_reserve(large, 2u << 20)) << "nothing is left";
  budget.release(large, 4u << 20);
  EXPECT_FALSE(budget.try_reserve(small, 2u << 20)) << "the larger blob still wants it";
  budget.set_appetite(large, 4u << 20);  // its last segments are under way: it needs no more
  EXPECT_TRUE(budget.try_reserve(small, 2u << 20));
  budget.leave(large);
  EXPECT_TRUE(budget.try_reserve(small, 2u << 20));
  EXPECT_FALSE(budget.try_reserve(small, 2u << 20));
}

}  // namespace
}  // namespace fastsync
