#pragma once

// Anthropic's Messages API inbound (POST /v1/messages) to an
// OpenAI-compatible model (`openai`, `vllm`, `ollama`, `azure`, `gemini`):
// the request
// translated into a chat completion request, the answer and its stream
// translated back into Anthropic's message and events. What has no
// counterpart is refused with a clear error when dropping it would change
// the answer (server tools, MCP servers, documents), and dropped when it
// would not (`thinking`, `cache_control`, `top_k` but for vLLM):
// adapters/README.md lists both.

#include "adapters/openai/dialect.hpp"

namespace pw::adapters::openai {

/// POST /v1/messages to an OpenAI-compatible model.
class messages_chat_adapter final : public adapter {
public:
  explicit messages_chat_adapter(const dialect& d = openai_dialect())
      : dialect_(d) {}

  /// to_chat_request in this adapter's dialect.
  [[nodiscard]] caf::expected<nlohmann::ordered_json>
  chat_request(const nlohmann::ordered_json& request,
               const model_config& model) const;

  // -- pw::adapters::adapter --------------------------------------------------

  /// to_chat_request, sent to `<base_url>/chat/completions`.
  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  /// to_anthropic_message.
  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  /// make_messages_decoder.
  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;

  /// anthropic::message_to_sse.
  [[nodiscard]] std::string
  whole_to_sse(std::string_view body,
               const stream_options& options) const override;

private:
  const dialect& dialect_;
};

/// Translates a Messages request document (one that passed
/// check_messages_request) into a chat completion request body for
/// `model` in `dialect` (max_tokens or max_completion_tokens, top_k).
/// Errors are `invalid_request` with the Messages field as
/// `param` (e.g. `messages.2.content.0.type`).
caf::expected<nlohmann::ordered_json>
to_chat_request(const nlohmann::ordered_json& request, const dialect& dialect,
                const model_config& model);

/// Translates a chat.completion into an Anthropic message whose `model` is
/// the alias, with its token counts (prompt tokens include cached ones).
/// `fallback_id` names the message when the answer has no `id`. Error
/// `upstream_invalid` when the answer is not a chat.completion or a tool
/// call's arguments are not a JSON object.
caf::expected<chat_response>
to_anthropic_message(simdjson::dom::element completion,
                     const model_config& model, std::string_view fallback_id);

/// Makes the decoder that turns OpenAI chunks into Anthropic events
/// (message_start at the first chunk; one content block per text run or
/// tool call; message_delta with the stop reason and usage, then
/// message_stop, at `[DONE]`).
std::unique_ptr<stream_decoder> make_messages_decoder(model_config_ptr model,
                                                      stream_options options);

/// Anthropic's stop reason for an OpenAI finish reason.
std::string_view stop_reason_of(std::string_view finish_reason);

} // namespace pw::adapters::openai
