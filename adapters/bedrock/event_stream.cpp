#include "adapters/bedrock/event_stream.hpp"

#include <boost/crc.hpp>

namespace pw::adapters::bedrock {

namespace {

constexpr size_t prelude_size = 12;
constexpr size_t crc_size = 4;

uint32_t read_u32(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 24)
         | (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16)
         | (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8)
         | static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

uint16_t read_u16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(
    (static_cast<unsigned>(static_cast<unsigned char>(b[at])) << 8)
    | static_cast<unsigned>(static_cast<unsigned char>(b[at + 1])));
}

void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

/// The size of a header value of `type` at `at` (after the type byte), or
/// 0 when it does not fit in `h` or the type is unknown.
size_t value_size(std::string_view h, size_t at, unsigned type) {
  switch (type) {
  case 0: // true
  case 1: // false
    return 0;
  case 2: // byte
    return 1;
  case 3: // short
    return 2;
  case 4: // int
    return 4;
  case 5: // long
  case 8: // timestamp
    return 8;
  case 6: // bytes
  case 7: // string
    return at + 2 <= h.size() ? 2 + size_t{read_u16(h, at)} : SIZE_MAX;
  case 9: // uuid
    return 16;
  default:
    return SIZE_MAX;
  }
}

/// Reads the headers block; false when it is malformed.
bool read_headers(std::string_view h, event_message& out) {
  size_t at = 0;
  while (at < h.size()) {
    auto name_len = static_cast<unsigned char>(h[at]);
    ++at;
    if (name_len == 0 || at + name_len + 1 > h.size())
      return false;
    std::string name{h.substr(at, name_len)};
    at += name_len;
    auto type = static_cast<unsigned char>(h[at]);
    ++at;
    auto size = value_size(h, at, type);
    if (size == SIZE_MAX || at + size > h.size())
      return false;
    if (type == 7)
      out.headers.emplace_back(std::move(name),
                               std::string{h.substr(at + 2, size - 2)});
    at += size;
  }
  return true;
}

} // namespace

std::string_view event_message::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name)
      return v;
  return {};
}

uint32_t crc32_of(std::string_view data) {
  boost::crc_32_type crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

bool event_stream_decoder::fail(std::string why) {
  error_ = std::move(why);
  buffer_.clear();
  return false;
}

bool event_stream_decoder::feed(std::string_view bytes,
                                std::vector<event_message>& out) {
  if (failed())
    return false;
  buffer_.append(bytes);
  std::string_view b = buffer_;
  size_t used = 0;
  while (b.size() - used >= prelude_size) {
    auto msg = b.substr(used);
    auto total = read_u32(msg, 0);
    auto headers_len = read_u32(msg, 4);
    if (read_u32(msg, 8) != crc32_of(msg.substr(0, 8)))
      return fail("an event-stream prelude failed its CRC check");
    if (total > max_message)
      return fail("an event-stream message exceeds 16 MiB");
    if (total < prelude_size + crc_size
        || headers_len > total - prelude_size - crc_size)
      return fail("an event-stream message has impossible lengths");
    if (msg.size() < total)
      break;
    if (read_u32(msg, total - crc_size)
        != crc32_of(msg.substr(0, total - crc_size)))
      return fail("an event-stream message failed its CRC check");
    event_message m;
    if (!read_headers(msg.substr(prelude_size, headers_len), m))
      return fail("an event-stream message has malformed headers");
    auto payload_at = prelude_size + headers_len;
    m.payload.assign(msg.substr(payload_at, total - crc_size - payload_at));
    out.push_back(std::move(m));
    used += total;
  }
  buffer_.erase(0, used);
  return true;
}

std::string
encode_event(const std::vector<std::pair<std::string, std::string>>& headers,
             std::string_view payload) {
  std::string h;
  for (const auto& [name, value] : headers) {
    h.push_back(static_cast<char>(name.size()));
    h += name;
    h.push_back(7);
    h.push_back(static_cast<char>(value.size() >> 8));
    h.push_back(static_cast<char>(value.size() & 0xff));
    h += value;
  }
  auto total = static_cast<uint32_t>(prelude_size + h.size() + payload.size()
                                     + crc_size);
  std::string out;
  put_u32(out, total);
  put_u32(out, static_cast<uint32_t>(h.size()));
  put_u32(out, crc32_of(out));
  out += h;
  out.append(payload);
  put_u32(out, crc32_of(out));
  return out;
}

} // namespace pw::adapters::bedrock
