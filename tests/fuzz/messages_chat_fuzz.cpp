// Fuzz target: Anthropic's Messages API to an OpenAI-compatible model, in
// both directions. The first byte picks the part and the split; the rest
// is its input:
// - a Messages request body: the io thread's check, then the translation
//   into a chat completion request for openai and vllm, whose bytes must
//   read back as one JSON object;
// - a provider's chat.completion: the translation into an Anthropic
//   message, which must read back as a message object, and on into its
//   stream of events;
// - a provider's stream of OpenAI chunks, fed in two pieces: every event
//   out must be `event: <name>` and one `data:` line of JSON whose `type`
//   is the name, and a stream that ended well must end with message_stop.

#include "adapters/anthropic/messages_adapter.hpp"
#include "adapters/openai/messages_chat.hpp"
#include "core/json/reader.hpp"
#include "core/request/messages_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace pw;

model_config_ptr model_of(provider_kind provider) {
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
  for (auto provider : {provider_kind::openai, provider_kind::vllm}) {
    auto out
      = adapters::openai::to_chat_request(payload.json(), *model_of(provider));
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
  auto model = model_of(provider_kind::openai);
  auto out = adapters::openai::to_anthropic_message(read->root(), *model, "r");
  if (!out)
    return;
  auto back = json::read(out->body, json::upstream_limits);
  require(back && json::string_of(back->root(), "type") == "message");
  adapters::anthropic::message_to_sse(out->body, {"m", false, "r"});
}

/// Checks that `out` is a run of Anthropic events; returns the last name.
std::string_view check_events(std::string_view out) {
  std::string_view last;
  while (!out.empty()) {
    require(out.starts_with("event: "));
    auto eol = out.find('\n');
    require(eol != std::string_view::npos);
    auto name = out.substr(7, eol - 7);
    out.remove_prefix(eol + 1);
    require(out.starts_with("data: "));
    auto end = out.find("\n\n");
    require(end != std::string_view::npos);
    auto data = out.substr(6, end - 6);
    require(data.find('\n') == std::string_view::npos);
    auto read = json::read(data, json::upstream_limits);
    require(read && json::string_of(read->root(), "type") == name);
    out.remove_prefix(end + 2);
    last = name;
  }
  return last;
}

void stream(std::string_view input, size_t split) {
  auto decoder = adapters::openai::make_messages_decoder(
    model_of(provider_kind::vllm), {"m", false, "req", 64});
  std::string out;
  decoder->feed(input.substr(0, split), out);
  decoder->feed(input.substr(split), out);
  auto state = decoder->finish(out);
  auto last = check_events(out);
  require(state == stream_state::done ? last == "message_stop"
                                      : last == "error");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view input{reinterpret_cast<const char*>(data) + 1, size - 1};
  switch (data[0] % 3) {
  case 0:
    request(input);
    break;
  case 1:
    answer(input);
    break;
  default:
    stream(input, std::min<size_t>(data[0] / 3, input.size()));
  }
  return 0;
}
