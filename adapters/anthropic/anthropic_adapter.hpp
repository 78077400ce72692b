#pragma once

// The Anthropic adapter: OpenAI chat completions <-> Anthropic Messages,
// requests, answers and streams.

#include "adapters/adapter.hpp"
#include "core/json/reader.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace pw::adapters::anthropic {

class anthropic_adapter final : public adapter {
public:
  // -- pw::adapters::adapter --------------------------------------------------

  [[nodiscard]] bool takes_anthropic_headers() const override { return true; }

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;

  std::optional<upstream_request>
  health_request(const model_config& model) const override;
};

/// Translates an OpenAI chat request document into an Anthropic Messages
/// request body (without `model`'s transport details). Errors are
/// `invalid_request` with the OpenAI field as `param`.
caf::expected<nlohmann::ordered_json>
to_messages_request(const nlohmann::ordered_json& request,
                    const model_config& model);

/// The usual OpenAI chat request (system, developer, user and assistant
/// messages with string content, no tools, stop sequences or `n`), read
/// from its bytes without a document: what the Anthropic and the Bedrock
/// adapters write their requests from. Its views point into the `view` it
/// was read from.
struct simple_chat {
  struct turn {
    std::string_view role;
    std::string_view text;
  };
  /// The system and developer texts that are not empty, in order.
  std::vector<std::string_view> system;
  /// The user and assistant texts that are not empty, in order (turns of
  /// the same role not merged yet).
  std::vector<turn> turns;
  /// `max_completion_tokens`, else `max_tokens`, else the model's default.
  uint64_t max_tokens = 0;
  std::optional<simdjson::dom::element> temperature;
  std::optional<simdjson::dom::element> top_p;
  /// `user`, when it is a string.
  std::optional<simdjson::dom::element> user;
  bool stream = false;
};

/// `request` as a simple_chat, or nothing for a request only the document
/// form translates (or refuses).
std::optional<simple_chat> read_simple_chat(simdjson::dom::element request,
                                            const model_config& model);

/// A number or string of a request, written as json::dump() writes the
/// document it would have become.
void append_scalar(std::string& out, simdjson::dom::element value);

/// The Anthropic Messages request body for the usual OpenAI chat request
/// (system, developer, user and assistant messages with string content, no
/// tools, stop sequences or `n`), written straight from `body`: the same
/// bytes as `json::dump(*to_messages_request(document of body, model))`.
/// Nothing for any other request, which goes through the document.
std::optional<std::string> simple_messages_request(std::string_view body,
                                                   const model_config& model);

/// What an OpenAI chat.completion is written from: the parts of an
/// Anthropic (or Converse) answer.
struct completion_parts {
  /// The answer's id (written after "chatcmpl-").
  std::string_view id;
  std::string text;
  bool has_text = false;
  /// The elements of `tool_calls`, comma-separated (append_tool_call).
  std::string tool_calls;
  std::string_view finish_reason;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t cached_tokens = 0;
};

/// Appends one element of `tool_calls` (its arguments the JSON text of
/// `input`, `{}` without one) to `calls`.
void append_tool_call(std::string& calls, std::string_view id,
                      std::string_view name,
                      std::optional<simdjson::dom::element> input);

/// The chat.completion of `parts`, under the model's alias.
chat_response write_chat_completion(const completion_parts& parts,
                                    const model_config& model, int64_t created);

/// Translates an Anthropic Messages answer into an OpenAI chat.completion
/// body with its token counts (`created` given, so tests are
/// deterministic).
caf::expected<chat_response> to_chat_completion(simdjson::dom::element message,
                                                const model_config& model,
                                                int64_t created);

/// Adds the API version every request carries, and the model's key when it
/// has one.
void add_version_and_key(upstream_request& out, const model_config& model);

/// Anthropic's `stop_reason` as an OpenAI `finish_reason`.
std::string_view finish_reason_of(std::string_view stop_reason);

/// Makes a stream decoder with a fixed `created` (tests).
std::unique_ptr<stream_decoder>
make_decoder(model_config_ptr model, stream_options options, int64_t created);

} // namespace pw::adapters::anthropic
