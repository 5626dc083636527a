#include "tests/support/fronts.h"

#include <rapidjson/document.h>

#include <sstream>
#include <stdexcept>
#include <thread>

namespace fastsync::testing {

BearerFront::BearerFront(const TestRegistry& upstream, const TempDir& dir, const std::string& name, Options options)
    : log_(dir.file(name + ".jsonl")) {
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   source_dir() + "/tests/servers/bearer_front.py",
                                   "--upstream",
                                   upstream.host(),
                                   "--user",
                                   options.user,
                                   "--lifetime",
                                   std::to_string(options.lifetime_seconds),
                                   "--log",
                                   log_};
  if (options.refuse_early) argv.push_back("--refuse-early");
  if (options.refuse_every_put > 0) {
    argv.push_back("--refuse-every-put");
    argv.push_back(std::to_string(options.refuse_every_put));
  }
  if (options.advertised_seconds > 0) {
    argv.push_back("--expires");
    argv.push_back(std::to_string(options.advertised_seconds));
  }
  write_file(log_, "");
  process_ = std::make_unique<Process>(argv, dir.file(name + ".err"));
  host_ = "127.0.0.1:" + process_->wait_ready().at("port");
}

std::vector<BearerFront::Entry> BearerFront::entries() const {
  std::vector<Entry> out;
  std::istringstream in(read_file(log_));
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || !d.IsObject()) continue;
    Entry e;
    e.time = d["time"].GetDouble();
    e.arrived = d.HasMember("arrived") ? d["arrived"].GetDouble() : e.time;
    e.method = d["method"].GetString();
    e.path = d["path"].GetString();
    e.status = d["status"].GetInt();
    if (d.HasMember("expired")) e.expired = d["expired"].GetBool();
    if (d.HasMember("body")) e.body = d["body"].GetInt64();
    out.push_back(std::move(e));
  }
  return out;
}

std::size_t BearerFront::tokens_issued() const {
  std::size_t n = 0;
  for (const auto& e : entries()) n += e.path == "/token" && e.status == 200;
  return n;
}

NginxFront::NginxFront(const TestRegistry& upstream, const TempDir& dir, const std::string& max_body)
    : prefix_(dir.file("nginx")) {
  run_command({"mkdir", "-p", prefix_ + "/logs", prefix_ + "/tmp"});
  int port = free_port();
  host_ = "127.0.0.1:" + std::to_string(port);
  std::ostringstream conf;
  conf << "worker_processes 1;\n"
       << "error_log " << prefix_ << "/logs/error.log warn;\n"
       << "pid " << prefix_ << "/nginx.pid;\n"
       << "events { worker_connections 1024; }\n"
       << "http {\n"
       << "  log_format fronted escape=json '{\"method\":\"$request_method\",\"uri\":\"$request_uri\","
          "\"status\":$status,\"request_length\":$request_length}';\n"
       << "  access_log " << prefix_ << "/logs/access.log fronted;\n"
       << "  client_body_temp_path " << prefix_ << "/tmp/body;\n"
       << "  proxy_temp_path " << prefix_ << "/tmp/proxy;\n"
       << "  fastcgi_temp_path " << prefix_ << "/tmp/fastcgi;\n"
       << "  uwsgi_temp_path " << prefix_ << "/tmp/uwsgi;\n"
       << "  scgi_temp_path " << prefix_ << "/tmp/scgi;\n"
       << "  server {\n"
       << "    listen 127.0.0.1:" << port << ";\n"
       << "    client_max_body_size " << max_body << ";\n"
       << "    location / {\n"
       << "      proxy_pass http://" << upstream.host() << ";\n"
       << "      proxy_set_header Host $http_host;\n"
       << "      proxy_http_version 1.1;\n"
       << "      proxy_request_buffering off;\n"
       << "      proxy_buffering off;\n"
       << "      proxy_read_timeout 600s;\n"
       << "    }\n"
       << "  }\n"
       << "}\n";
  write_file(prefix_ + "/nginx.conf", conf.str());
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"nginx", "-p", prefix_, "-c", prefix_ + "/nginx.conf", "-g", "daemon off;"},
      prefix_ + "/logs/stderr.log");
  // Ready once it answers (a proxied /v2/ from the registry behind it).
  for (int i = 0; i < 200; ++i) {
    auto r = run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://" + host_ + "/v2/"});
    if (r.out == "200" || r.out == "401") return;
    if (!process_->running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // readiness poll interval
  }
  throw std::runtime_error("nginx did not start: " + read_file(prefix_ + "/logs/stderr.log") +
                           read_file(prefix_ + "/logs/error.log"));
}

NginxFront::~NginxFront() { process_.reset(); }

std::vector<NginxFront::Entry> NginxFront::entries() const {
  std::vector<Entry> out;
  std::istringstream in(read_file(prefix_ + "/logs/access.log"));
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || !d.IsObject()) continue;
    out.push_back(
        Entry{d["method"].GetString(), d["uri"].GetString(), d["status"].GetInt(), d["request_length"].GetInt64()});
  }
  return out;
}

FaultProxy::FaultProxy(const TestRegistry& upstream, const std::vector<std::string>& rules, const TempDir& dir,
                       const std::string& name, const std::vector<std::string>& options)
    : log_(dir.file(name + ".jsonl")) {
  std::vector<std::string> argv = {
      "/usr/bin/python3", source_dir() + "/tests/servers/fault_proxy.py", "--upstream", upstream.host(), "--log", log_};
  for (const auto& r : rules) {
    argv.push_back("--rule");
    argv.push_back(r);
  }
  argv.insert(argv.end(), options.begin(), options.end());
  write_file(log_, "");
  process_ = std::make_unique<Process>(argv, dir.file(name + ".err"));
  host_ = "127.0.0.1:" + process_->wait_ready().at("port");
}

std::vector<ProxyLogEntry> FaultProxy::entries() const {
  std::vector<ProxyLogEntry> out;
  std::istringstream in(read_file(log_));
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (d.HasParseError() || !d.IsObject()) continue;
    if (d.HasMember("end")) {
      // The answer to the latest request like it still unanswered.
      for (auto it = out.rbegin(); it != out.rend(); ++it) {
        if (it->ended == 0 && !it->gated && it->method == d["method"].GetString() &&
            it->path == d["path"].GetString() && it->range == (d["range"].IsString() ? d["range"].GetString() : "")) {
          it->ended = d["time"].GetDouble();
          if (d.HasMember("answered")) it->answered = d["answered"].GetDouble();
          if (d.HasMember("status")) it->status = d["status"].GetInt();
          break;
        }
      }
      continue;
    }
    ProxyLogEntry e;
    e.method = d["method"].GetString();
    e.path = d["path"].GetString();
    if (d["range"].IsString()) e.range = d["range"].GetString();
    if (d["fault"].IsString()) e.fault = d["fault"].GetString();
    e.gated = d.HasMember("gated");
    e.time = d["time"].GetDouble();
    out.push_back(std::move(e));
  }
  return out;
}

std::size_t FaultProxy::faults(const std::string& action) const {
  std::size_t n = 0;
  for (const auto& e : entries()) n += e.fault == action && !e.gated;
  return n;
}

}  // namespace fastsync::testing
