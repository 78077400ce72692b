#pragma once

// A `POST /v1/messages` request (Anthropic's Messages API, inbound), or a
// `POST /v1/messages/count_tokens`: the shape check an io thread runs on
// the raw body before anything else. The body then travels as a
// chat_payload does (bytes as received, document on first use).

#include <caf/expected.hpp>

#include <string>
#include <string_view>

namespace pw {

/// What the shape check learns about a Messages body.
struct messages_summary {
  /// The `model` field ("" when absent or null).
  std::string model;
  bool stream = false;
};

/// Checks a Messages body: read by the JSON layer under
/// json::client_limits, then its shape: an object; `model` a string or
/// null; `max_tokens` an integer from 1 to 10^9 (required unless
/// `count_tokens`); `messages` a non-empty list of objects whose `role` is
/// "user" or "assistant" and whose `content` is a string or a list of
/// objects with a string `type`; `system` a string or such a list; `stream`
/// a boolean or null; `temperature` and `top_p` from 0 to 1; `top_k` an
/// integer from 0 to 10^9; `stop_sequences` a list of strings; `tools` a
/// list of objects. Errors are `invalid_request` with the field as
/// `param_of` (in Anthropic's dotted form, e.g. "messages.0.role").
caf::expected<messages_summary>
check_messages_request(std::string_view body, bool count_tokens = false);

} // namespace pw
