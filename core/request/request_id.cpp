#include "core/request/request_id.hpp"

#include <random>

namespace pw {

bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
      return false;
  }
  return true;
}

std::string new_request_id() {
  // One generator per thread: no sharing, no locks.
  thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (size_t i = 0; i < out.size(); i += 16) {
    auto bits = engine();
    for (size_t j = 0; j < 16; ++j, bits >>= 4)
      out[i + j] = hex[bits & 0xf];
  }
  return out;
}

} // namespace pw
