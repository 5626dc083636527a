// fastsync-wanproxy: a TCP proxy that makes loopback behave like a long fat
// link. Each byte is delayed by --delay-ms per direction (so the round trip
// grows by twice that) and each connection is capped at --rate-mbps MB/s per
// direction. netem is not available here; this is the project's own.
//
//   fastsync-wanproxy --target 127.0.0.1:5000 --delay-ms 25 --rate-mbps 30
//   -> prints "READY port=<n>" and proxies 127.0.0.1:<n> to the target.
//
// One machine's network interface (a pod's): --total-mbps caps all
// connections together, per direction (receive and send, as a NIC's), and
// --target may be repeated (one listener each: "READY port=<n> port1=<m> ...")
// so a source and a destination can sit behind the same interface.
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
#include <cmath>
#include <cstdint>
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
// Behind one interface cap a connection holds little: what a socket buffer
// would, so a sender learns of the cap as it would from a real NIC.
constexpr std::size_t kMaxQueuedShared = 256u << 10;
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

// Token bucket: bytes allowed at `rate` per second, at most a burst ahead.
struct Bucket {
  double rate = 0;  // bytes per second; 0 = unlimited
  double tokens = 0;
  Clock::time_point refilled = Clock::now();
  double burst() const { return std::max(64.0 * 1024, rate * 0.01); }
  void refill(Clock::time_point now) {
    if (rate <= 0) return;
    double dt = std::chrono::duration<double>(now - refilled).count();
    tokens = std::min(burst(), tokens + dt * rate);
    refilled = now;
  }
  // Rate-limited bytes go in pieces of at least this much (or what is left):
  // fewer, larger writes keep the proxy's own CPU out of the measurement.
  static constexpr double kQuantum = 16 * 1024;
  // How much of `want` may go now.
  std::size_t allow(std::size_t want) const {
    if (rate <= 0) return want;
    if (tokens < std::min(kQuantum, static_cast<double>(want))) return 0;
    return std::min<std::size_t>(want, static_cast<std::size_t>(tokens));
  }
  // Seconds until `want` (up to a quantum) may go.
  double wait_for(std::size_t want, Clock::time_point now) const {
    if (rate <= 0) return 0;
    double have = std::min(burst(), tokens + std::chrono::duration<double>(now - refilled).count() * rate);
    double need = std::min(kQuantum, static_cast<double>(want));
    return have >= need ? 0 : (need - have) / rate;
  }
  void take(std::size_t n) {
    if (rate > 0) tokens -= static_cast<double>(n);
  }
};

// Bytes travelling one way: read from `from`, written to `to` once due.
struct Direction {
  int from = -1;
  int to = -1;
  std::deque<Chunk> queue;
  std::size_t queued = 0;
  Bucket own;                // this connection's cap
  Bucket* shared = nullptr;  // the interface's cap, over all connections
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
  Proxy(std::chrono::microseconds delay, double rate_bytes, double total_bytes)
      : delay_(delay), rate_(rate_bytes), epoll_(epoll_create1(EPOLL_CLOEXEC)) {
    received_.rate = sent_.rate = total_bytes;
    received_.tokens = sent_.tokens = total_bytes > 0 ? received_.burst() : 0;
    max_queued_ = total_bytes > 0 ? kMaxQueuedShared : kMaxQueued;
  }

  // Connections to `host_port` go to `target`.
  int listen_on(const std::string& host_port, sockaddr_in target) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = parse_address(host_port);
    if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener, 512) != 0) {
      throw std::runtime_error(std::string("cannot listen: ") + std::strerror(errno));
    }
    socklen_t len = sizeof a;
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    set_nonblocking(listener);
    watch(listener, EPOLLIN);
    listeners_[listener] = target;
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
        if (auto l = listeners_.find(fd); l != listeners_.end()) {
          accept_all(l->first, l->second);
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

  void accept_all(int listener, const sockaddr_in& address) {
    while (true) {
      int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;
      int target = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      // Loopback connects complete at once; blocking keeps this simple.
      if (connect(target, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
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
      for (Direction* d : {&conn->up, &conn->down}) {
        d->own.rate = rate_;
        d->own.tokens = rate_ > 0 ? d->own.burst() : 0;
      }
      // Seen from the machine behind the interface: what it sends, what it receives.
      if (sent_.rate > 0) {
        conn->up.shared = &sent_;
        conn->down.shared = &received_;
      }
      by_fd_[client] = conn;
      by_fd_[target] = conn;
      watch(client, EPOLLIN);
      watch(target, EPOLLIN);
    }
  }

  void read_into(Connection& c, Direction& d) {
    if (c.dead || d.eof) return;
    char buf[kReadChunk];
    ssize_t n = read(d.from, buf, sizeof buf);
    if (n > 0) {
      d.queue.push_back(Chunk{Clock::now() + delay_, std::string(buf, static_cast<std::size_t>(n))});
      d.queued += static_cast<std::size_t>(n);
      if (d.queued > max_queued_ && d.reading) {
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
    received_.refill(now);
    sent_.refill(now);
    std::vector<std::shared_ptr<Connection>> all, finished;
    for (auto& [fd, conn] : by_fd_) {
      if (fd == conn->client) all.push_back(conn);  // each connection once
    }
    // Round robin: under a shared cap, whoever goes first gets the tokens.
    for (std::size_t i = 0; i < all.size(); ++i) {
      auto& conn = all[(i + turn_) % all.size()];
      pump(*conn, conn->up, now);
      pump(*conn, conn->down, now);
      bool done = conn->up.shut && conn->down.shut;
      if (conn->dead || done) finished.push_back(conn);
    }
    ++turn_;
    for (auto& c : finished) {
      by_fd_.erase(c->client);
      by_fd_.erase(c->target);
      close(c->client);
      close(c->target);
    }
  }

  void pump(Connection& c, Direction& d, Clock::time_point now) {
    if (c.dead) return;
    d.own.refill(now);
    // Under a shared cap, one quantum per turn: the connections take turns.
    std::size_t turn_left = d.shared ? static_cast<std::size_t>(Bucket::kQuantum) : SIZE_MAX;
    while (!d.queue.empty() && d.queue.front().ready <= now && turn_left > 0) {
      Chunk& chunk = d.queue.front();
      std::size_t want = d.own.allow(std::min(chunk.bytes.size() - chunk.offset, turn_left));
      if (d.shared) want = d.shared->allow(want);
      if (want == 0) break;
      ssize_t n = write(d.to, chunk.bytes.data() + chunk.offset, want);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) c.dead = true;
        break;
      }
      chunk.offset += static_cast<std::size_t>(n);
      d.queued -= static_cast<std::size_t>(n);
      d.own.take(static_cast<std::size_t>(n));
      if (d.shared) d.shared->take(static_cast<std::size_t>(n));
      turn_left -= std::min(turn_left, static_cast<std::size_t>(n));
      if (chunk.offset == chunk.bytes.size()) d.queue.pop_front();
      if (static_cast<std::size_t>(n) < want) break;  // socket buffer full
    }
    if (!d.reading && d.queued < max_queued_ / 2 && !d.eof) {
      d.reading = true;
      watch(d.from, EPOLLIN);
    }
    if (d.eof && d.queue.empty() && !d.shut) {
      shutdown(d.to, SHUT_WR);
      d.shut = true;
    }
  }

  // Until the soonest queue has bytes due and the tokens to send them.
  int next_timeout_ms() const {
    auto now = Clock::now();
    double soonest = 1.0;  // seconds
    for (const auto& [fd, c] : by_fd_) {
      for (const Direction* d : {&c->up, &c->down}) {
        if (d->queue.empty()) continue;
        const Chunk& front = d->queue.front();
        double wait = std::chrono::duration<double>(front.ready - now).count();
        std::size_t left = front.bytes.size() - front.offset;
        wait = std::max(wait, d->own.wait_for(left, now));
        if (d->shared) wait = std::max(wait, d->shared->wait_for(left, now));
        soonest = std::min(soonest, wait);
      }
    }
    return soonest <= 0 ? 0 : std::max(1, static_cast<int>(std::ceil(soonest * 1000)));
  }

  std::chrono::microseconds delay_;
  double rate_;  // bytes per second per direction per connection; 0 = unlimited
  Bucket received_, sent_;  // the interface's caps (rate 0: none)
  std::size_t max_queued_ = kMaxQueued;
  std::size_t turn_ = 0;
  int epoll_;
  std::map<int, sockaddr_in> listeners_;  // listening socket -> its target
  std::map<int, std::shared_ptr<Connection>> by_fd_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  std::vector<std::string> targets;
  double delay_ms = 0, rate_mbps = 0, total_mbps = 0;
  po::options_description desc("fastsync-wanproxy: delay and rate-limit TCP connections to a target");
  desc.add_options()("help,h", "show this help")(
      "target", po::value(&targets)->required()->composing(),
      "IPv4 host:port to forward to; repeatable, one listener each (the first on --listen)")(
      "listen", po::value(&listen)->default_value(listen), "address to listen on (port 0 = any free port)")(
      "total-mbps", po::value(&total_mbps)->default_value(0),
      "cap in MB/s over all connections, per direction, like one network interface (0 = none)")(
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
    Proxy proxy(std::chrono::microseconds(static_cast<long>(delay_ms * 1000)), rate_mbps * 1e6, total_mbps * 1e6);
    std::string ready = "READY";
    for (std::size_t i = 0; i < targets.size(); ++i) {
      int port = proxy.listen_on(i == 0 ? listen : "127.0.0.1:0", parse_address(targets[i]));
      ready += " port" + (i == 0 ? std::string() : std::to_string(i)) + "=" + std::to_string(port);
    }
    std::printf("%s\n", ready.c_str());
    std::fflush(stdout);
    proxy.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fastsync-wanproxy: error: %s\n", e.what());
    return 1;
  }
}
