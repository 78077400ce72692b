// Fuzz target: the configuration loader (parse, expand, validate).

#include "adapters/provider.hpp"
#include "core/config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto cfg = pw::load_config_text(text, pw::adapters::catalog());
  (void)cfg;
  return 0;
}
