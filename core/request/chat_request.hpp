#pragma once

// A `POST /v1/chat/completions` request: the shape check an io thread runs
// on the raw body, the body itself (parsed only when someone needs the
// document), and the context an io thread hands to a SESSION.

#include "core/config/config.hpp"
#include "core/json/limits.hpp"
#include "core/request/exchange.hpp"

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pw {

/// What the shape check learns about a request body.
struct chat_summary {
  /// The `model` field ("" when absent or null).
  std::string model;
  bool stream = false;
  /// `stream_options.include_usage`.
  bool include_usage = false;
};

/// Checks a chat completion body: read by the JSON layer under
/// json::client_limits (valid JSON and UTF-8, bounded, no duplicate key
/// anywhere), then its shape: an object; `model` a string or null;
/// `messages` a non-empty list of objects with one of the five roles and a
/// string, parts or (assistant only) null `content`; `stream` a boolean or
/// null; the sampling fields numbers in range. Errors are
/// `invalid_request` with OpenAI's wording and the field as `param_of`.
caf::expected<chat_summary> check_chat_request(std::string_view body);

/// A chat request body: the bytes as received, and the parsed document on
/// first use. Owned by one SESSION at a time.
class chat_payload {
public:
  chat_payload() = default;

  explicit chat_payload(std::string raw) : raw_(std::move(raw)) {
    // nop
  }

  /// A body changed by a plugin: sent re-serialised.
  explicit chat_payload(std::shared_ptr<const nlohmann::ordered_json> doc)
      : doc_(std::move(doc)) {
    // nop
  }

  /// The body as received; empty once the document was changed.
  [[nodiscard]] const std::string& raw() const { return raw_; }

  /// The parsed document, read under the same limits as
  /// check_chat_request: for a body that passed it this cannot fail (a
  /// body that did not gives an empty object).
  [[nodiscard]] const nlohmann::ordered_json& json() const;

  /// The parsed document, shared (plugins read it without a copy).
  [[nodiscard]] std::shared_ptr<const nlohmann::ordered_json> shared() const;

  /// The document for changing: `raw()` is empty afterwards.
  nlohmann::ordered_json& mutable_json();

private:
  std::string raw_;
  mutable std::shared_ptr<const nlohmann::ordered_json> doc_;
};

/// Everything a SESSION needs to serve one request to a model: a chat, or
/// another API (`endpoint`) that goes through the same stages.
struct chat_context {
  std::string request_id;
  /// The API called.
  api_endpoint endpoint = api_endpoint::chat;
  /// The input is token ids, not text (an embeddings `input`, a completions
  /// `prompt`): no plugin can read it,
  /// so a request with pre plugins configured is refused.
  bool token_input = false;
  /// The key's `name`.
  std::string client;
  /// Index of the key in `server.api_keys` of the current config.
  size_t key_index = 0;
  chat_payload body;
  /// The `model` the client asked for ("" = none).
  std::string requested_model;
  bool stream = false;
  bool include_usage = false;
  /// Headers of the client's request passed on to the provider (Messages
  /// API: `anthropic-version`, `anthropic-beta`), replacing the adapter's.
  std::vector<header_field> forward_headers;
  /// The client's W3C trace context headers, kept when `tracing` is on.
  std::string traceparent;
  std::string tracestate;
  /// Routing tags, set by pre plugins.
  std::vector<std::string> tags;
  std::chrono::steady_clock::time_point received;
  /// When the client stops waiting (server.request_deadline_seconds):
  /// no attempt starts after it, and none runs past it.
  std::chrono::steady_clock::time_point deadline;
};

} // namespace pw
