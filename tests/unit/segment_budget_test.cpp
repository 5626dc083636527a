// What Range segments may take from a run: extra connections only from free
// slots of the blob pool, and memory only up to the budget.
#include <gtest/gtest.h>

#include "registry/segmented_download.h"

namespace fastsync {
namespace {

TEST(SegmentBudget, ExtraConnectionsOnlyFromFreeSlotsOfThePool) {
  SegmentBudget budget(4, 16u << 20);
  budget.copy_started();
  budget.copy_started();
  EXPECT_TRUE(budget.try_add_lane());  // 2 of 4 busy: a lane makes 3
  EXPECT_TRUE(budget.try_add_lane());  // and 4
  EXPECT_FALSE(budget.try_add_lane()) << "the pool is full: no more lanes";
  // A copy is never refused its slot: it counts past a full pool, and lanes
  // wait until copies and lanes together fit again.
  budget.copy_started();
  budget.remove_lane();
  EXPECT_FALSE(budget.try_add_lane());
  budget.copy_finished();
  EXPECT_TRUE(budget.try_add_lane());
}

TEST(SegmentBudget, MemoryIsReservedUpToTheBudgetAndGivenBack) {
  SegmentBudget budget(64, 16u << 20);
  EXPECT_TRUE(budget.try_reserve(8u << 20));
  EXPECT_TRUE(budget.try_reserve(8u << 20));
  EXPECT_FALSE(budget.try_reserve(1));
  budget.release(2u << 20);
  EXPECT_FALSE(budget.try_reserve(3u << 20));
  EXPECT_TRUE(budget.try_reserve(2u << 20));
}

}  // namespace
}  // namespace fastsync
