#pragma once

// The OpenAI adapters, also used for every OpenAI-compatible API (vLLM,
// Ollama, Azure OpenAI, Gemini), each through its dialect: the request
// passes through with `model` set to the provider's id; the answer passes
// through with `model` set to the alias. One for chat completions, one for
// text completions, one for embeddings.

#include "adapters/openai/dialect.hpp"

namespace pw::adapters::openai {

class openai_adapter final : public adapter {
public:
  explicit openai_adapter(const dialect& d = openai_dialect()) : dialect_(d) {}

  // -- pw::adapters::adapter --------------------------------------------------

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

  [[nodiscard]] std::optional<caf::expected<upstream_request>>
  credential_request(const model_config& model) const override;

  [[nodiscard]] caf::expected<fetched_credential>
  credential_from(const upstream_result& result,
                  const model_config& model) const override;

private:
  const dialect& dialect_;
};

/// POST /v1/completions (legacy text completions), passed through to the
/// dialect's path for it (`{base_url}/completions` for OpenAI); streams
/// relayed chunk by chunk as for chat.
class completions_adapter final : public adapter {
public:
  explicit completions_adapter(const dialect& d = openai_dialect())
      : dialect_(d) {}

  // -- pw::adapters::adapter --------------------------------------------------

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  /// The answer with `model` set to the alias, once it is an object whose
  /// `choices` is a list of objects; its usage.
  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;

  /// text_completion_to_sse.
  [[nodiscard]] std::string
  whole_to_sse(std::string_view body,
               const stream_options& options) const override;

private:
  const dialect& dialect_;
};

/// POST /v1/embeddings, passed through to the dialect's path for it
/// (`{base_url}/embeddings` for OpenAI).
class embeddings_adapter final : public adapter {
public:
  explicit embeddings_adapter(const dialect& d = openai_dialect())
      : dialect_(d) {}

  // -- pw::adapters::adapter --------------------------------------------------

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  /// The answer with `model` set to the alias, once it is an embeddings
  /// list (an object whose `data` is a list of objects); its
  /// `usage.prompt_tokens` as the prompt tokens.
  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  /// Never called: embeddings do not stream.
  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;

private:
  const dialect& dialect_;
};

} // namespace pw::adapters::openai
