#pragma once

// A parsed and checked `POST /v1/chat/completions` request, and the context
// an io thread hands to a SESSION.

#include "core/config.hpp"

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace pw {

/// Deepest JSON nesting a request may have; deeper input is rejected before
/// the parser sees it, so no input can exhaust the stack.
constexpr size_t max_json_depth = 64;

/// Returns false if `text` nests arrays/objects deeper than `limit`. Runs in
/// one linear pass and skips string contents.
bool json_depth_ok(std::string_view text, size_t limit = max_json_depth);

/// Parses a chat completion request body and checks its shape: an object;
/// `model` a string or absent/null; `messages` a non-empty list of objects
/// with a string `role`; `stream` a boolean if present. Errors are
/// `invalid_request` with OpenAI's wording and the field as `param_of`.
caf::expected<nlohmann::ordered_json> parse_chat_request(std::string_view body);

/// Everything a SESSION needs to serve one chat request.
struct chat_context {
  std::string request_id;
  /// The key's `name`.
  std::string client;
  /// Index of the key in `server.api_keys` of the current config.
  size_t key_index = 0;
  nlohmann::ordered_json body;
  /// The `model` the client asked for ("" = none).
  std::string requested_model;
  bool stream = false;
  /// Set by pre plugins; empty until the plugin work lands.
  std::vector<std::string> tags;
  std::chrono::steady_clock::time_point received;
};

} // namespace pw
