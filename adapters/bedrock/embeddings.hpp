#pragma once

// OpenAI embeddings on Bedrock (InvokeModel): a `POST /v1/embeddings`
// request as an Amazon Titan Text Embeddings or a Cohere Embed request,
// and their answers as OpenAI's embeddings list (floats, or base64 when
// the client asked for it). What does not map cleanly is refused with the
// field that does not: token ids (both take text), more than one input
// for Titan (it embeds one text per call), more than 96 for Cohere,
// dimensions a model cannot give, an input_type Cohere does not know.

#include "adapters/adapter.hpp"

#include <string>
#include <string_view>

namespace pw::adapters::bedrock {

/// The embedding models the translation knows, by their model id.
enum class embedding_family { none, titan, cohere };

/// `titan` for an id with "titan-embed", `cohere` for one with
/// "cohere.embed" (inference profiles and ARNs included), else `none`.
embedding_family embedding_family_of(std::string_view model_id);

/// Most inputs Cohere Embed takes in one request.
constexpr size_t max_cohere_inputs = 96;

/// Bedrock's count of the input tokens of an InvokeModel call: Cohere's
/// answer has none in its body.
inline constexpr std::string_view input_tokens_header
  = "x-amzn-bedrock-input-token-count";

/// Serves POST /v1/embeddings for a bedrock model.
class embeddings_adapter final : public adapter {
public:
  // -- pw::adapters::adapter --------------------------------------------------

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override;

  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override;

  /// Never called: embeddings do not stream.
  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override;

  [[nodiscard]] std::optional<upstream_request>
  health_request(const model_config&) const override {
    return std::nullopt;
  }
};

/// The InvokeModel body for an embeddings request (a document that passed
/// check_embeddings_request) to the model `model_id`. Titan:
/// `{"inputText", "dimensions"}` (dimensions for Text Embeddings V2 only:
/// 256, 512 or 1024); Cohere: `{"texts", "input_type",
/// "output_dimension"}` (the request's `input_type`, one of Cohere's four,
/// else "search_document"; dimensions for Embed v4 only). Errors are
/// `invalid_request` with the field.
caf::expected<std::string>
to_invoke_request(const nlohmann::ordered_json& request,
                  std::string_view model_id);

/// A Titan or Cohere answer as an OpenAI embeddings list under the
/// model's alias, the vectors as base64 float32s when `base64`; the prompt
/// tokens from Titan's `inputTextTokenCount`, else `header_tokens`.
/// `upstream_invalid` when it holds no vectors, or (`inputs` > 0) not one
/// per input.
caf::expected<chat_response> to_embeddings_list(std::string_view body,
                                                const model_config& model,
                                                bool base64, size_t inputs,
                                                uint64_t header_tokens);

} // namespace pw::adapters::bedrock
