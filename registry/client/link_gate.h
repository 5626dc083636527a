// Keeps blob mounts that may land on a blob already in a repository apart
// from manifest PUTs that may reference it.
//
// Why: distribution answers a mount of a blob the repository already links by
// writing the link file again, truncating it first. A manifest PUT that reads
// that link meanwhile fails with DIGEST_INVALID and MANIFEST_BLOB_UNKNOWN.
// Only the mount-as-probe (its answer unknown) can hit a linked blob, and only
// a manifest this run did not place (an image found present, being tagged)
// can reference a blob still being probed. Per repository: any number of
// mounts or any number of such PUTs, never both; PUTs go first (few, short).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>

#include "registry/core/task.h"

namespace fastsync {

class LinkGate : public std::enable_shared_from_this<LinkGate> {
 public:
  // Held while a mount or PUT is in flight; lets the other side in when the last goes.
  class Pass {
   public:
    Pass() = default;
    Pass(Pass&& other) noexcept : gate_(std::move(other.gate_)), put_(other.put_) {}
    Pass& operator=(Pass&&) = delete;
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    ~Pass();

   private:
    friend class LinkGate;
    Pass(std::shared_ptr<LinkGate> gate, bool put) : gate_(std::move(gate)), put_(put) {}
    std::shared_ptr<LinkGate> gate_;
    bool put_ = false;
  };

  // Waits while a PUT is waiting or in flight.
  Task<Pass> mount();
  // Waits for the mounts in flight; none starts until the PUT is done.
  Task<Pass> put();

 private:
  using Signal = std::shared_ptr<AsyncValue<bool>>;
  void leave(bool put);

  mutable std::mutex mutex_;
  std::size_t mounts_ = 0;
  std::size_t puts_ = 0;  // waiting or in flight
  Signal mounts_done_ = std::make_shared<AsyncValue<bool>>();
  Signal puts_done_ = std::make_shared<AsyncValue<bool>>();
};

}  // namespace fastsync
