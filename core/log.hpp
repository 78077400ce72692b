#pragma once

// Structured logs: one JSON object per line on stdout, written with a single
// write(2) so lines from different threads never interleave. No locks.

#include "core/config.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pw::log {

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

  /// Writes the line (one write(2)); the builder is spent afterwards.
  void write();

private:
  void key(std::string_view k);

  std::string buf_;
};

/// The current UTC time as RFC 3339 with milliseconds.
std::string timestamp();

} // namespace pw::log
