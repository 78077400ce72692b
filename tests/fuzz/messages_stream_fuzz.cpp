// Fuzz target: a provider's stream of OpenAI chunks turned into Anthropic's
// events for a Messages API client (make_messages_decoder), fed in two
// pieces split where the first byte says; the rest is the stream. Every
// event out must be `event: <name>` and one `data:` line of JSON whose
// `type` is the name, and the stream must end with message_stop when it
// completed and with error when it did not.

#include "adapters/openai/messages_chat.hpp"
#include "core/json/reader.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using namespace pw;

void require(bool ok) {
  if (!ok)
    __builtin_trap();
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

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view input{reinterpret_cast<const char*>(data) + 1, size - 1};
  auto split = std::min<size_t>(data[0], input.size());
  auto model = std::make_shared<model_config>();
  model->alias = "m";
  model->provider = "vllm";
  model->api_key = redacted_string{"sk-fuzz-key"};
  // A small bound on the kept text, so the fuzzer reaches it.
  auto decoder
    = adapters::openai::make_messages_decoder(model, {"m", false, "req", 64});
  std::string out;
  decoder->feed(input.substr(0, split), out);
  decoder->feed(input.substr(split), out);
  auto state = decoder->finish(out);
  auto last = check_events(out);
  require(state == stream_state::done ? last == "message_stop"
                                      : last == "error");
  return 0;
}
