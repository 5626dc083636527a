// What every registry operation in flight is doing right now, for users who
// wonder why a run is quiet: SIGUSR1 prints it (fastsync carries on).
//
// Each operation (one Registry::send, or a whole blob copy between attempts)
// holds a handle on the board and says what it waits for: a token, a request
// (whose transfer state the HTTP engine reports: queued for a connection slot,
// transferring, paused, awaiting the answer), or a retry delay.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/net/http_engine.h"

namespace fastsync {

class ActivityBoard {
 public:
  enum class State { Starting, WaitingForToken, InRequest, Sleeping, Working };

  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& other) noexcept;
    Handle& operator=(Handle&& other) noexcept;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle();

    void waiting_for_token();
    void in_request(TransferId id);
    // Before a retry: how long, which retry, and why (one short line).
    void sleeping(std::chrono::milliseconds delay, int retry, int of, const std::string& why);
    // Anything else, in a few words ("attempt 2: uploading").
    void working(std::string what);

   private:
    friend class ActivityBoard;
    Handle(ActivityBoard* board, std::uint64_t id) : board_(board), id_(id) {}
    void set(State state, TransferId transfer, std::string detail);
    ActivityBoard* board_ = nullptr;
    std::uint64_t id_ = 0;
  };

  // Starts tracking an operation named `what` ("PUT blob sha256:… at host/repo").
  Handle begin(std::string what);

  // One line per operation, oldest first, with its state and age; transfers
  // the engine reports but no operation claims are listed too.
  std::string report(const std::optional<std::vector<TransferInfo>>& transfers) const;

 private:
  struct Entry {
    std::string what;
    State state = State::Starting;
    TransferId transfer = 0;
    std::string detail;
    std::chrono::steady_clock::time_point since;        // operation started
    std::chrono::steady_clock::time_point state_since;  // current state entered
  };
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Entry> entries_;
};

}  // namespace fastsync
