#include "registry/distribution/activity.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace fastsync {
namespace {

using Clock = std::chrono::steady_clock;

std::string seconds(Clock::duration d) { return fmt::format("{:.1f} s", std::chrono::duration<double>(d).count()); }

std::string bytes(std::uint64_t n) {
  if (n >= (1u << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1u << 20));
  if (n >= 1024) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  return fmt::format("{} B", n);
}

std::string describe_transfer(const TransferInfo& t) {
  std::string text = fmt::format("{} {} — {}", t.method, t.url, to_string(t.state));
  if (t.state != TransferInfo::State::Queued) {
    text +=
        fmt::format(", {} sent, {} received, idle {}", bytes(t.bytes_sent), bytes(t.bytes_received), seconds(t.idle));
  } else {
    text += fmt::format(" for {}", seconds(t.age));
  }
  return text;
}

}  // namespace

ActivityBoard::Handle::Handle(Handle&& other) noexcept : board_(std::exchange(other.board_, nullptr)), id_(other.id_) {}

ActivityBoard::Handle& ActivityBoard::Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    this->~Handle();
    board_ = std::exchange(other.board_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

ActivityBoard::Handle::~Handle() {
  if (!board_) return;
  std::lock_guard lock(board_->mutex_);
  board_->entries_.erase(id_);
  board_ = nullptr;
}

void ActivityBoard::Handle::set(State state, TransferId transfer, std::string detail) {
  if (!board_) return;
  std::lock_guard lock(board_->mutex_);
  auto it = board_->entries_.find(id_);
  if (it == board_->entries_.end()) return;
  it->second.state = state;
  it->second.transfer = transfer;
  it->second.detail = std::move(detail);
  it->second.state_since = Clock::now();
}

void ActivityBoard::Handle::waiting_for_token() { set(State::WaitingForToken, 0, {}); }
void ActivityBoard::Handle::in_request(TransferId id) { set(State::InRequest, id, {}); }
void ActivityBoard::Handle::working(std::string what) { set(State::Working, 0, std::move(what)); }
void ActivityBoard::Handle::sleeping(std::chrono::milliseconds delay, int retry, int of, const std::string& why) {
  set(State::Sleeping, 0, fmt::format("{} before retry {}/{} ({})", seconds(delay), retry, of, why));
}

ActivityBoard::Handle ActivityBoard::begin(std::string what) {
  std::lock_guard lock(mutex_);
  std::uint64_t id = next_id_++;
  auto now = Clock::now();
  entries_.emplace(id, Entry{std::move(what), State::Starting, 0, {}, now, now});
  return Handle(this, id);
}

std::string ActivityBoard::report(const std::optional<std::vector<TransferInfo>>& transfers) const {
  std::map<TransferId, const TransferInfo*> by_id;
  if (transfers) {
    for (const auto& t : *transfers) by_id.emplace(t.id, &t);
  }
  std::vector<Entry> entries;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, e] : entries_) entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.since < b.since; });
  auto now = Clock::now();
  std::string out = fmt::format("fastsync: {} operation(s) in flight{}\n", entries.size(),
                                transfers ? "" : " (the HTTP engine did not answer within 1 s)");
  std::set<TransferId> claimed;
  for (const auto& e : entries) {
    std::string state;
    switch (e.state) {
      case State::Starting:
        state = "starting";
        break;
      case State::WaitingForToken:
        state = "waiting for a token";
        break;
      case State::Working:
        state = e.detail;
        break;
      case State::Sleeping:
        state = "sleeping " + e.detail;
        break;
      case State::InRequest: {
        auto t = by_id.find(e.transfer);
        state = t == by_id.end() ? "request finishing" : describe_transfer(*t->second);
        claimed.insert(e.transfer);
        break;
      }
    }
    out +=
        fmt::format("  {:>8}  {}: {} (for {})\n", seconds(now - e.since), e.what, state, seconds(now - e.state_since));
  }
  if (transfers) {
    for (const auto& t : *transfers) {
      if (!claimed.count(t.id)) out += fmt::format("  {:>8}  {}\n", seconds(t.age), describe_transfer(t));
    }
  }
  return out;
}

}  // namespace fastsync
