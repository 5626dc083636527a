// What Range segments may take from a run: extra connections only while the
// blob pool is at most half busy, and memory only up to the budget.
#include <gtest/gtest.h>

#include "registry/segmented_download.h"

namespace fastsync {
namespace {

TEST(SegmentBudget, ExtraConnectionsOnlyWhileUnderHalfThePoolIsBusy) {
  SegmentBudget budget(8, 16u << 20);
  for (int i = 0; i < 3; ++i) budget.copy_started();
  EXPECT_TRUE(budget.try_add_lane());  // 3 of 8 busy: a lane makes 4
  EXPECT_FALSE(budget.try_add_lane()) << "half the pool is busy: no more lanes";
  budget.remove_lane();
  budget.copy_finished();
  EXPECT_TRUE(budget.try_add_lane());
  EXPECT_TRUE(budget.try_add_lane());
  EXPECT_FALSE(budget.try_add_lane());
  // Copies keep their slots beyond half: a full pool takes every copy, never a lane.
  for (int i = 0; i < 4; ++i) budget.copy_started();
  EXPECT_FALSE(budget.try_add_lane());
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
