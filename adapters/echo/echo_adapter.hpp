#pragma once

// The built-in `echo` provider: answers inside the gateway with an OpenAI
// chat.completion that repeats the last user message. It lets a fresh
// checkout run without any provider key, and gives benchmarks a zero-cost
// upstream.

#include "adapters/adapter.hpp"

namespace pw::adapters::echo {

class echo_adapter final : public adapter {
public:
  // -- pw::adapters::adapter --------------------------------------------------

  [[nodiscard]] bool local() const override { return true; }

  caf::expected<chat_response>
  respond_locally(const chat_payload& request, const model_config& model,
                  std::string_view request_id) const override;

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  /// Never called: a local answer is streamed whole (completion_to_sse).
  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;
};

/// The text of a message's `content`: the string itself, or the `text` parts
/// of an array of parts joined by newlines.
std::string message_text(const nlohmann::ordered_json& message);

/// A rough token count (about four characters per token, at least one for
/// non-empty text), used for the echo provider's `usage`.
uint64_t estimate_tokens(std::string_view text);

} // namespace pw::adapters::echo
