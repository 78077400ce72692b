#pragma once

// A `POST /v1/completions` request (legacy text completions): the shape
// check an io thread runs on the raw body before anything else. The body
// then travels as a chat_payload does (bytes as received, document on
// first use).

#include <caf/expected.hpp>

#include <string>
#include <string_view>

namespace pw {

/// What the shape check learns about a completions body.
struct completions_summary {
  /// The `model` field ("" when absent or null).
  std::string model;
  bool stream = false;
  /// `stream_options.include_usage`.
  bool include_usage = false;
  /// `prompt` holds token ids rather than text: no plugin can read it.
  bool token_input = false;
};

/// Checks a completions body: read by the JSON layer under
/// json::client_limits, then its shape: an object; `model` a string or
/// null; `prompt` a string (empty too), or a list of 1 to 2048 items that
/// are all strings, all token ids or all non-empty lists of token ids;
/// `suffix` a string or null; `stream` a boolean or null; the sampling
/// fields numbers in range. Errors are `invalid_request` with the field as
/// `param_of`.
caf::expected<completions_summary>
check_completions_request(std::string_view body);

} // namespace pw
