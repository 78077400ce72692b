#pragma once

// The Anthropic adapter: OpenAI chat completions <-> Anthropic Messages,
// requests, answers and streams.

#include "adapters/adapter.hpp"
#include "core/json/reader.hpp"

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

/// The Anthropic Messages request body for the usual OpenAI chat request
/// (system, developer, user and assistant messages with string content, no
/// tools, stop sequences or `n`), written straight from `body`: the same
/// bytes as `json::dump(*to_messages_request(document of body, model))`.
/// Nothing for any other request, which goes through the document.
std::optional<std::string> simple_messages_request(std::string_view body,
                                                   const model_config& model);

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
