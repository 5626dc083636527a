// The HTTP engine: one thread owns a curl multi handle and drives every
// transfer; any thread submits a request and is called back (or, from a
// coroutine, resumed) when it completes. No other thread ever touches a socket.
//
// - Connections are reused through the multi handle's cache.
// - A per-origin cap on transfers in flight; the rest wait in a FIFO.
// - A stall limit (no bytes moved for N seconds) instead of a total timeout.
// - Bodies can stream through BodySink/BodySource with pause/unpause, so a
//   GET can feed a PUT through a small bounded buffer.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace fastsync {

class HttpEngine;
using TransferId = std::uint64_t;

// Lets a body sink/source wake its paused transfer from any thread; or, with
// `call`, whoever stands between a channel and the transfers feeding it.
struct Waker {
  HttpEngine* engine = nullptr;
  TransferId id = 0;
  std::function<void()> call;
  void wake() const;
};

enum class Flow { Continue, Pause, Abort };

using HeaderList = std::vector<std::pair<std::string, std::string>>;  // lowercase names

// Receives the body of a 2xx response (other bodies are kept in memory as
// error text). Called on the engine thread only.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual void attach(Waker) {}
  // Before the first byte; Abort rejects the response (e.g. a wrong Content-Range).
  virtual Flow begin(long /*status*/, const HeaderList& /*headers*/) { return Flow::Continue; }
  // Continue = the whole chunk was taken; Pause = the same chunk comes again after wake().
  virtual Flow write(std::string_view chunk) = 0;
};

// Supplies an upload body of known length. Called on the engine thread only.
class BodySource {
 public:
  virtual ~BodySource() = default;
  virtual void attach(Waker) {}
  virtual std::uint64_t length() const = 0;
  struct Chunk {
    Flow flow = Flow::Continue;
    std::size_t size = 0;  // bytes written into the buffer; 0 with Continue = end of body
  };
  virtual Chunk read(char* buffer, std::size_t capacity) = 0;
};

class HostTrust;  // registry/net/trust.h

// How one host's TLS connections are verified (see registry/net/trust.h).
struct TlsOptions {
  bool verify = true;                      // --insecure turns this off
  std::shared_ptr<const HostTrust> trust;  // the CAs this host is checked against; null: libcurl's defaults
  std::string client_cert;                 // PEM certificate and key for mutual TLS (certs.d/<host>/*.cert, *.key)
  std::string client_key;
};

struct Request {
  std::string method = "GET";  // GET HEAD PUT POST DELETE PATCH
  std::string url;
  std::vector<std::string> headers;         // "Name: value"
  std::shared_ptr<const std::string> body;  // upload body held in memory (PUT/POST/PATCH); shared, never copied
  std::shared_ptr<BodySource> body_source;  // streamed upload body instead of `body`
  std::shared_ptr<BodySink> body_sink;      // streamed 2xx download body
  std::size_t max_memory_body = 16u << 20;  // cap for bodies kept in memory
  TlsOptions tls;
  bool http2 = false;
  std::string user_agent = "fastsync/0.1";
  std::chrono::milliseconds stall_limit{std::chrono::seconds(60)};
  // The request carries a credential that expires: if it is still queued for a
  // connection slot at this time, it completes with CredentialExpired unsent.
  std::chrono::steady_clock::time_point send_before = std::chrono::steady_clock::time_point::max();
  // Jump the queue: a request that already waited its turn once (CredentialExpired).
  bool queue_first = false;
  // Called in submit(), on the submitting thread, before the engine can start it.
  std::function<void(TransferId)> on_queued;
  // Called on the engine thread when the transfer leaves the queue and starts.
  std::function<void(TransferId)> on_started;

  void set_body(std::string bytes) { body = std::make_shared<const std::string>(std::move(bytes)); }
  std::uint64_t body_size() const { return body ? body->size() : 0; }
};

enum class TransportError {
  None,
  Connect,  // DNS, refused, connect timeout
  TlsHandshake,
  TlsVerify,          // certificate not trusted / wrong name
  Network,            // reset, truncated, HTTP/2 stream errors, GOAWAY
  Stalled,            // stall limit hit (moving no bytes, paused, or waiting for a connection slot)
  CredentialExpired,  // still queued when its credential expired (Request::send_before): never sent
  Cancelled,
  Aborted,   // a body sink/source gave up
  TooLarge,  // in-memory body over max_memory_body
  Other,
};

struct Response {
  TransportError transport = TransportError::None;
  std::string transport_message;  // libcurl's text (never holds credentials)
  long status = 0;
  HeaderList headers;
  std::string body;  // kept in memory unless streamed into a sink
  std::string url;   // the URL requested
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  int http_version = 0;  // 11 for HTTP/1.1, 20 for HTTP/2

  bool transport_ok() const { return transport == TransportError::None; }
  bool ok() const { return transport_ok() && status >= 200 && status < 300; }
  std::optional<std::string> header(std::string_view lowercase_name) const;
};

// Milliseconds to wait for a Retry-After value (delta-seconds or HTTP-date); nullopt if absent/bad.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value);

struct EngineOptions {
  int max_per_origin = 64;  // transfers in flight per scheme+host+port; 0 = no cap
  int max_cached_connections = 256;
  std::vector<std::string> resolve;  // "host:port:address", as curl --resolve
};

// One transfer as SIGUSR1 diagnostics show it.
struct TransferInfo {
  enum class State { Queued, Transferring, Paused, AwaitingAnswer };
  TransferId id = 0;
  State state = State::Queued;
  std::string method;
  std::string url;                    // without its query (never a signature)
  std::chrono::milliseconds age{0};   // since submitted
  std::chrono::milliseconds idle{0};  // since a byte last moved (or it was resumed)
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
};
const char* to_string(TransferInfo::State state);

// An origin that pushed back (429, 503, refused connections) and how far its
// transfers at once were lowered.
struct OriginThrottle {
  std::uint64_t pushbacks = 0;  // answers that pushed back
  int lowest = 0;               // the fewest transfers at once it was given
  int now = 0;                  // at the end (raised again while answers were good)
};

struct EngineStats {
  std::uint64_t requests = 0;   // transfers started
  std::uint64_t completed = 0;  // transfers finished (any outcome)
  int in_flight = 0;            // started and not finished
  int queued = 0;               // waiting for a per-origin slot
};

class HttpEngine {
 public:
  using Callback = std::function<void(Response)>;

  explicit HttpEngine(EngineOptions options = {});
  ~HttpEngine();
  HttpEngine(const HttpEngine&) = delete;
  HttpEngine& operator=(const HttpEngine&) = delete;

  // Thread-safe. `done` runs on the engine thread; keep it short and never block in it.
  // Liveness: `done` always runs — queued for a connection slot, transferring or
  // paused, a transfer is ended by cancellation or by its stall limit (watchdog()).
  TransferId submit(Request request, Callback done);
  // Thread-safe. Resumes a transfer its sink/source paused.
  void wake(TransferId id);
  // Thread-safe. Runs `fn` on the engine thread after `delay`.
  void after(std::chrono::milliseconds delay, std::function<void()> fn);
  // Thread-safe. Cancels everything in flight and queued, and every later
  // submission; timers still fire (so sleeping coroutines wake and see it).
  void cancel_all();
  bool cancelled() const { return cancelled_.load(); }
  // Thread-safe. `hook` runs once on the engine thread when the engine is
  // cancelled (right away if it already is), after every transfer was ended:
  // waits outside the engine (a slot of a pool, say) are woken through it.
  void on_cancel(std::function<void()> hook);

  EngineStats stats() const;
  // Origins that pushed back, by origin. Thread-safe.
  std::map<std::string, OriginThrottle> throttled() const;
  // Every transfer queued or in flight, read on the engine thread; empty if the
  // engine thread does not answer within `timeout` (which is itself a finding).
  std::optional<std::vector<TransferInfo>> snapshot(std::chrono::milliseconds timeout);
  bool on_engine_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // co_await engine.perform(request) -> Response
  auto perform(Request request) {
    struct Awaiter {
      HttpEngine& engine;
      Request request;
      Response response;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) {
        // After submit() returns, `this` may already be gone: touch nothing.
        engine.submit(std::move(request), [this, h](Response r) {
          response = std::move(r);
          h.resume();
        });
      }
      Response await_resume() { return std::move(response); }
    };
    return Awaiter{*this, std::move(request), {}};
  }

  // co_await engine.sleep_for(d): resumes on the engine thread.
  // Liveness: woken by cancellation (every timer fires at once), else after `d`
  // (a retry delay: the policy caps it, Retry-After at 5 minutes).
  auto sleep_for(std::chrono::milliseconds delay) {
    struct Awaiter {
      HttpEngine& engine;
      std::chrono::milliseconds delay;
      bool await_ready() const noexcept { return delay.count() <= 0; }
      void await_suspend(std::coroutine_handle<> h) {
        engine.after(delay, [h] { h.resume(); });
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{*this, delay};
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> cancelled_{false};
  std::thread thread_;
};

}  // namespace fastsync
