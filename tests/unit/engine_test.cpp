// The HTTP engine's guarantees that need no registry: every transfer either
// moves or ends within its stall limit (paused, or queued behind a host that
// moves nothing), and a request whose credential expired while queued is
// handed back unsent. The "server" is a listening socket that never answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "registry/core/task.h"
#include "registry/net/http_engine.h"

namespace fastsync {
namespace {

// A TCP port that accepts connections (the kernel completes them) but never reads or answers.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0) {
      throw std::runtime_error("cannot listen");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/";
  }
  ~SilentServer() { ::close(fd_); }
  const std::string& url() const { return url_; }

 private:
  int fd_ = -1;
  std::string url_;
};

// An upload body whose other half never delivers a byte.
class NeverReady : public BodySource {
 public:
  std::uint64_t length() const override { return 1000; }
  Chunk read(char*, std::size_t) override { return {Flow::Pause, 0}; }
};

TEST(HttpEngine, AQueuedRequestWhoseCredentialExpiredIsNeverSent) {
  HttpEngine engine;
  Request req;
  req.url = "http://127.0.0.1:1/never";  // nothing listens: sending would fail differently
  req.send_before = std::chrono::steady_clock::now();
  Response resp = sync_wait([&]() -> Task<Response> { co_return co_await engine.perform(req); }());
  EXPECT_EQ(resp.transport, TransportError::CredentialExpired) << resp.transport_message;
  EXPECT_EQ(resp.bytes_sent, 0u);
  EXPECT_EQ(engine.stats().requests, 0u) << "the transfer was started";
}

TEST(HttpEngine, APausedTransferIsEndedByTheStallLimit) {
  SilentServer server;
  HttpEngine engine;
  Request req;
  req.method = "PUT";
  req.url = server.url();
  req.body_source = std::make_shared<NeverReady>();
  req.stall_limit = std::chrono::milliseconds(300);
  Response resp = sync_wait([&]() -> Task<Response> { co_return co_await engine.perform(req); }());
  EXPECT_EQ(resp.transport, TransportError::Stalled);
  EXPECT_NE(resp.transport_message.find("paused"), std::string::npos) << resp.transport_message;
}

TEST(HttpEngine, AQueuedTransferBehindAHostThatMovesNothingIsEnded) {
  SilentServer server;
  EngineOptions options;
  options.max_per_origin = 1;
  HttpEngine engine(options);
  Request holder;  // takes the only slot and never moves
  holder.method = "PUT";
  holder.url = server.url();
  holder.body_source = std::make_shared<NeverReady>();
  holder.stall_limit = std::chrono::seconds(30);
  Request waiting;
  waiting.url = server.url();
  waiting.stall_limit = std::chrono::milliseconds(300);
  auto both = [&]() -> Task<std::pair<Response, Response>> {
    AsyncValue<Response> first;
    engine.submit(holder, [&first](Response r) { first.set(std::move(r)); });
    Response second = co_await engine.perform(waiting);
    engine.cancel_all();  // release the holder
    Response held = co_await first.wait();
    co_return std::pair{std::move(held), std::move(second)};
  };
  auto [held, queued] = sync_wait(both());
  EXPECT_EQ(queued.transport, TransportError::Stalled) << queued.transport_message;
  EXPECT_NE(queued.transport_message.find("connection slot"), std::string::npos) << queued.transport_message;
  EXPECT_EQ(queued.bytes_sent, 0u);
  EXPECT_EQ(held.transport, TransportError::Cancelled);
}

TEST(HttpEngine, SnapshotReportsQueuedAndPausedTransfers) {
  SilentServer server;
  EngineOptions options;
  options.max_per_origin = 1;
  HttpEngine engine(options);
  Request holder;
  holder.method = "PUT";
  holder.url = server.url() + "held?signature=secret";
  holder.body_source = std::make_shared<NeverReady>();
  Request waiting;
  waiting.url = server.url() + "waiting";
  engine.submit(holder, [](Response) {});
  engine.submit(waiting, [](Response) {});
  std::vector<TransferInfo> seen;
  // The engine thread admits the holder on its next turn; ask until it has.
  for (int i = 0; i < 200; ++i) {
    auto snap = engine.snapshot(std::chrono::seconds(1));
    ASSERT_TRUE(snap.has_value());
    seen = *snap;
    if (seen.size() == 2 && seen[0].state == TransferInfo::State::Paused) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling interval
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].state, TransferInfo::State::Paused);
  EXPECT_EQ(seen[0].url.find("secret"), std::string::npos) << "a query (signature) leaked: " << seen[0].url;
  EXPECT_EQ(seen[1].state, TransferInfo::State::Queued);
  engine.cancel_all();
}

}  // namespace
}  // namespace fastsync
