// Child processes for tests: one-shot commands with captured output, and
// background servers stopped when their owner goes out of scope.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace fastsync::testing {

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Runs argv to completion (no shell) and captures stdout/stderr.
CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {});

class Process {
 public:
  // Starts argv with stdout on a pipe (for a READY line), or into `stdout_path`
  // when given, and stderr into `log_path`.
  Process(std::vector<std::string> argv, std::string log_path, const std::vector<std::string>& extra_env = {},
          const std::string& stdout_path = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Reads stdout lines until one starts with "READY"; returns its key=value pairs.
  // Throws if the process exits or `timeout` passes first.
  std::map<std::string, std::string> wait_ready(std::chrono::seconds timeout = std::chrono::seconds(20));
  void signal(int sig);
  // Waits for exit; returns the exit code (128+N when killed by signal N).
  int wait();
  bool running();
  // SIGTERM, then SIGKILL if it lingers.
  void stop();
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string log_path_;
  std::string pending_;
  bool exited_ = false;
  int exit_code_ = -1;
};

// A directory removed with its contents when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "fastsync-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

int free_port(const char* address = "127.0.0.1");
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
std::string source_dir();
std::string binary_dir();
// Path to a built tool, e.g. tool_path("fastsync").
std::string tool_path(const std::string& name);

}  // namespace fastsync::testing
