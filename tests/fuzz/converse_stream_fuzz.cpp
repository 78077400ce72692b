// Fuzz target: Bedrock's ConverseStream translation. The bytes are an
// upstream's event stream, fed in two pieces (split where the first byte
// says) through the bedrock decoders of the chat endpoint (Converse ->
// Anthropic events -> OpenAI chunks) and of the Messages endpoint
// (Converse -> Anthropic events relayed). With the first byte's bit 1 set
// the rest is not raw framing but lines, each a type byte and a payload,
// framed here with valid CRCs, so the fuzzer reaches the translation.
// Nothing may crash or hang, and a stream reported complete must end as
// its format ends.

#include "adapters/adapter.hpp"
#include "adapters/bedrock/event_stream.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace {

void run(pw::api_endpoint endpoint, std::string_view input, size_t split,
         bool usage) {
  auto model = std::make_shared<pw::model_config>();
  model->alias = "m";
  model->provider = "bedrock";
  model->model = "anthropic.claude-3-haiku-20240307-v1:0";
  pw::stream_options options{"m", usage, "req", 64};
  auto decoder = pw::adapters::adapter_for(*model, endpoint)
                   .make_stream_decoder(model, options);
  std::string out;
  decoder->feed(input.substr(0, split), out);
  decoder->feed(input.substr(split), out);
  auto state = decoder->finish(out);
  if (state == pw::stream_state::done) {
    bool ends = endpoint == pw::api_endpoint::chat
                  ? out.ends_with("data: [DONE]\n\n")
                  : out.find("event: message_stop") != std::string::npos;
    if (!ends)
      std::abort();
  }
}

/// Lines of "<type byte><payload>" as event-stream messages.
std::string framed(std::string_view lines) {
  static constexpr const char* types[]
    = {"messageStart",     "contentBlockStart", "contentBlockDelta",
       "contentBlockStop", "messageStop",       "metadata"};
  std::string out;
  size_t pos = 0;
  while (pos < lines.size()) {
    auto nl = lines.find('\n', pos);
    if (nl == std::string_view::npos)
      nl = lines.size();
    auto line = lines.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty())
      continue;
    auto t = static_cast<unsigned char>(line[0]) % 8;
    auto payload = line.substr(1);
    if (t < 6)
      out += pw::adapters::bedrock::encode_event(
        {{":event-type", types[t]}, {":message-type", "event"}}, payload);
    else
      out += pw::adapters::bedrock::encode_event(
        {{":exception-type", t == 6 ? "throttlingException" : "internal"},
         {":message-type", "exception"}},
        payload);
  }
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view raw{reinterpret_cast<const char*>(data) + 1, size - 1};
  std::string frames;
  if ((data[0] & 2) != 0)
    frames = framed(raw);
  std::string_view input = (data[0] & 2) != 0 ? std::string_view{frames} : raw;
  auto split = std::min<size_t>(data[0] >> 2, input.size());
  bool usage = (data[0] & 1) != 0;
  run(pw::api_endpoint::chat, input, split, usage);
  run(pw::api_endpoint::messages, input, split, usage);
  return 0;
}
