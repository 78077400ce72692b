// Fuzz target: Anthropic's Messages API inbound and its translation for
// an OpenAI-compatible model. The first byte picks the part; the rest is
// its input:
// - a Messages request body: the io thread's check, then the translation
//   into a chat completion request for openai and vllm, whose bytes must
//   read back as one JSON object;
// - a provider's chat.completion: the translation into an Anthropic
//   message, which must read back as a message object, and on into its
//   stream of events.
// The stream's translation has its own target (messages_stream_fuzz).

#include "adapters/anthropic/messages_adapter.hpp"
#include "adapters/openai/messages_chat.hpp"
#include "core/json/reader.hpp"
#include "core/request/messages_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace pw;

model_config_ptr model_of(std::string provider) {
  auto m = std::make_shared<model_config>();
  m->alias = "m";
  m->model = "upstream";
  m->provider = provider;
  m->api_key = redacted_string{"sk-fuzz-key"};
  return m;
}

void require(bool ok) {
  if (!ok)
    __builtin_trap();
}

void request(std::string_view body) {
  if (!check_messages_request(body))
    return;
  chat_payload payload{std::string{body}};
  for (auto provider : {"openai", "vllm"}) {
    auto model = model_of(provider);
    const auto& adapter
      = static_cast<const adapters::openai::messages_chat_adapter&>(
        adapters::adapter_for(*model, api_endpoint::messages));
    auto out = adapter.chat_request(payload.json(), *model);
    if (!out)
      continue;
    auto back = json::read(json::dump(*out), json::upstream_limits);
    require(back && back->root().is_object());
  }
}

void answer(std::string_view body) {
  auto read = json::read(body, json::upstream_limits);
  if (!read)
    return;
  auto model = model_of("openai");
  auto out = adapters::openai::to_anthropic_message(read->root(), *model, "r");
  if (!out)
    return;
  auto back = json::read(out->body, json::upstream_limits);
  require(back && json::string_of(back->root(), "type") == "message");
  adapters::anthropic::message_to_sse(out->body, {"m", false, "r"});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view input{reinterpret_cast<const char*>(data) + 1, size - 1};
  if (data[0] % 2 == 0)
    request(input);
  else
    answer(input);
  return 0;
}
