#pragma once

// The OpenAI-compatible providers of this folder: `openai`, `vllm` and
// `ollama` (chat, completions, embeddings, and Messages translated to
// chat).

#include "adapters/openai/messages_chat.hpp"
#include "adapters/openai/openai_adapter.hpp"
#include "adapters/provider.hpp"

namespace pw::adapters::openai {

const provider& openai_provider();
const provider& vllm_provider();
const provider& ollama_provider();

/// The endpoints an OpenAI-compatible server serves: chat, completions,
/// embeddings, and the Messages API translated to chat (none counts
/// tokens).
inline constexpr endpoint_set compatible_endpoints{
  api_endpoint::chat, api_endpoint::completions, api_endpoint::embeddings,
  api_endpoint::messages};

/// The OpenAI adapter for `endpoint` in dialect `D` (a stateless singleton
/// per dialect): for a provider's `serve`.
template <const dialect& (*D)()>
const adapter& serve_in(api_endpoint endpoint) {
  static const openai_adapter chat{D()};
  static const completions_adapter completions{D()};
  static const embeddings_adapter embeddings{D()};
  static const messages_chat_adapter messages{D()};
  switch (endpoint) {
  case api_endpoint::completions:
    return completions;
  case api_endpoint::embeddings:
    return embeddings;
  case api_endpoint::messages:
    return messages;
  case api_endpoint::chat:
  case api_endpoint::count_tokens:
    break;
  }
  return chat;
}

} // namespace pw::adapters::openai
