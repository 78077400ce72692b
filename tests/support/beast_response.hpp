#pragma once

// The one conversion of a Beast response into the tests' http_response,
// shared by the plain and the TLS clients.

#include "tests/support/http_client.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cctype>
#include <string>

namespace pw::test {

/// Moves `res` into an http_response, header names lower-cased.
inline http_response to_http_response(
  boost::beast::http::response<boost::beast::http::string_body>& res) {
  http_response out;
  out.status = res.result_int();
  for (const auto& field : res) {
    std::string name{field.name_string()};
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string{field.value()};
  }
  out.body = std::move(res.body());
  out.keep_alive = res.keep_alive();
  return out;
}

} // namespace pw::test
