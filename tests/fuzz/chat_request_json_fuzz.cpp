// Fuzz target: the body checks the io threads run on every request to a
// model (chat, completions, embeddings, messages, count_tokens), then what a
// valid body goes through: for chat the translations (the Anthropic and the
// Bedrock Converse requests' fast paths held to the document form's bytes);
// for each endpoint the echo
// model's answer as the client gets it (whole and as a stream).

#include "adapters/adapter.hpp"
#include "adapters/anthropic/anthropic_adapter.hpp"
#include "adapters/bedrock/converse.hpp"
#include "core/json/reader.hpp"
#include "core/request/chat_request.hpp"
#include "core/request/completions_request.hpp"
#include "core/request/embeddings_request.hpp"
#include "core/request/messages_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

/// The echo model's answer to a checked body of `endpoint`, whole and as a
/// stream.
void echo_answer(std::string_view body, pw::api_endpoint endpoint) {
  pw::chat_payload payload{std::string{body}};
  pw::model_config model;
  model.alias = "m";
  model.provider = "echo";
  const auto& echo = pw::adapters::adapter_for("echo", endpoint);
  if (auto answer = echo.respond_locally(payload, model, "req"))
    (void)echo.whole_to_sse(answer->body, {"m", true, "req"});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body{reinterpret_cast<const char*>(data), size};
  if (pw::check_completions_request(body))
    echo_answer(body, pw::api_endpoint::completions);
  if (pw::check_embeddings_request(body))
    echo_answer(body, pw::api_endpoint::embeddings);
  if (pw::check_messages_request(body))
    echo_answer(body, pw::api_endpoint::messages);
  if (pw::check_messages_request(body, true))
    echo_answer(body, pw::api_endpoint::count_tokens);
  auto summary = pw::check_chat_request(body);
  if (!summary)
    return 0;
  pw::chat_payload payload{std::string{body}};
  pw::model_config model;
  model.alias = "m";
  model.model = "upstream";
  pw::adapters::body_with_model(payload, "upstream-id");
  auto out
    = pw::adapters::anthropic::to_messages_request(payload.json(), model);
  if (out)
    pw::json::dump(*out);
  // The usual request's fast path writes the document form's bytes, or
  // leaves the request to it.
  if (auto quick
      = pw::adapters::anthropic::simple_messages_request(body, model))
    if (!out || *quick != pw::json::dump(*out))
      __builtin_trap();
  // So does Bedrock's: the Converse body from the bytes is the one from
  // the Anthropic document.
  if (auto read = pw::json::read(body, pw::json::client_limits))
    if (auto simple
        = pw::adapters::anthropic::read_simple_chat(read->root(), model)) {
      if (!out)
        __builtin_trap();
      auto converse = pw::adapters::bedrock::to_converse(*out);
      if (!converse
          || pw::adapters::bedrock::simple_converse_request(*simple)
               != pw::json::dump(*converse))
        __builtin_trap();
    }
  echo_answer(body, pw::api_endpoint::chat);
  return 0;
}
