// Fuzz target: arbitrary bytes as the JSON a client nests in a string, a
// tool call's `function.arguments`, in a request checked like any body and
// translated for an Anthropic model (which parses the arguments into
// `tool_use.input` and serialises the result).

#include "adapters/anthropic/anthropic_adapter.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"
#include "core/request/chat_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view arguments{reinterpret_cast<const char*>(data), size};
  std::string body
    = R"({"model":"m","messages":[{"role":"user","content":"q"},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"t",)"
      R"("type":"function","function":{"name":"f","arguments":)";
  pw::append_json_string(body, arguments);
  body += R"(}}]},{"role":"tool","tool_call_id":"t","content":"r"}]})";
  if (!pw::check_chat_request(body))
    return 0;
  pw::chat_payload payload{body};
  pw::model_config model;
  model.alias = "m";
  model.model = "upstream";
  if (auto out
      = pw::adapters::anthropic::to_messages_request(payload.json(), model))
    pw::json::dump(*out);
  return 0;
}
