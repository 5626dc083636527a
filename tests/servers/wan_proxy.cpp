// fastsync-wanproxy: a TCP proxy that makes loopback behave like a long fat
// link. Each byte is delayed by --delay-ms per direction (so the round trip
// grows by twice that) and each connection is capped at --rate-mbps MB/s per
// direction. netem is not available here; this is the project's own.
//
//   fastsync-wanproxy --target 127.0.0.1:5000 --delay-ms 25 --rate-mbps 30
//   -> prints "READY port=<n>" and proxies 127.0.0.1:<n> to the target.
//
// One thread, epoll, non-blocking sockets; bounded buffering per direction.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxQueued = 4u << 20;  // per direction, then stop reading
constexpr std::size_t kReadChunk = 64 * 1024;

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

sockaddr_in parse_address(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
  if (inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    throw std::runtime_error("not an IPv4 address: " + host_port);
  }
  return a;
}

struct Chunk {
  Clock::time_point ready;
  std::string bytes;
  std::size_t offset = 0;
};

// Bytes travelling one way: read from `from`, written to `to` once due.
struct Direction {
  int from = -1;
  int to = -1;
  std::deque<Chunk> queue;
  std::size_t queued = 0;
  double tokens = 0;
  Clock::time_point refilled = Clock::now();
  bool eof = false;       // `from` closed its side
  bool shut = false;      // we shut down `to` for writing
  bool reading = true;    // EPOLLIN wanted on `from`
};

struct Connection {
  Direction up;    // client -> target
  Direction down;  // target -> client
  int client = -1;
  int target = -1;
  bool dead = false;
};

class Proxy {
 public:
  Proxy(sockaddr_in target, std::chrono::microseconds delay, double rate_bytes)
      : target_(target), delay_(delay), rate_(rate_bytes), epoll_(epoll_create1(EPOLL_CLOEXEC)) {}

  int listen_on(const std::string& host_port) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = parse_address(host_port);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener_, 512) != 0) {
      throw std::runtime_error(std::string("cannot listen: ") + std::strerror(errno));
    }
    socklen_t len = sizeof a;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    set_nonblocking(listener_);
    watch(listener_, EPOLLIN);
    return ntohs(a.sin_port);
  }

  void run() {
    std::vector<epoll_event> events(256);
    while (true) {
      int timeout = next_timeout_ms();
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) throw std::runtime_error("epoll_wait failed");
      for (int i = 0; i < n; ++i) {
        int fd = events[static_cast<std::size_t>(i)].data.fd;
        if (fd == listener_) {
          accept_all();
          continue;
        }
        auto it = by_fd_.find(fd);
        if (it == by_fd_.end()) continue;
        auto conn = it->second;
        if (events[static_cast<std::size_t>(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          read_into(*conn, fd == conn->client ? conn->up : conn->down);
        }
      }
      pump_all();
    }
  }

 private:
  void watch(int fd, uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.fd = fd;
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &e) != 0) epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &e);
  }

  void accept_all() {
    while (true) {
      int client = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;
      int target = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      // Loopback connects complete at once; blocking keeps this simple.
      if (connect(target, reinterpret_cast<const sockaddr*>(&target_), sizeof target_) != 0) {
        close(client);
        close(target);
        continue;
      }
      set_nonblocking(target);
      int one = 1;
      setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(target, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto conn = std::make_shared<Connection>();
      conn->client = client;
      conn->target = target;
      conn->up.from = client;
      conn->up.to = target;
      conn->down.from = target;
      conn->down.to = client;
      conn->up.tokens = conn->down.tokens = burst();
      by_fd_[client] = conn;
      by_fd_[target] = conn;
      watch(client, EPOLLIN);
      watch(target, EPOLLIN);
    }
  }

  double burst() const { return rate_ > 0 ? std::max(64.0 * 1024, rate_ * 0.01) : 0; }

  void read_into(Connection& c, Direction& d) {
    if (c.dead || d.eof) return;
    char buf[kReadChunk];
    ssize_t n = read(d.from, buf, sizeof buf);
    if (n > 0) {
      d.queue.push_back(Chunk{Clock::now() + delay_, std::string(buf, static_cast<std::size_t>(n))});
      d.queued += static_cast<std::size_t>(n);
      if (d.queued > kMaxQueued && d.reading) {
        d.reading = false;
        watch(d.from, 0);
      }
    } else if (n == 0) {
      d.eof = true;
      watch(d.from, 0);
    } else if (errno != EAGAIN && errno != EINTR) {
      c.dead = true;
    }
  }

  // Writes what is due and allowed by the rate; closes finished connections.
  void pump_all() {
    auto now = Clock::now();
    std::vector<std::shared_ptr<Connection>> finished;
    for (auto& [fd, conn] : by_fd_) {
      if (fd != conn->client) continue;  // visit each connection once
      pump(*conn, conn->up, now);
      pump(*conn, conn->down, now);
      bool done = conn->up.shut && conn->down.shut;
      if (conn->dead || done) finished.push_back(conn);
    }
    for (auto& c : finished) {
      by_fd_.erase(c->client);
      by_fd_.erase(c->target);
      close(c->client);
      close(c->target);
    }
  }

  void pump(Connection& c, Direction& d, Clock::time_point now) {
    if (c.dead) return;
    if (rate_ > 0) {
      double dt = std::chrono::duration<double>(now - d.refilled).count();
      d.tokens = std::min(burst(), d.tokens + dt * rate_);
      d.refilled = now;
    }
    while (!d.queue.empty() && d.queue.front().ready <= now) {
      Chunk& chunk = d.queue.front();
      std::size_t want = chunk.bytes.size() - chunk.offset;
      if (rate_ > 0) {
        if (d.tokens < 1) break;
        want = std::min<std::size_t>(want, static_cast<std::size_t>(d.tokens));
      }
      ssize_t n = write(d.to, chunk.bytes.data() + chunk.offset, want);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) c.dead = true;
        break;
      }
      chunk.offset += static_cast<std::size_t>(n);
      d.queued -= static_cast<std::size_t>(n);
      if (rate_ > 0) d.tokens -= static_cast<double>(n);
      if (chunk.offset == chunk.bytes.size()) d.queue.pop_front();
      if (static_cast<std::size_t>(n) < want) break;  // socket buffer full
    }
    if (!d.reading && d.queued < kMaxQueued / 2 && !d.eof) {
      d.reading = true;
      watch(d.from, EPOLLIN);
    }
    if (d.eof && d.queue.empty() && !d.shut) {
      shutdown(d.to, SHUT_WR);
      d.shut = true;
    }
  }

  int next_timeout_ms() const {
    bool pending = false;
    auto soonest = Clock::now() + std::chrono::seconds(1);
    for (const auto& [fd, c] : by_fd_) {
      for (const Direction* d : {&c->up, &c->down}) {
        if (!d->queue.empty()) {
          pending = true;
          soonest = std::min(soonest, d->queue.front().ready);
        }
      }
    }
    if (!pending) return 1000;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(soonest - Clock::now()).count();
    // Rate-limited queues need a tick to refill their tokens.
    return static_cast<int>(std::clamp<long>(ms, 0, rate_ > 0 ? 2 : 1000));
  }

  sockaddr_in target_;
  std::chrono::microseconds delay_;
  double rate_;  // bytes per second per direction per connection; 0 = unlimited
  int epoll_;
  int listener_ = -1;
  std::map<int, std::shared_ptr<Connection>> by_fd_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0", target;
  double delay_ms = 0, rate_mbps = 0;
  po::options_description desc("fastsync-wanproxy: delay and rate-limit TCP connections to a target");
  desc.add_options()("help,h", "show this help")(
      "target", po::value(&target)->required(), "IPv4 host:port to forward to")(
      "listen", po::value(&listen)->default_value(listen), "address to listen on (port 0 = any free port)")(
      "delay-ms", po::value(&delay_ms)->default_value(0), "one-way delay added in each direction (RTT grows 2x this)")(
      "rate-mbps", po::value(&rate_mbps)->default_value(0), "per connection, per direction cap in MB/s (0 = none)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
    signal(SIGPIPE, SIG_IGN);
    Proxy proxy(parse_address(target), std::chrono::microseconds(static_cast<long>(delay_ms * 1000)), rate_mbps * 1e6);
    int port = proxy.listen_on(listen);
    std::printf("READY port=%d\n", port);
    std::fflush(stdout);
    proxy.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fastsync-wanproxy: error: %s\n", e.what());
    return 1;
  }
}
