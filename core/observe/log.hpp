#pragma once

// Structured logs: one JSON object per line on stdout. Once the writer runs
// (start_writer), a thread that logs only queues its line on a queue of its
// own; one writer thread drains every queue and writes the lines in
// batches. A stalled stdout (a log pipe nobody reads) therefore never
// blocks a thread that serves requests: when its queue is full the line is
// dropped and counted (dropped(), pw_router_log_lines_dropped_total), and
// the writer logs the count once stdout moves again. No locks: each queue
// has one producer and one consumer. Before start_writer and after
// stop_writer, lines are written at once, each with one write(2).

#include "core/config/config.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pw::log {

/// Starts the writer thread (once; the gateway does it before its io and
/// actor threads exist).
void start_writer();

/// Writes what is queued and stops the writer thread (at exit).
void stop_writer();

/// Lines dropped because their thread's queue was full.
uint64_t dropped();

/// Sets the lowest level that is written (from `logging.level`).
void set_level(log_level level);

/// True if lines at `level` are written.
bool enabled(log_level level);

/// Writes `fields` as one line, adding "ts" and "level" first. Values must
/// never contain secrets: callers pass names, never keys.
void write(log_level level, std::string_view event,
           nlohmann::ordered_json fields);

/// Builds one log line field by field, without a JSON document: the
/// per-request line uses it. Starts with "ts", "level" and "event".
class line {
public:
  line(log_level level, std::string_view event);

  line& str(std::string_view key, std::string_view value);
  line& num(std::string_view key, uint64_t value);
  line& millis(std::string_view key, std::chrono::microseconds value);
  line& null(std::string_view key);

  /// Writes the line (queues it, once the writer runs); the builder is
  /// spent afterwards.
  void write();

  /// The finished line, ending in '\n'; the builder is spent afterwards.
  std::string finish();

private:
  void key(std::string_view k);

  std::string buf_;
};

/// The current UTC time as RFC 3339 with milliseconds.
std::string timestamp();

/// `at` in the same format.
std::string timestamp(std::chrono::system_clock::time_point at);

} // namespace pw::log
