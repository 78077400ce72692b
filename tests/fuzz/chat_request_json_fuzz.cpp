// Fuzz target: the chat request shape check the io threads run on every
// body, then the translations a valid body goes through (the Anthropic
// request's fast path held to the document form's bytes), and the echo
// model's answer to it as the client gets it (whole and as a stream).

#include "adapters/adapter.hpp"
#include "adapters/anthropic/anthropic_adapter.hpp"
#include "core/json/reader.hpp"
#include "core/request/chat_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body{reinterpret_cast<const char*>(data), size};
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
  model.provider = pw::provider_kind::echo;
  const auto& echo = pw::adapters::adapter_for(pw::provider_kind::echo);
  if (auto answer = echo.respond_locally(payload, model, "req"))
    pw::completion_to_sse(answer->body, {"m", true, "req"});
  return 0;
}
