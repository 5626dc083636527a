#include "cli/progress.h"

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <deque>

namespace fastsync::cli {

void Console::log_line(const std::string& line) {
  std::lock_guard lock(mutex_);
  if (mode_ == ProgressMode::Live && !live_.empty()) std::fputs("\r\033[K", stderr);
  std::fputs(line.c_str(), stderr);
  if (line.empty() || line.back() != '\n') std::fputc('\n', stderr);
  if (mode_ == ProgressMode::Live && !live_.empty()) std::fputs(live_.c_str(), stderr);
  std::fflush(stderr);
}

void Console::status(const std::string& line) {
  std::lock_guard lock(mutex_);
  if (mode_ == ProgressMode::Quiet) return;
  if (mode_ == ProgressMode::Live) {
    live_ = line;
    std::fputs("\r\033[K", stderr);
    std::fputs(line.c_str(), stderr);
  } else {
    std::fputs(("fastsync: " + line + "\n").c_str(), stderr);
  }
  std::fflush(stderr);
}

void Console::clear_status() {
  std::lock_guard lock(mutex_);
  if (mode_ == ProgressMode::Live && !live_.empty()) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
  live_.clear();
}

namespace {

class ConsoleSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ConsoleSink(Console& console) : console_(console) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    console_.log_line(fmt::format("fastsync: {}{}", msg.level >= spdlog::level::warn ? "warning: " : "",
                                  std::string_view(msg.payload.data(), msg.payload.size())));
  }
  void flush_() override {}

 private:
  Console& console_;
};

}  // namespace

void install_logger(Console& console, bool verbose) {
  auto logger = std::make_shared<spdlog::logger>("fastsync", std::make_shared<ConsoleSink>(console));
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

std::string human_bytes(double bytes) {
  // Binary units, as the size flags take them (--archive-size 4000MiB).
  constexpr double kKiB = 1024.0, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  if (bytes >= kGiB) return fmt::format("{:.2f} GiB", bytes / kGiB);
  if (bytes >= kMiB) return fmt::format("{:.1f} MiB", bytes / kMiB);
  if (bytes >= kKiB) return fmt::format("{:.1f} KiB", bytes / kKiB);
  return fmt::format("{:.0f} B", bytes);
}

std::string human_duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  auto s = static_cast<long>(seconds);
  if (s < 3600) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}h{:02d}m", s / 3600, (s / 60) % 60);
}

ProgressReporter::ProgressReporter(Console& console, LiveCounters counters)
    : console_(console), counters_(std::move(counters)) {
  if (console_.mode() == ProgressMode::Quiet) return;
  thread_ = std::thread([this] {
    using namespace std::chrono;
    const auto period = console_.mode() == ProgressMode::Live ? milliseconds(250) : seconds(5);
    // Rate over the last few seconds, so it reacts to change but does not jitter.
    std::deque<std::pair<steady_clock::time_point, std::uint64_t>> window{{start_, counters_.bytes_moved()}};
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
      auto now = steady_clock::now();
      window.emplace_back(now, counters_.bytes_moved());
      while (window.size() > 2 && now - window.front().first > seconds(5)) window.pop_front();
      double span = duration<double>(window.back().first - window.front().first).count();
      double rate = span > 0 ? static_cast<double>(window.back().second - window.front().second) / span : 0;
      lock.unlock();
      console_.status(render(duration<double>(now - start_).count(), rate));
      lock.lock();
    }
  });
}

ProgressReporter::~ProgressReporter() { stop(); }

void ProgressReporter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  console_.clear_status();
}

std::string ProgressReporter::render(double seconds, double rate) {
  const auto& p = counters_.progress;
  std::uint64_t planned = p.bytes_planned.load();
  std::uint64_t done = p.bytes_done.load();
  std::string eta = "--";
  if (rate > 0 && planned > done) eta = human_duration(static_cast<double>(planned - done) / rate);
  std::uint64_t not_attempted = p.images_not_attempted.load();
  return fmt::format(
      "images {}/{} ({} copied, {} skipped, {} failed{}) | blobs {}/{} | {} of {} | {}/s | ETA {} | {} "
      "in flight | {}",
      p.images_finished(), p.images_total.load(), p.images_copied.load(), p.images_skipped.load(),
      p.images_failed.load(), not_attempted ? fmt::format(", {} not attempted", not_attempted) : std::string(),
      p.blobs_copied + p.blobs_mounted + p.blobs_present + p.blobs_failed + p.blobs_not_attempted, p.blobs_total.load(),
      human_bytes(static_cast<double>(counters_.bytes_moved())), human_bytes(static_cast<double>(planned)),
      human_bytes(rate), eta, counters_.transfers_in_flight(), human_duration(seconds));
}

}  // namespace fastsync::cli
