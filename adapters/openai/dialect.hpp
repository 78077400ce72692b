#pragma once

// How an OpenAI-compatible provider differs from OpenAI's own API: where a
// request goes, how it carries credentials, what the health check asks,
// and the two fields the Messages translation names differently. The
// OpenAI adapters are built with one; `openai`, `vllm` and `ollama` here,
// `azure` and `gemini` in their own folders, each bring theirs.

#include "adapters/adapter.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace pw::adapters::openai {

class dialect {
public:
  virtual ~dialect();

  /// The path and query after the model's base path for OpenAI's path
  /// `api_path` (e.g. "/chat/completions"). Default: `api_path`.
  [[nodiscard]] virtual std::string path(const model_config& model,
                                         std::string_view api_path) const;

  /// Adds the credentials. Default: `Authorization: Bearer <api_key>`
  /// when the model has a key.
  virtual void add_credentials(upstream_request& out,
                               const model_config& model) const;

  /// The health check. Default: GET `{base_path}{path("/models")}`.
  [[nodiscard]] virtual std::optional<upstream_request>
  health_request(const model_config& model) const;

  /// The run-time credential (adapter::credential_request). Default:
  /// none.
  [[nodiscard]] virtual std::optional<caf::expected<upstream_request>>
  credential_request(const model_config& model) const;

  /// Reads the answer to credential_request.
  [[nodiscard]] virtual caf::expected<fetched_credential>
  credential_from(const upstream_result& result,
                  const model_config& model) const;

  /// The Messages translation sends `max_tokens` as
  /// `max_completion_tokens` (OpenAI's newer models take only that).
  [[nodiscard]] virtual bool max_completion_tokens() const { return false; }

  /// The Messages translation passes `top_k` on (vLLM reads it).
  [[nodiscard]] virtual bool top_k() const { return false; }
};

/// OpenAI's own API: max_completion_tokens.
const dialect& openai_dialect();

/// vLLM: top_k passed on.
const dialect& vllm_dialect();

/// Ollama: the health check asks Ollama's own `/api/tags`.
const dialect& ollama_dialect();

} // namespace pw::adapters::openai
