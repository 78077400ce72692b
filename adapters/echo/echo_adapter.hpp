#pragma once

// The built-in `echo` provider: answers inside the gateway with an OpenAI
// chat.completion that repeats the last user message. It lets a fresh
// checkout run without any provider key, and gives benchmarks a zero-cost
// upstream.

#include "adapters/adapter.hpp"

#include <vector>

namespace pw::adapters::echo {

/// What every echo adapter shares: it answers inside the gateway, so it
/// makes no upstream request, reads no upstream answer, and streams its
/// answer whole (whole_to_sse).
class local_adapter : public adapter {
public:
  // -- pw::adapters::adapter --------------------------------------------------

  [[nodiscard]] bool local() const override { return true; }

  /// Error `internal`: never called for a local provider.
  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  /// Error `internal`: never called for a local provider.
  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  /// Nothing: never called for a local provider.
  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;
};

/// POST /v1/chat/completions on the echo provider.
class echo_adapter final : public local_adapter {
public:
  caf::expected<chat_response>
  respond_locally(const chat_payload& request, const model_config& model,
                  std::string_view request_id) const override;
};

/// POST /v1/completions on the echo provider: a text_completion with one
/// choice per prompt, whose text is the prompt (token ids as their JSON
/// text).
class echo_completions_adapter final : public local_adapter {
public:
  caf::expected<chat_response>
  respond_locally(const chat_payload& request, const model_config& model,
                  std::string_view request_id) const override;

  /// text_completion_to_sse.
  [[nodiscard]] std::string
  whole_to_sse(std::string_view body,
               const stream_options& options) const override;
};

/// POST /v1/messages on the echo provider: an Anthropic message whose one
/// text block is the text of the last user message.
class echo_messages_adapter final : public local_adapter {
public:
  caf::expected<chat_response>
  respond_locally(const chat_payload& request, const model_config& model,
                  std::string_view request_id) const override;

  /// anthropic::message_to_sse.
  [[nodiscard]] std::string
  whole_to_sse(std::string_view body,
               const stream_options& options) const override;
};

/// POST /v1/messages/count_tokens on the echo provider: the estimate of
/// the text of `system` and every message.
class echo_count_tokens_adapter final : public local_adapter {
public:
  caf::expected<chat_response>
  respond_locally(const chat_payload& request, const model_config& model,
                  std::string_view request_id) const override;
};

/// POST /v1/embeddings on the echo provider: deterministic unit vectors,
/// the same for the same input, so `make run` can show the endpoint and
/// tests can check what reaches the model.
class echo_embeddings_adapter final : public local_adapter {
public:
  /// One vector per input (`dimensions` long, 16 by default), as floats
  /// or, with `encoding_format: "base64"`, as base64 of little-endian
  /// float32s; `usage.prompt_tokens` estimated (token ids counted).
  caf::expected<chat_response>
  respond_locally(const chat_payload& request, const model_config& model,
                  std::string_view request_id) const override;
};

/// The echo vector of `input` (a text, or the JSON text of a token list):
/// `dimensions` numbers drawn from SHA-256 of the input and a counter,
/// scaled to unit length.
std::vector<float> echo_vector(std::string_view input, uint32_t dimensions);

/// adapters::base64_floats, where the echo tests look for it.
using adapters::base64_floats;

/// The text of a message's `content`: the string itself, or the `text` parts
/// of an array of parts joined by newlines.
std::string message_text(const nlohmann::ordered_json& message);

/// A rough token count (about four characters per token, at least one for
/// non-empty text), used for the echo provider's `usage`.
uint64_t estimate_tokens(std::string_view text);

} // namespace pw::adapters::echo
