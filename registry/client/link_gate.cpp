#include "registry/client/link_gate.h"

namespace fastsync {

LinkGate::Pass::~Pass() {
  if (gate_) gate_->leave(put_);
}

Task<LinkGate::Pass> LinkGate::mount() {
  for (;;) {
    Signal wait;
    {
      std::lock_guard lock(mutex_);
      if (puts_ == 0) {
        ++mounts_;
        break;
      }
      wait = puts_done_;
    }
    co_await wait->wait();  // Liveness: the PUTs in flight end (stall limit, cancellation)
  }
  co_return Pass(shared_from_this(), false);
}

Task<LinkGate::Pass> LinkGate::put() {
  Signal wait;
  {
    std::lock_guard lock(mutex_);
    ++puts_;
    if (mounts_ > 0) wait = mounts_done_;
  }
  // The PUT counts from here: no new mount starts, so the wait ends.
  Pass pass(shared_from_this(), true);
  if (wait) co_await wait->wait();  // Liveness: the mounts in flight end (stall limit, cancellation)
  co_return pass;
}

void LinkGate::leave(bool put) {
  Signal fire;
  {
    std::lock_guard lock(mutex_);
    if (put) {
      if (--puts_ == 0) fire = std::exchange(puts_done_, std::make_shared<AsyncValue<bool>>());
    } else if (--mounts_ == 0 && puts_ > 0) {
      fire = std::exchange(mounts_done_, std::make_shared<AsyncValue<bool>>());
    }
  }
  // Outside the lock: the waiters resume right here.
  if (fire) fire->set(true);
}

}  // namespace fastsync
