#include "core/log.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <unistd.h>

namespace pw::log {

namespace {

std::atomic<log_level> current_level{log_level::info};

std::string_view level_name(log_level level) {
  switch (level) {
  case log_level::debug:
    return "debug";
  case log_level::info:
    return "info";
  case log_level::warning:
    return "warning";
  case log_level::error:
    return "error";
  }
  return "info";
}

void write_all(std::string_view line) {
  while (!line.empty()) {
    auto n = ::write(STDOUT_FILENO, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return; // stdout is gone; losing a log line must not stop serving
    }
    line.remove_prefix(static_cast<size_t>(n));
  }
}

} // namespace

void set_level(log_level level) {
  current_level.store(level, std::memory_order_relaxed);
}

bool enabled(log_level level) {
  return level >= current_level.load(std::memory_order_relaxed);
}

std::string timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

void write(log_level level, std::string_view event,
           nlohmann::ordered_json fields) {
  if (!enabled(level))
    return;
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["ts"] = timestamp();
  line["level"] = level_name(level);
  line["event"] = event;
  if (fields.is_object())
    for (auto& [k, v] : fields.items())
      line[k] = std::move(v);
  // Replace invalid UTF-8 instead of throwing: a log line never kills a
  // request.
  auto text = line.dump(-1, ' ', false,
                        nlohmann::ordered_json::error_handler_t::replace);
  text.push_back('\n');
  write_all(text);
}

} // namespace pw::log
