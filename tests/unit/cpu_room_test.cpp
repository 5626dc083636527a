#include "registry/transfer/cpu_room.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace fastsync {
namespace {

// Busy on every core for the whole window: whether the machine's busy share
// or this process's own time tells it, the window had no room. (The other way
// round depends on what else the machine runs, so it is left to the
// shared-link test, which runs alone.)
TEST(CpuRoom, AWindowThisProcessKeptTheCpusBusyHadNoRoom) {
  CpuRoom room;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(400);
  std::vector<std::thread> spinners;
  for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i) {
    spinners.emplace_back([until] {
      volatile std::uint64_t spins = 0;
      while (std::chrono::steady_clock::now() < until) spins = spins + 1;
    });
  }
  for (auto& t : spinners) t.join();
  EXPECT_FALSE(room.window_had_room());
}

}  // namespace
}  // namespace fastsync
