#pragma once

// The provider adapter interface: pure translators between the API a
// client called (OpenAI's chat completions, text completions, embeddings,
// or Anthropic's Messages API: one adapter per endpoint and provider) and
// a provider's wire format. Adapters never
// touch sockets; the SESSION hands what they build to an io thread through
// upstream_fn.

#include "core/config/config.hpp"
#include "core/json/reader.hpp"
#include "core/request/chat_request.hpp"
#include "core/request/exchange.hpp"
#include "core/request/stream.hpp"

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pw::adapters {

/// A completed chat answer: an OpenAI chat.completion as JSON text, plus
/// its token usage.
struct chat_response {
  std::string body;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  /// Of the prompt tokens, those the provider read from its prompt cache
  /// (OpenAI's `prompt_tokens_details.cached_tokens`, Anthropic's
  /// `cache_read_input_tokens`): priced at `cached_input`.
  uint64_t cached_tokens = 0;
};

/// A credential fetched at run time (an OAuth access token): the MODEL
/// actor fetches it off the request path and renews it before it expires
/// (model_config::access_token).
struct fetched_credential {
  redacted_string token;
  std::chrono::seconds lifetime{0};
};

class adapter {
public:
  virtual ~adapter();

  /// True if the provider answers inside the gateway (no upstream call).
  [[nodiscard]] virtual bool local() const { return false; }

  /// Answers a request inside the gateway (local providers only).
  virtual caf::expected<chat_response>
  respond_locally(const chat_payload& request, const model_config& model,
                  std::string_view request_id) const;

  /// Builds the provider request for an OpenAI chat completion request.
  virtual caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const = 0;

  /// Translates a 2xx provider answer into the client's format (for chat
  /// an OpenAI chat.completion) whose `model` is the alias. Error
  /// `upstream_invalid` if it is malformed.
  virtual caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const = 0;

  /// The provider's cheap liveness request (never a chat request), or
  /// nullopt when there is nothing to check (local providers).
  [[nodiscard]] virtual std::optional<upstream_request>
  health_request(const model_config& model) const;

  /// The request that fetches the model's run-time credential, or nullopt
  /// when its credentials are static (a key, or none). An error when it
  /// cannot be built (an unreadable token file, ...): the MODEL retries.
  /// Asked of the provider's chat adapter (adapter_for(model)).
  [[nodiscard]] virtual std::optional<caf::expected<upstream_request>>
  credential_request(const model_config& model) const;

  /// Reads the answer to credential_request; an error says why it is not
  /// a credential, without the answer's secrets.
  [[nodiscard]] virtual caf::expected<fetched_credential>
  credential_from(const upstream_result& result,
                  const model_config& model) const;

  /// Makes the translator for a streamed answer (`"stream": true`).
  virtual std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model, stream_options options) const = 0;

  /// Whether the client's `anthropic-version` and `anthropic-beta` headers
  /// go upstream (Anthropic's own API only).
  [[nodiscard]] virtual bool takes_anthropic_headers() const { return false; }

  /// A whole answer in the client's format (a local one, or one a provider
  /// sent whole although a stream was asked for) as the events of a
  /// stream. Default: a chat.completion (completion_to_sse).
  [[nodiscard]] virtual std::string
  whole_to_sse(std::string_view body, const stream_options& options) const;
};

/// Returns the chat adapter of the model's provider (adapters are
/// stateless singletons); its health_request serves every endpoint of the
/// model.
const adapter& adapter_for(const model_config& model);

/// Returns the adapter that serves `endpoint` on the model's provider (the
/// config loader lets a model declare only endpoints its provider can
/// serve: provider_spec::endpoints). A provider missing from the registry
/// (a model built by hand in a test) gets the OpenAI adapters.
const adapter& adapter_for(const model_config& model, api_endpoint endpoint);

/// The same by provider name (`endpoint` chat by default).
const adapter& adapter_for(std::string_view provider,
                           api_endpoint endpoint = api_endpoint::chat);

/// Maps a finished upstream exchange that is not a 2xx answer to the error
/// the client gets: 429 relayed with Retry-After; 400/401/403/404/409/413/
/// 422 and other 4xx relayed with the provider's message (scrubbed of the
/// model's key; 401/403 get a generic message because they concern the
/// gateway's credentials); connect/TLS/timeout/protocol failures, 408, 3xx
/// and 5xx become `upstream_failed` (502). Never echoes secrets.
api_error upstream_error(const upstream_result& result,
                         const model_config& model);

/// `text` with the model's key (and access token) replaced by "***", cut to
/// `max` bytes on a UTF-8 boundary: for any provider text relayed to a client.
std::string scrubbed(std::string text, const model_config& model,
                     size_t max = 2000);

/// True if `result` is a failure that counts against the model (breaker):
/// transport failures, timeouts, 408, 429, 5xx, unexpected 1xx/3xx.
bool is_model_failure(const upstream_result& result);

/// A JSON POST to `path` under the model's base_url, with its timeouts and
/// CA file; the adapter adds the credentials.
upstream_request json_post(const model_config& model, std::string_view path,
                           std::string body);

/// A GET of `path` (the whole path, on the model's host) that accepts JSON,
/// with the model's CA file and connect timeout; for health checks. The
/// adapter adds the credentials, the caller the check's timeouts.
upstream_request json_get(const model_config& model, std::string path);

/// `text`, a checked JSON object read as `root`, with its top-level
/// `model` set to `alias`: the bytes spliced, or (when a top-level key is
/// escaped) the document re-serialised.
std::string with_alias(std::string_view text, simdjson::dom::element root,
                       std::string_view alias);

/// The `upstream_invalid` error of an answer that is not what the
/// provider's API promises: "The upstream provider for model '<alias>'
/// returned a malformed response (<why>)".
caf::error malformed_answer(const model_config& model, std::string_view why);

/// The base64 of `v` as little-endian float32s (OpenAI's `base64`
/// encoding_format).
std::string base64_floats(const std::vector<float>& v);

/// The request body with `model` set to the provider's id: the received
/// bytes with one field spliced when possible, else the document
/// re-serialised (without copying it).
std::string body_with_model(const chat_payload& request,
                            std::string_view model);

} // namespace pw::adapters
