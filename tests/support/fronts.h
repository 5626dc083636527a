// Real fronts in front of a test registry, as production registries sit behind
// them: a Bearer-token gateway whose tokens expire (tests/servers/bearer_front.py)
// and nginx capping request bodies (client_max_body_size).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/registries.h"

namespace fastsync::testing {

class BearerFront {
 public:
  struct Options {
    std::string user = "bot:pw";
    double lifetime_seconds = 2;
    int advertised_seconds = 0;  // expires_in the token server sends (0: the lifetime)
    int refuse_every_put = 0;    // refuse every Nth blob PUT with a body as expired
    bool refuse_early = false;   // refuse before reading the body (and close), as distribution does
  };
  BearerFront(const TestRegistry& upstream, const TempDir& dir, const std::string& name, Options options);
  const std::string& host() const { return host_; }

  struct Entry {
    double time = 0;     // when the reply ended
    double arrived = 0;  // when the request arrived (token requests: = time)
    std::string method;
    std::string path;
    int status = 0;
    bool expired = false;  // refused because the token was too old
    long body = 0;         // bytes of request body read before a refusal
  };
  std::vector<Entry> entries() const;
  std::size_t tokens_issued() const;

 private:
  std::string log_;
  std::string host_;
  std::unique_ptr<Process> process_;
};

class NginxFront {
 public:
  // nginx on a free loopback port proxying to `upstream`, refusing request
  // bodies larger than `max_body` (nginx syntax: "4m").
  NginxFront(const TestRegistry& upstream, const TempDir& dir, const std::string& max_body);
  ~NginxFront();
  const std::string& host() const { return host_; }

  struct Entry {
    std::string method;
    std::string uri;
    int status = 0;
    long request_length = 0;
  };
  std::vector<Entry> entries() const;

 private:
  std::string prefix_;
  std::string host_;
  std::unique_ptr<Process> process_;
};

// tests/servers/fault_proxy.py in front of a plain-HTTP registry: rules inject
// faults (see the script), and every request is logged.
struct ProxyLogEntry {
  std::string method;
  std::string path;
  std::string range;
  std::string fault;
  double time = 0;      // arrived
  double ended = 0;     // answered (0: not yet)
  double answered = 0;  // its answer started out: the client had none of it before
  bool gated = false;   // a gate-body fault started holding its body (time: when)
  int status = 0;       // of the answer, once ended (0: none sent, a fault of its own)
};

class FaultProxy {
 public:
  // `options`: more of fault_proxy.py's arguments (--max-concurrent N, say).
  FaultProxy(const TestRegistry& upstream, const std::vector<std::string>& rules, const TempDir& dir,
             const std::string& name = "proxy", const std::vector<std::string>& options = {});
  const std::string& host() const { return host_; }
  // One per request, in order of arrival, with when it was answered; a gated
  // body adds an entry of its own.
  std::vector<ProxyLogEntry> entries() const;
  std::size_t faults(const std::string& action) const;

 private:
  std::string log_;
  std::string host_;
  std::unique_ptr<Process> process_;
};

}  // namespace fastsync::testing
