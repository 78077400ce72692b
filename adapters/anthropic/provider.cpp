#include "adapters/anthropic/provider.hpp"

#include "adapters/anthropic/anthropic_adapter.hpp"
#include "adapters/anthropic/messages_adapter.hpp"

namespace pw::adapters::anthropic {

namespace {

const adapter& serve(api_endpoint endpoint) {
  static const anthropic_adapter chat;
  static const messages_adapter messages;
  static const count_tokens_adapter count_tokens;
  switch (endpoint) {
  case api_endpoint::messages:
    return messages;
  case api_endpoint::count_tokens:
    return count_tokens;
  case api_endpoint::chat:
  case api_endpoint::completions:
  case api_endpoint::embeddings:
    break;
  }
  return chat;
}

} // namespace

const provider& anthropic_provider() {
  static const provider p = [] {
    provider out;
    out.name = "anthropic";
    out.default_base_url = "https://api.anthropic.com";
    out.endpoints = {api_endpoint::chat, api_endpoint::messages,
                     api_endpoint::count_tokens};
    out.serve = &serve;
    return out;
  }();
  return p;
}

} // namespace pw::adapters::anthropic
