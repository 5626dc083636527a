#include "registry/transfer/cpu_room.h"

#include <sys/resource.h>

#include <fstream>
#include <string>

namespace fastsync {

CpuRoom::CpuRoom() : last_(read()) {}

CpuRoom::Reading CpuRoom::read() {
  Reading r;
  r.at = std::chrono::steady_clock::now();
  // "cpu user nice system idle iowait irq softirq steal ...", every CPU's ticks
  if (std::ifstream stat("/proc/stat"); stat) {
    std::string cpu;
    std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    if (stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal && cpu == "cpu") {
      r.busy_ticks = user + nice + system + irq + softirq + steal;
      r.all_ticks = r.busy_ticks + idle + iowait;
    }
  }
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    r.process_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  }
  return r;
}

bool CpuRoom::window_had_room() {
  Reading now = read();
  Reading then = last_;
  last_ = now;
  double window = std::chrono::duration<double>(now.at - then.at).count();
  if (window <= 0) return false;
  if (now.process_seconds - then.process_seconds > kProcessCores * window) return false;
  if (now.all_ticks <= then.all_ticks) return false;  // no tick yet: nothing tells
  return static_cast<double>(now.busy_ticks - then.busy_ticks) <
         kBusyShare * static_cast<double>(now.all_ticks - then.all_ticks);
}

}  // namespace fastsync
