#include "registry/net/http_engine.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "registry/core/log.h"
#include "registry/net/curl_handles.h"
#include "registry/net/trust.h"
#include "registry/net/url.h"

namespace fastsync {

std::optional<std::string> Response::header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return value;
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::hours(24);
    return std::chrono::seconds(std::stol(value));
  }
  time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  auto delta = std::chrono::system_clock::from_time_t(when) - std::chrono::system_clock::now();
  return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(delta));
}

void Waker::wake() const {
  if (call) call();
  if (engine) engine->wake(id);
}

const char* to_string(TransferInfo::State state) {
  switch (state) {
    case TransferInfo::State::Queued:
      return "queued for a connection slot";
    case TransferInfo::State::Transferring:
      return "transferring";
    case TransferInfo::State::Paused:
      return "paused, waiting for its other half";
    case TransferInfo::State::AwaitingAnswer:
      return "body sent, awaiting the answer";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr long kBufferSize = 64 * 1024;
constexpr long kSmallBufferSize = 16 * 1024;  // curl's default: replies without a streamed body
constexpr auto kWatchdogPeriod = std::chrono::milliseconds(250);
// After the whole body is sent the server may take long to commit (an S3-backed
// registry copies a 1 GiB blob): waiting for that answer gets a longer limit.
constexpr int kCommitStallFactor = 5;

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

TransportError classify(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return TransportError::None;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:  // only the connect timeout is set
      return TransportError::Connect;
    case CURLE_SSL_CONNECT_ERROR:
      return TransportError::TlsHandshake;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
      return TransportError::TlsVerify;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
      return TransportError::Network;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
      return TransportError::Aborted;
    default:
      return TransportError::Other;
  }
}

struct Transfer {
  TransferId id = 0;
  Request req;
  HttpEngine::Callback done;
  Response resp;
  CurlEasy easy;
  CurlHeaderList header_list;
  std::string origin;
  bool started = false;
  bool paused = false;  // a sink/source paused it: the stall clock stops
  bool body_started = false;
  bool to_sink = false;
  bool upload_finished = false;
  std::uint64_t upload_length = 0;
  std::uint64_t upload_offset = 0;  // in-memory body position
  Clock::time_point submitted;
  Clock::time_point started_at;
  Clock::time_point last_activity;  // a byte moved, the transfer was resumed, or it left the queue
  TransportError forced = TransportError::None;
  std::string forced_message;
  char errbuf[CURL_ERROR_SIZE] = {0};
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * count;
  t->last_activity = Clock::now();
  std::string_view line = trim(std::string_view(data, len));
  if (line.substr(0, 5) == "HTTP/") {
    t->resp.headers.clear();  // a new response (after 100 Continue, say)
    return len;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp.headers.emplace_back(lowercase(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  return len;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * count;
  if (!t->body_started) {
    t->body_started = true;
    long code = 0;
    curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &code);
    t->to_sink = t->req.body_sink && code >= 200 && code < 300;
    if (t->to_sink && t->req.body_sink->begin(code, t->resp.headers) == Flow::Abort) {
      t->forced = TransportError::Aborted;
      t->forced_message = "response rejected by its reader";
      return 0;
    }
  }
  if (t->to_sink) {
    switch (t->req.body_sink->write(std::string_view(data, len))) {
      case Flow::Continue:
        t->last_activity = Clock::now();
        t->resp.bytes_received += len;
        return len;
      case Flow::Pause:
        t->paused = true;
        return CURL_WRITEFUNC_PAUSE;
      case Flow::Abort:
        t->forced = TransportError::Aborted;
        t->forced_message = "download stopped by its reader";
        return 0;
    }
  }
  if (t->resp.body.size() + len > t->req.max_memory_body) {
    t->forced = TransportError::TooLarge;
    t->forced_message = "response body larger than " + std::to_string(t->req.max_memory_body) + " bytes";
    return 0;
  }
  t->resp.body.append(data, len);
  t->resp.bytes_received += len;
  t->last_activity = Clock::now();
  return len;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t capacity = size * count;
  size_t n = 0;
  if (t->req.body_source) {
    auto chunk = t->req.body_source->read(buffer, capacity);
    if (chunk.flow == Flow::Pause) {
      t->paused = true;
      return CURL_READFUNC_PAUSE;
    }
    if (chunk.flow == Flow::Abort) {
      t->forced = TransportError::Aborted;
      t->forced_message = "upload stopped by its writer";
      return CURL_READFUNC_ABORT;
    }
    n = chunk.size;
  } else {
    n = static_cast<size_t>(std::min<std::uint64_t>(capacity, t->req.body_size() - t->upload_offset));
    if (n > 0) std::memcpy(buffer, t->req.body->data() + t->upload_offset, n);
    t->upload_offset += n;
  }
  t->resp.bytes_sent += n;
  if (n > 0) t->last_activity = Clock::now();
  if (n == 0 || t->resp.bytes_sent >= t->upload_length) t->upload_finished = true;
  return n;
}

int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  // Only in-memory bodies can be sent again (HTTP/2 refused stream, say).
  if (t->req.body_source || origin != SEEK_SET || offset < 0 ||
      static_cast<std::uint64_t>(offset) > t->req.body_size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->upload_offset = static_cast<std::uint64_t>(offset);
  t->resp.bytes_sent = t->upload_offset;
  t->upload_finished = false;
  return CURL_SEEKFUNC_OK;
}

CURLcode on_ssl_ctx(CURL*, void* ssl_ctx, void* user) {
  return static_cast<const HostTrust*>(user)->install(ssl_ctx) ? CURLE_OK : CURLE_SSL_CACERT_BADFILE;
}

struct Timer {
  Clock::time_point due;
  std::uint64_t seq;
  std::function<void()> fn;
  bool operator>(const Timer& o) const { return due > o.due || (due == o.due && seq > o.seq); }
};

}  // namespace

struct HttpEngine::Impl {
  explicit Impl(HttpEngine& owner, EngineOptions opts) : self(owner), options(opts), multi(curl_multi_init()) {
    if (!multi) throw std::runtime_error("curl_multi_init failed");
    check(curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, static_cast<long>(options.max_cached_connections)),
          "curl_multi_setopt(MAXCONNECTS)");
    check(curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX), "curl_multi_setopt(PIPELINING)");
    for (const auto& entry : options.resolve) resolve.append(entry);
  }

  CurlHeaderList resolve;  // CURLOPT_RESOLVE entries, shared by every handle

  HttpEngine& self;
  EngineOptions options;
  CurlMulti multi;

  // Inbox: written by any thread, drained by the engine thread.
  std::mutex mutex;
  std::vector<std::unique_ptr<Transfer>> inbox_new;
  std::vector<TransferId> inbox_wake;
  std::vector<Timer> inbox_timers;
  std::vector<std::function<void()>> cancel_hooks;  // run once, when cancelled
  bool stopping = false;
  std::atomic<TransferId> next_id{1};
  std::atomic<std::uint64_t> next_timer_seq{0};

  // Engine thread only.
  std::vector<TransferId> local_wakes;  // wakes raised on the engine thread itself: no lock, no syscall
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> transfers;  // queued and started
  std::deque<TransferId> queue;                                         // waiting for an origin slot
  std::unordered_map<std::string, int> active_per_origin;
  std::unordered_map<std::string, Clock::time_point> last_finish_per_origin;
  // An origin that pushed back (429, 503, a refused connection) gets fewer
  // transfers at once: halved at each push back; then one more per `limit`
  // good answers (as TCP's window) up to just below where it pushed back,
  // ten times slower beyond (it is probably a fixed cap); never above
  // max_per_origin. Answers to transfers started before a cut do not cut
  // again: one burst is one cut.
  struct OriginLimit {
    double limit = 0;
    double pushed_at = 0;  // transfers in flight at the last push back
    Clock::time_point cut_at;
  };
  std::unordered_map<std::string, OriginLimit> limits;
  mutable std::mutex throttled_mutex;
  std::map<std::string, OriginThrottle> throttled;  // for the summary, any thread
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  Clock::time_point next_watchdog = Clock::now();

  std::atomic<std::uint64_t> stat_requests{0};
  std::atomic<std::uint64_t> stat_completed{0};
  std::atomic<int> stat_in_flight{0};
  std::atomic<int> stat_queued{0};

  // A failing curl_multi_* call is a bug or resource exhaustion: say so, loudly, once per kind.
  static bool check(CURLMcode rc, const char* what) {
    if (rc == CURLM_OK) return true;
    logging::error("{} failed: {}", what, curl_multi_strerror(rc));
    return false;
  }

  void notify() {
    // Never fails on a live handle; if it did, the poll timeout still bounds the delay.
    check(curl_multi_wakeup(multi.get()), "curl_multi_wakeup");
  }

  void run() {
    while (true) {
      std::vector<std::unique_ptr<Transfer>> fresh;
      std::vector<TransferId> wakes;
      std::vector<Timer> new_timers;
      std::vector<std::function<void()>> hooks;
      bool stop = false;
      bool cancelled = self.cancelled_.load();
      {
        std::lock_guard lock(mutex);
        fresh.swap(inbox_new);
        wakes.swap(inbox_wake);
        new_timers.swap(inbox_timers);
        if (cancelled) hooks.swap(cancel_hooks);
        stop = stopping;
      }
      for (auto& t : fresh) {
        TransferId id = t->id;
        if (t->req.queue_first) {
          queue.push_front(id);
        } else {
          queue.push_back(id);
        }
        transfers.emplace(id, std::move(t));
      }
      for (auto& timer : new_timers) timers.push(std::move(timer));
      if (cancelled) {
        cancel_everything();
        for (auto& hook : hooks) hook();
      }
      for (TransferId id : wakes) resume(id);
      while (!local_wakes.empty()) {
        std::vector<TransferId> ids;
        ids.swap(local_wakes);
        for (TransferId id : ids) resume(id);
      }

      admit();
      int running = 0;
      if (!check(curl_multi_perform(multi.get(), &running), "curl_multi_perform")) {
        fail_started("curl_multi_perform failed");
      }
      collect_finished();
      fire_timers(self.cancelled_.load());
      watchdog();

      if (stop && transfers.empty() && timers.empty()) {
        std::lock_guard lock(mutex);
        if (inbox_new.empty() && inbox_timers.empty()) break;
      }
      int timeout_ms = local_wakes.empty() ? poll_timeout() : 0;
      {
        std::lock_guard lock(mutex);
        if (!inbox_new.empty() || !inbox_wake.empty() || !inbox_timers.empty()) {
          timeout_ms = 0;
        }
      }
      if (timeout_ms > 0 && !check(curl_multi_poll(multi.get(), nullptr, 0, timeout_ms, nullptr), "curl_multi_poll")) {
        fail_started("curl_multi_poll failed");
      }
    }
  }

  int poll_timeout() {
    long curl_ms = -1;
    if (!check(curl_multi_timeout(multi.get(), &curl_ms), "curl_multi_timeout")) curl_ms = 0;
    long ms = curl_ms < 0 ? 1000 : curl_ms;
    if (!transfers.empty()) ms = std::min<long>(ms, kWatchdogPeriod.count());
    if (!timers.empty()) {
      auto until = std::chrono::duration_cast<std::chrono::milliseconds>(timers.top().due - Clock::now()).count();
      ms = std::min<long>(ms, std::max<long>(0, until + 1));
    }
    return static_cast<int>(std::max<long>(ms, 0));
  }

  void admit() {
    auto now = Clock::now();
    for (auto it = queue.begin(); it != queue.end();) {
      Transfer& t = *transfers.at(*it);
      int& active = active_per_origin[t.origin];
      if (active >= cap_of(t.origin)) {
        ++it;
        continue;
      }
      TransferId id = *it;
      it = queue.erase(it);
      stat_queued.fetch_sub(1);
      if (now >= t.req.send_before) {
        // Its turn came, but its token would arrive dead: hand it back unsent so
        // the caller fetches a fresh one (it then goes to the head of the queue).
        abort_transfer(id, TransportError::CredentialExpired, "credential expired while queued");
        continue;
      }
      start(t);
    }
  }

  int cap_of(const std::string& origin) const {
    int cap = options.max_per_origin > 0 ? options.max_per_origin : std::numeric_limits<int>::max();
    auto it = limits.find(origin);
    return it == limits.end() ? cap : std::min(cap, static_cast<int>(it->second.limit));
  }

  // Called with the answer of a transfer to `origin` that was started.
  void adapt_limit(const Transfer& t, long status, CURLcode code) {
    bool pushed_back = status == 429 || status == 503 || code == CURLE_COULDNT_CONNECT;
    auto it = limits.find(t.origin);
    if (!pushed_back) {
      if (it == limits.end() || !(status >= 200 && status < 500)) return;
      OriginLimit& l = it->second;
      double ceiling = options.max_per_origin > 0 ? options.max_per_origin : 1e9;
      double step = l.limit + 1 < l.pushed_at ? 1.0 : 0.1;
      l.limit = std::min(ceiling, l.limit + step / std::max(1.0, l.limit));
      std::lock_guard lock(throttled_mutex);
      throttled[t.origin].now = static_cast<int>(l.limit);
      return;
    }
    int active = active_per_origin[t.origin] + 1;  // this one included
    if (it == limits.end()) it = limits.emplace(t.origin, OriginLimit{static_cast<double>(cap_of(t.origin))}).first;
    OriginLimit& l = it->second;
    std::lock_guard lock(throttled_mutex);
    OriginThrottle& report = throttled[t.origin];
    ++report.pushbacks;
    if (t.started_at < l.cut_at) return;  // the same burst
    l.pushed_at = std::min(l.limit, static_cast<double>(active));
    l.limit = std::max(1.0, std::floor(l.pushed_at / 2));
    l.cut_at = Clock::now();
    report.now = static_cast<int>(l.limit);
    report.lowest = report.lowest == 0 ? report.now : std::min(report.lowest, report.now);
    logging::info("{} pushed back ({} with {} requests in flight): {} at a time from now", t.origin,
                  status ? fmt::format("HTTP {}", status) : std::string("connection refused"), active, report.now);
  }

  void start(Transfer& t) {
    t.started = true;
    t.last_activity = Clock::now();
    t.started_at = t.last_activity;
    ++active_per_origin[t.origin];
    stat_in_flight.fetch_add(1);
    stat_requests.fetch_add(1);
    t.easy.reset(curl_easy_init());
    CURL* h = t.easy.get();
    if (!h) {
      abort_transfer(t.id, TransportError::Other, "curl_easy_init failed");
      return;
    }
    const Request& r = t.req;
    curl_easy_setopt(h, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(h, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t.errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, r.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    if (r.http2) curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.stall_limit.count()));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, r.user_agent.c_str());
    if (resolve.get()) curl_easy_setopt(h, CURLOPT_RESOLVE, resolve.get());
    // Large buffers only where bytes stream: 64 copies at once each hold a GET
    // and a PUT, and curl gives every handle its receive buffer up front (the
    // upload buffer only once it sends a body).
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, r.body_sink ? kBufferSize : kSmallBufferSize);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, kBufferSize);
    apply_tls(h, r.tls);

    bool upload = r.method == "PUT" || r.method == "POST" || r.method == "PATCH";
    if (r.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (r.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (upload) {
      t.upload_length = r.body_source ? r.body_source->length() : r.body_size();
      curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(h, CURLOPT_READDATA, &t);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
      if (r.method == "POST") {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.upload_length));
      } else {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t.upload_length));
        if (r.method == "PATCH") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
      }
      if (t.upload_length == 0) t.upload_finished = true;
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    for (const auto& line : r.headers) t.header_list.append(line);
    if (upload) t.header_list.append("Expect:");  // no 100-continue round trip
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, t.header_list.get());

    t.resp.url = r.url;
    Waker waker{&self, t.id};
    if (r.body_sink) r.body_sink->attach(waker);
    if (r.body_source) r.body_source->attach(waker);
    if (!check(curl_multi_add_handle(multi.get(), h), "curl_multi_add_handle")) {
      t.easy.reset();  // never added: nothing to remove
      abort_transfer(t.id, TransportError::Other, "curl_multi_add_handle failed");
      return;
    }
    if (t.req.on_started) t.req.on_started(t.id);
  }

  static void apply_tls(CURL* h, const TlsOptions& tls) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
    if (tls.verify && tls.trust) {
      // The host's store comes from HostTrust, built once per run: libcurl loads
      // no CA file or directory of its own (it would parse its bundle again for
      // every connection, having a default directory that disables its cache).
      curl_easy_setopt(h, CURLOPT_CAINFO, static_cast<char*>(nullptr));
      curl_easy_setopt(h, CURLOPT_CAPATH, static_cast<char*>(nullptr));
      curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
      curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, const_cast<HostTrust*>(tls.trust.get()));
    }
    if (!tls.client_cert.empty()) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, tls.client_cert.c_str());
      curl_easy_setopt(h, CURLOPT_SSLKEY, tls.client_key.c_str());
    }
  }

  void resume(TransferId id) {
    auto it = transfers.find(id);
    if (it == transfers.end() || !it->second->started || !it->second->easy) return;
    Transfer& t = *it->second;
    t.paused = false;
    t.last_activity = Clock::now();
    curl_easy_pause(t.easy.get(), CURLPAUSE_CONT);
  }

  void collect_finished() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      char* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      finish(reinterpret_cast<Transfer*>(priv)->id, msg->data.result);
    }
  }

  void abort_transfer(TransferId id, TransportError why, std::string message) {
    auto it = transfers.find(id);
    if (it == transfers.end()) return;
    it->second->forced = why;
    it->second->forced_message = std::move(message);
    finish(id, CURLE_ABORTED_BY_CALLBACK);
  }

  void cancel_everything() {
    std::vector<TransferId> ids;
    ids.reserve(transfers.size());
    for (const auto& [id, t] : transfers) ids.push_back(id);
    for (TransferId id : ids) abort_transfer(id, TransportError::Cancelled, "cancelled");
  }

  // The multi handle refused to drive transfers: end every started one so no
  // caller waits forever; queued ones try again on the next round.
  void fail_started(const std::string& why) {
    std::vector<TransferId> ids;
    for (const auto& [id, t] : transfers) {
      if (t->started) ids.push_back(id);
    }
    for (TransferId id : ids) abort_transfer(id, TransportError::Other, why);
  }

  void finish(TransferId id, CURLcode code) {
    auto node = transfers.extract(id);
    if (node.empty()) return;
    std::unique_ptr<Transfer> t = std::move(node.mapped());
    if (t->started) {
      if (t->easy) check(curl_multi_remove_handle(multi.get(), t->easy.get()), "curl_multi_remove_handle");
      --active_per_origin[t->origin];
      last_finish_per_origin[t->origin] = Clock::now();
      stat_in_flight.fetch_sub(1);
      long status = 0;
      long version = 0;
      if (t->easy) {
        curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(t->easy.get(), CURLINFO_HTTP_VERSION, &version);
      }
      t->resp.status = status;
      adapt_limit(*t, status, code);
      t->resp.http_version = version == CURL_HTTP_VERSION_2_0   ? 20
                             : version == CURL_HTTP_VERSION_1_0 ? 10
                             : version                          ? 11
                                                                : 0;
    } else {
      auto queued = std::find(queue.begin(), queue.end(), id);
      if (queued != queue.end()) {
        queue.erase(queued);
        stat_queued.fetch_sub(1);
      }
    }
    if (t->forced != TransportError::None) {
      t->resp.transport = t->forced;
      t->resp.transport_message = t->forced_message;
    } else {
      t->resp.transport = classify(code);
      if (code != CURLE_OK) t->resp.transport_message = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
    }
    stat_completed.fetch_add(1);
    Callback done = std::move(t->done);
    Response resp = std::move(t->resp);
    t.reset();  // release the handle and body buffers before the callback runs on
    if (done) done(std::move(resp));
  }

  void fire_timers(bool all) {
    auto now = Clock::now();
    while (!timers.empty() && (all || timers.top().due <= now)) {
      auto fn = std::move(const_cast<Timer&>(timers.top()).fn);
      timers.pop();
      fn();
    }
  }

  // Every transfer either moves bytes or ends within its stall limit: running,
  // paused by its other half (a streamed copy whose partner stopped), or queued
  // for a connection slot while no transfer to that origin gets anywhere.
  void watchdog() {
    auto now = Clock::now();
    if (now < next_watchdog) return;
    next_watchdog = now + kWatchdogPeriod;
    std::unordered_map<std::string, Clock::time_point> origin_progress = last_finish_per_origin;
    for (const auto& [id, t] : transfers) {
      if (!t->started) continue;
      auto& latest = origin_progress[t->origin];
      latest = std::max(latest, t->last_activity);
    }
    std::vector<std::pair<TransferId, std::string>> stalled;
    for (const auto& [id, t] : transfers) {
      auto limit = t->req.stall_limit;
      if (!t->started) {
        auto progress = origin_progress.find(t->origin);
        auto since = std::max(t->submitted, progress == origin_progress.end() ? t->submitted : progress->second);
        if (now - since > limit) {
          stalled.emplace_back(id, fmt::format("waited {:g} s for a connection slot while no transfer to the host "
                                               "moved (stall limit)",
                                               seconds(limit)));
        }
        continue;
      }
      if (t->paused) {
        if (now - t->last_activity > limit) {
          stalled.emplace_back(
              id, fmt::format("paused for {:g} s: its other half moved no data (stall limit)", seconds(limit)));
        }
        continue;
      }
      if (t->upload_finished && t->upload_length > 0) limit *= kCommitStallFactor;
      if (now - t->last_activity > limit) {
        stalled.emplace_back(id, fmt::format("no data moved for {:g} s (stall limit)", seconds(limit)));
      }
    }
    for (auto& [id, why] : stalled) abort_transfer(id, TransportError::Stalled, std::move(why));
  }

  static double seconds(std::chrono::milliseconds limit) { return static_cast<double>(limit.count()) / 1000.0; }

  std::vector<TransferInfo> describe() const {
    auto now = Clock::now();
    std::vector<TransferInfo> out;
    out.reserve(transfers.size());
    for (const auto& [id, t] : transfers) {
      TransferInfo info;
      info.id = id;
      info.method = t->req.method;
      info.url = url_for_log(t->req.url);
      info.age = std::chrono::duration_cast<std::chrono::milliseconds>(now - t->submitted);
      info.idle =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - (t->started ? t->last_activity : t->submitted));
      info.bytes_sent = t->resp.bytes_sent;
      info.bytes_received = t->resp.bytes_received;
      info.state = !t->started ? TransferInfo::State::Queued
                   : t->paused ? TransferInfo::State::Paused
                   : (t->upload_finished && t->upload_length > 0 && t->resp.headers.empty())
                       ? TransferInfo::State::AwaitingAnswer
                       : TransferInfo::State::Transferring;
      out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(), [](const TransferInfo& a, const TransferInfo& b) { return a.id < b.id; });
    return out;
  }
};

HttpEngine::HttpEngine(EngineOptions options) {
  init_curl_once();
  impl_ = std::make_unique<Impl>(*this, options);
  thread_ = std::thread([this] { impl_->run(); });
}

HttpEngine::~HttpEngine() {
  cancel_all();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->notify();
  thread_.join();
}

TransferId HttpEngine::submit(Request request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->id = impl_->next_id.fetch_add(1);
  t->origin = url_origin(request.url);
  if (t->origin.empty()) t->origin = request.url;
  t->req = std::move(request);
  t->done = std::move(done);
  t->submitted = Clock::now();
  TransferId id = t->id;
  if (t->req.on_queued) t->req.on_queued(id);
  impl_->stat_queued.fetch_add(1);
  {
    std::lock_guard lock(impl_->mutex);
    impl_->inbox_new.push_back(std::move(t));
  }
  impl_->notify();
  return id;
}

void HttpEngine::wake(TransferId id) {
  if (on_engine_thread()) {
    // A download waking its upload (or the reverse) inside a callback: the
    // loop picks it up before it next polls.
    impl_->local_wakes.push_back(id);
    return;
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->inbox_wake.push_back(id);
  }
  impl_->notify();
}

void HttpEngine::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->inbox_timers.push_back(Timer{Clock::now() + delay, impl_->next_timer_seq.fetch_add(1), std::move(fn)});
  }
  impl_->notify();
}

void HttpEngine::on_cancel(std::function<void()> hook) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->cancel_hooks.push_back(std::move(hook));
  }
  impl_->notify();
}

void HttpEngine::cancel_all() {
  cancelled_.store(true);
  impl_->notify();
}

std::map<std::string, OriginThrottle> HttpEngine::throttled() const {
  std::lock_guard lock(impl_->throttled_mutex);
  return impl_->throttled;
}

EngineStats HttpEngine::stats() const {
  return EngineStats{impl_->stat_requests.load(), impl_->stat_completed.load(), impl_->stat_in_flight.load(),
                     impl_->stat_queued.load()};
}

std::optional<std::vector<TransferInfo>> HttpEngine::snapshot(std::chrono::milliseconds timeout) {
  if (on_engine_thread()) return impl_->describe();
  auto promise = std::make_shared<std::promise<std::vector<TransferInfo>>>();
  auto future = promise->get_future();
  after(std::chrono::milliseconds(0), [this, promise] { promise->set_value(impl_->describe()); });
  if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

}  // namespace fastsync
