// Fuzz target: AWS's event-stream framing (Bedrock's ConverseStream),
// fed in two pieces split where the first byte says. Nothing may crash,
// hang or read out of bounds; a decoder that failed stays failed.

#include "adapters/bedrock/event_stream.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view input{reinterpret_cast<const char*>(data) + 1, size - 1};
  auto split = std::min<size_t>(data[0], input.size());
  pw::adapters::bedrock::event_stream_decoder d;
  std::vector<pw::adapters::bedrock::event_message> out;
  bool ok = d.feed(input.substr(0, split), out);
  ok = d.feed(input.substr(split), out) && ok;
  if (ok == d.failed())
    std::abort();
  for (const auto& m : out)
    for (const auto& [name, value] : m.headers)
      if (name.empty())
        std::abort();
  return 0;
}
