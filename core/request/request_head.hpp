#pragma once

// Checks on a request's head that the HTTP parser does not make, against
// request smuggling and for the limits with their own statuses. Pure code:
// the io thread fills a request_head from the parsed header, the fuzz and
// unit tests fill it by hand.

#include <caf/error.hpp>

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace pw {

/// The request line and header fields as received.
struct request_head {
  /// 10 for HTTP/1.0, 11 for HTTP/1.1.
  unsigned version = 11;
  /// False when the method is not one HTTP defines.
  bool method_known = true;
  std::string_view target;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
};

/// Longest request target (path and query) accepted: 414 beyond.
constexpr size_t max_target_bytes = 8192;

/// Most header fields accepted: 431 beyond.
constexpr size_t max_header_fields = 100;

/// Returns an error for a head the gateway must not serve, or an empty
/// error:
/// - `invalid_request` (400, and the connection closes) for anything that
///   could smuggle a request: more than one Content-Length or one with a
///   list or non-digits, a Transfer-Encoding other than exactly one
///   `chunked` (or any on HTTP/1.0), both framing headers at once; and for
///   HTTP/1.1 without exactly one Host;
/// - `headers_too_large` (431) for more than max_header_fields fields;
/// - `uri_too_long` (414) for a target longer than max_target_bytes;
/// - `not_implemented` (501) for a method HTTP does not define.
caf::error check_request_head(const request_head& head);

} // namespace pw
