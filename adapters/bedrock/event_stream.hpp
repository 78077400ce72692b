#pragma once

// AWS's binary event-stream framing (application/vnd.amazon.eventstream),
// as Bedrock's ConverseStream sends it: each message is a 12-byte prelude
// (total length, headers length, CRC-32 of those 8 bytes), the headers,
// the payload and a CRC-32 of everything before it. Bytes arrive split
// anywhere; a length out of bounds or a CRC that does not match fails the
// decoder for good.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pw::adapters::bedrock {

/// One decoded message: its string headers (`:event-type`,
/// `:message-type`, `:exception-type`, `:content-type`, ...) and payload.
struct event_message {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;

  /// The value of string header `name`, or "".
  [[nodiscard]] std::string_view header(std::string_view name) const;
};

class event_stream_decoder {
public:
  /// A message (prelude, headers, payload and CRC) longer than this fails
  /// the stream: 16 MiB, AWS's own limit.
  static constexpr uint32_t max_message = 16 * 1024 * 1024;

  /// Takes `bytes`, appends every message they complete to `out`. Returns
  /// false once the stream is broken (error() says why).
  bool feed(std::string_view bytes, std::vector<event_message>& out);

  [[nodiscard]] bool failed() const { return !error_.empty(); }

  [[nodiscard]] const std::string& error() const { return error_; }

  /// Bytes held for a message not complete yet.
  [[nodiscard]] size_t pending() const { return buffer_.size(); }

private:
  bool fail(std::string why);

  std::string buffer_;
  std::string error_;
};

/// Encodes one message with string headers (for tests and fakes).
std::string
encode_event(const std::vector<std::pair<std::string, std::string>>& headers,
             std::string_view payload);

/// The CRC-32 (IEEE 802.3) of `data`.
uint32_t crc32_of(std::string_view data);

} // namespace pw::adapters::bedrock
