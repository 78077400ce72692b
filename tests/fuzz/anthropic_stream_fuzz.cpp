// Fuzz target: the Anthropic stream translator, fed the input in two
// pieces. The first byte picks the split (and include_usage) and is not
// part of the stream (corpus files start with one such byte).

#include "adapters/anthropic/anthropic_adapter.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view input{reinterpret_cast<const char*>(data) + 1, size - 1};
  auto split = std::min<size_t>(data[0], input.size());
  auto model = std::make_shared<pw::model_config>();
  model->alias = "claude";
  model->api_key = pw::redacted_string{"sk-ant-fuzz"};
  auto decoder = pw::adapters::anthropic::make_decoder(
    model, {"claude", (data[0] & 1) != 0, "r"}, 1700000000);
  std::string out;
  decoder->feed(input.substr(0, split), out);
  decoder->feed(input.substr(split), out);
  decoder->finish(out);
  return 0;
}
