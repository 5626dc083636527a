#include "registry/client/link_gate.h"

#include <gtest/gtest.h>

namespace fastsync {
namespace {

// One holder: takes a pass of one kind, holds it until `release` is set.
struct Holder {
  bool in = false;
  bool done = false;
  AsyncValue<bool> release;
};

Task<void> hold_mount(LinkGate& gate, Holder& h) {
  auto pass = co_await gate.mount();
  h.in = true;
  co_await h.release.wait();
  h.done = true;
}

Task<void> hold_put(LinkGate& gate, Holder& h) {
  auto pass = co_await gate.put();
  h.in = true;
  co_await h.release.wait();
  h.done = true;
}

void start(Task<void> t) {
  spawn(
      std::move(t), [] {}, [](std::exception_ptr) { FAIL() << "a holder threw"; });
}

TEST(LinkGate, APutWaitsForTheMountsInFlightAndNoMountStartsUntilItIsDone) {
  auto gate = std::make_shared<LinkGate>();
  Holder m1, m2, put, m3;
  start(hold_mount(*gate, m1));
  start(hold_mount(*gate, m2));
  ASSERT_TRUE(m1.in && m2.in) << "mounts alone never wait for each other";

  start(hold_put(*gate, put));
  EXPECT_FALSE(put.in) << "a PUT went out with two mounts in flight";
  start(hold_mount(*gate, m3));
  EXPECT_FALSE(m3.in) << "a mount started while a PUT was waiting";

  m1.release.set(true);
  EXPECT_FALSE(put.in) << "a PUT went out with a mount in flight";
  m2.release.set(true);
  EXPECT_TRUE(put.in);
  EXPECT_FALSE(m3.in) << "a mount started while a PUT was in flight";
  EXPECT_TRUE(m1.done && m2.done);

  put.release.set(true);
  EXPECT_TRUE(m3.in);
  EXPECT_FALSE(m3.done);
  m3.release.set(true);
  EXPECT_TRUE(m1.done && m2.done && put.done && m3.done);
  // With every pass given back, the gate is open to either kind at once.
  Holder after_put, after_mount;
  start(hold_put(*gate, after_put));
  EXPECT_TRUE(after_put.in);
  after_put.release.set(true);
  start(hold_mount(*gate, after_mount));
  EXPECT_TRUE(after_mount.in);
  after_mount.release.set(true);
}

TEST(LinkGate, PutsDoNotWaitForEachOther) {
  auto gate = std::make_shared<LinkGate>();
  Holder p1, p2, m;
  start(hold_put(*gate, p1));
  start(hold_put(*gate, p2));
  EXPECT_TRUE(p1.in && p2.in);
  start(hold_mount(*gate, m));
  EXPECT_FALSE(m.in);
  p1.release.set(true);
  EXPECT_FALSE(m.in) << "a mount started with a PUT still in flight";
  p2.release.set(true);
  EXPECT_TRUE(m.in);
  m.release.set(true);
  EXPECT_TRUE(m.done);
}

}  // namespace
}  // namespace fastsync
