#include "adapters/echo/provider.hpp"

#include "adapters/echo/echo_adapter.hpp"

namespace pw::adapters::echo {

namespace {

const adapter& serve(api_endpoint endpoint) {
  static const echo_adapter chat;
  static const echo_completions_adapter completions;
  static const echo_embeddings_adapter embeddings;
  static const echo_messages_adapter messages;
  static const echo_count_tokens_adapter count_tokens;
  switch (endpoint) {
  case api_endpoint::completions:
    return completions;
  case api_endpoint::embeddings:
    return embeddings;
  case api_endpoint::messages:
    return messages;
  case api_endpoint::count_tokens:
    return count_tokens;
  case api_endpoint::chat:
    break;
  }
  return chat;
}

} // namespace

const provider& echo_provider() {
  static const provider p = [] {
    provider out;
    out.name = "echo";
    out.local = true;
    out.default_model = "echo";
    out.endpoints = {api_endpoint::chat, api_endpoint::completions,
                     api_endpoint::embeddings, api_endpoint::messages,
                     api_endpoint::count_tokens};
    out.serve = &serve;
    return out;
  }();
  return p;
}

} // namespace pw::adapters::echo
