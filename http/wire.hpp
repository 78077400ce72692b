#pragma once

// A whole HTTP message with a string body, put on the wire as one gather
// write of at most three buffers: its head (start line and fields), its
// body, and for a chunked body the chunk framing. The bytes are those
// Beast's serializer writes (tests/unit/http/wire_test.cpp compares them;
// for an empty chunked body Beast adds an empty chunk, which this does
// not); the serializer itself spent about 20,000 instructions on each
// small message, a tenth of a request's (docs/performance.md, "Fewer
// frames per stream, the wire form, answers written as text").

#include "core/json/text.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <string>
#include <string_view>

namespace pw::http {

/// The wire form of one message. It refers to the message's body: the
/// message must outlive the write.
struct wire_message {
  /// Start line, fields and the empty line; for a chunked body with
  /// bytes, the size line of its one chunk too.
  std::string head;
  std::string_view body;
  /// For a chunked body: the end of its chunk and the last chunk.
  std::string_view tail;

  [[nodiscard]] std::array<boost::asio::const_buffer, 3> buffers() const {
    return {boost::asio::buffer(head), boost::asio::buffer(body),
            boost::asio::buffer(tail)};
  }
};

namespace detail {

inline void append_version(std::string& out, unsigned version) {
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10 % 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
}

} // namespace detail

/// The wire form of a message of head `h` and body `body` (chunked if
/// `chunked`, as one chunk): the fields as they are, in their order (the
/// length set first, as for Beast's serializer). `body` must outlive the
/// write.
template <bool isRequest, class Fields>
wire_message to_wire(const boost::beast::http::header<isRequest, Fields>& h,
                     std::string_view body, bool chunked) {
  wire_message w;
  auto& head = w.head;
  head.reserve(256);
  if constexpr (isRequest) {
    head += h.method_string();
    head += ' ';
    head += h.target();
    head += ' ';
    detail::append_version(head, h.version());
  } else {
    detail::append_version(head, h.version());
    head += ' ';
    append_integer(head, h.result_int());
    head += ' ';
    head += h.reason();
  }
  head += "\r\n";
  for (const auto& f : h) {
    head += f.name_string();
    head += ": ";
    head += f.value();
    head += "\r\n";
  }
  head += "\r\n";
  w.body = body;
  if (chunked) {
    if (!body.empty()) {
      append_integer(head, body.size(), 16);
      head += "\r\n";
      w.tail = "\r\n0\r\n\r\n";
    } else {
      w.tail = "0\r\n\r\n";
    }
  }
  return w;
}

/// The wire form of `msg` (prepare_payload() called, or its length set).
template <bool isRequest>
wire_message to_wire(
  const boost::beast::http::message<isRequest, boost::beast::http::string_body>&
    msg) {
  return to_wire(msg.base(), msg.body(), msg.chunked());
}

/// What prepare_payload() sets on a request whose body is `size` bytes:
/// a Content-Length for a body and for the methods that always carry one
/// (POST, PUT, OPTIONS), else no chunked coding. For a request sent with
/// to_wire(head, body, false) without copying its body into a message.
inline void set_payload_length(
  boost::beast::http::request<boost::beast::http::empty_body>& req,
  size_t size) {
  using boost::beast::http::verb;
  auto m = req.method();
  if (size > 0 || m == verb::options || m == verb::put || m == verb::post)
    req.content_length(size);
  else
    req.chunked(false);
}

} // namespace pw::http
