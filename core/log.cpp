#include "core/log.hpp"

#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
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
  // The date part changes once a second: format it once per second and
  // thread.
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[24];
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
    cached_secs = secs;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s.%03dZ", cached, static_cast<int>(ms));
  return buf;
}

line::line(log_level level, std::string_view event) {
  buf_.reserve(384);
  buf_ += "{\"ts\":\"";
  buf_ += timestamp();
  buf_ += "\",\"level\":\"";
  buf_ += level_name(level);
  buf_ += "\",\"event\":";
  append_json_string(buf_, event);
}

void line::key(std::string_view k) {
  buf_.push_back(',');
  append_json_string(buf_, k);
  buf_.push_back(':');
}

line& line::str(std::string_view k, std::string_view value) {
  key(k);
  append_json_string(buf_, value);
  return *this;
}

line& line::num(std::string_view k, uint64_t value) {
  key(k);
  buf_ += std::to_string(value);
  return *this;
}

line& line::millis(std::string_view k, std::chrono::microseconds value) {
  key(k);
  char out[32];
  auto us = value.count() < 0 ? 0 : value.count();
  std::snprintf(out, sizeof(out), "%lld.%03lld",
                static_cast<long long>(us / 1000),
                static_cast<long long>(us % 1000));
  buf_ += out;
  return *this;
}

line& line::null(std::string_view k) {
  key(k);
  buf_ += "null";
  return *this;
}

void line::write() {
  buf_ += "}\n";
  write_all(buf_);
}

void write(log_level level, std::string_view event,
           nlohmann::ordered_json fields) {
  if (!enabled(level))
    return;
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  doc["ts"] = timestamp();
  doc["level"] = level_name(level);
  doc["event"] = event;
  if (fields.is_object())
    for (auto& [k, v] : fields.items())
      doc[k] = std::move(v);
  // Replace invalid UTF-8 instead of throwing: a log line never kills a
  // request.
  auto text = json::dump(doc);
  text.push_back('\n');
  write_all(text);
}

} // namespace pw::log
