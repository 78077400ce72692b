// Fuzz target: the request parser path of the io threads, bytes to request
// object. Beast's parser reads the head (as http/server.cpp configures it),
// then core/request/request_head.cpp judges it; a head that passes has its body
// read with the same limits.

#include "core/request/request_head.hpp"

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(false);
  boost::asio::const_buffer input{data, size};
  boost::beast::error_code ec;
  size_t used = 0;
  while (!parser.is_header_done() && used < size) {
    auto n = parser.put(boost::asio::buffer(input + used), ec);
    if (ec == bhttp::error::need_more)
      return 0; // the io thread would wait for more bytes
    if (ec)
      return 0; // the io thread answers 4xx and closes
    if (n == 0)
      return 0;
    used += n;
  }
  if (!parser.is_header_done())
    return 0;
  const auto& header = parser.get();
  pw::request_head head;
  head.version = header.version();
  head.method_known = header.method() != bhttp::verb::unknown;
  head.target = header.target();
  for (const auto& f : header)
    head.fields.emplace_back(f.name_string(), f.value());
  if (pw::check_request_head(head))
    return 0;
  parser.eager(true);
  while (!parser.is_done() && used < size) {
    auto n = parser.put(boost::asio::buffer(input + used), ec);
    if (ec || n == 0)
      return 0;
    used += n;
  }
  return 0;
}
