#pragma once

// An incremental parser for server-sent events (the WHATWG event-stream
// format): bytes in, complete events out, whatever the byte boundaries.

#include <string>
#include <string_view>
#include <vector>

namespace pw::adapters {

struct sse_event {
  /// The `event:` field; empty when the event has none.
  std::string event;
  /// The `data:` lines joined with '\n'.
  std::string data;
};

class sse_parser {
public:
  /// Events (and lines) larger than this are an error: a stream cannot make
  /// the gateway buffer without bound.
  static constexpr size_t default_max_event_bytes = 1024 * 1024;

  explicit sse_parser(size_t max_event_bytes = default_max_event_bytes)
      : max_(max_event_bytes) {
    // nop
  }

  /// Feeds the next bytes of the stream and appends every event completed
  /// by them to `out`. Lines end with "\r\n", "\n" or "\r", also split
  /// across calls. Returns false once an event exceeds the limit (the
  /// parser then stays failed).
  bool feed(std::string_view bytes, std::vector<sse_event>& out);

  /// True if bytes of an unfinished event are buffered.
  [[nodiscard]] bool pending() const { return !line_.empty() || has_fields_; }

private:
  void take_line(std::vector<sse_event>& out);

  size_t max_;
  std::string line_;
  sse_event current_;
  bool has_data_ = false;
  bool has_fields_ = false;
  bool last_was_cr_ = false;
  bool started_ = false;
  bool failed_ = false;
};

} // namespace pw::adapters
