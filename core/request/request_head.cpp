#include "core/request/request_head.hpp"

#include "core/errc.hpp"
#include "core/request/exchange.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace pw {

namespace {

std::string_view trimmed(std::string_view x) {
  while (!x.empty() && (x.front() == ' ' || x.front() == '\t'))
    x.remove_prefix(1);
  while (!x.empty() && (x.back() == ' ' || x.back() == '\t'))
    x.remove_suffix(1);
  return x;
}

caf::error smuggling(std::string why) {
  return make_error(errc::invalid_request,
                    "Malformed HTTP request: " + std::move(why));
}

} // namespace

caf::error check_request_head(const request_head& head) {
  if (!head.method_known)
    return make_error(errc::not_implemented,
                      "The request method is not supported");
  if (head.target.size() > max_target_bytes)
    return make_error(errc::uri_too_long, "The request target exceeds "
                                            + std::to_string(max_target_bytes)
                                            + " bytes");
  if (head.fields.size() > max_header_fields)
    return make_error(errc::headers_too_large,
                      "The request has more than "
                        + std::to_string(max_header_fields) + " header fields");
  size_t lengths = 0;
  size_t encodings = 0;
  size_t hosts = 0;
  for (const auto& [name, value] : head.fields) {
    if (iequals(name, "Content-Length")) {
      ++lengths;
      auto v = trimmed(value);
      if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) {
            return c >= '0' && c <= '9';
          }))
        return smuggling("Content-Length must be one decimal number");
    } else if (iequals(name, "Transfer-Encoding")) {
      ++encodings;
      if (!iequals(trimmed(value), "chunked"))
        return smuggling("the only Transfer-Encoding accepted is chunked");
    } else if (iequals(name, "Host")) {
      ++hosts;
    }
  }
  if (lengths > 1)
    return smuggling("more than one Content-Length");
  if (encodings > 1)
    return smuggling("more than one Transfer-Encoding");
  if (lengths > 0 && encodings > 0)
    return smuggling("both Content-Length and Transfer-Encoding");
  if (encodings > 0 && head.version < 11)
    return smuggling("Transfer-Encoding in an HTTP/1.0 request");
  if (head.version >= 11 && hosts != 1)
    return make_error(errc::invalid_request,
                      "An HTTP/1.1 request needs exactly one Host header");
  return {};
}

} // namespace pw
