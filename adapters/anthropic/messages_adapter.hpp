#pragma once

// Anthropic's Messages API inbound (POST /v1/messages and
// /v1/messages/count_tokens) to Anthropic models: passed through with only
// `model` set to the provider's id, answers and streams relayed with the
// alias. Also what every Messages answer shares: its stream of events made
// from a whole answer, and the error event of a failed stream.

#include "adapters/adapter.hpp"

namespace pw::adapters::anthropic {

/// POST /v1/messages to an `anthropic` model.
class messages_adapter final : public adapter {
public:
  // -- pw::adapters::adapter --------------------------------------------------

  [[nodiscard]] bool takes_anthropic_headers() const override { return true; }

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  /// The answer with `model` set to the alias, once it is an object whose
  /// `type` is "message" and whose `content` is a list; its usage (cache
  /// reads and writes count as prompt tokens).
  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  /// Relays Anthropic's events as they come, `message_start`'s model set
  /// to the alias.
  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;

  /// message_to_sse.
  [[nodiscard]] std::string
  whole_to_sse(std::string_view body,
               const stream_options& options) const override;
};

/// POST /v1/messages/count_tokens to an `anthropic` model.
class count_tokens_adapter final : public adapter {
public:
  // -- pw::adapters::adapter --------------------------------------------------

  [[nodiscard]] bool takes_anthropic_headers() const override { return true; }

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  /// The answer as it came, once it is an object with an integer
  /// `input_tokens` (the prompt tokens).
  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  /// Never called: counting does not stream.
  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;
};

/// A whole Anthropic message turned into the events of its stream
/// (message_start, one content block per block with its delta,
/// message_delta, message_stop), each with its `event:` line.
std::string message_to_sse(std::string_view message,
                           const stream_options& options);

/// The `event: error` that ends a failed Messages stream: Anthropic's
/// error object, its type `type` when it is one of Anthropic's, else
/// "timeout_error" for a timeout and "api_error" for anything else.
std::string messages_error_event(std::string_view message,
                                 std::string_view type);

/// Makes the relaying decoder (tests).
std::unique_ptr<stream_decoder> make_relay_decoder(model_config_ptr model,
                                                   stream_options options);

} // namespace pw::adapters::anthropic
