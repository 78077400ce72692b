// Fuzz target: the SSE parser and the OpenAI stream pass-through, fed the
// input in two pieces. The first byte picks the split and is not part of
// the stream (corpus files start with one such byte).

#include "adapters/adapter.hpp"
#include "adapters/sse.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view input{reinterpret_cast<const char*>(data) + 1, size - 1};
  auto split = std::min<size_t>(data[0], input.size());
  pw::adapters::sse_parser parser{4096};
  std::vector<pw::adapters::sse_event> events;
  parser.feed(input.substr(0, split), events);
  parser.feed(input.substr(split), events);
  auto model = std::make_shared<pw::model_config>();
  model->alias = "m";
  auto decoder = pw::adapters::adapter_for("openai").make_stream_decoder(
    model, {"m", true, "r"});
  std::string out;
  decoder->feed(input.substr(0, split), out);
  decoder->feed(input.substr(split), out);
  decoder->finish(out);
  return 0;
}
