#include "core/policy/usage_estimate.hpp"

#include "core/json/reader.hpp"

namespace pw {

namespace {

/// max * n without overflow (saturates).
uint64_t times(uint64_t max, uint64_t n) {
  n = n == 0 ? 1 : n;
  return max > UINT64_MAX / n ? UINT64_MAX : max * n;
}

uint64_t uint_member(const nlohmann::ordered_json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_number_integer())
    return 0;
  if (it->is_number_unsigned())
    return it->get<uint64_t>();
  auto v = it->get<int64_t>();
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}

} // namespace

uint64_t estimate_prompt_tokens(uint64_t body_bytes) {
  return (body_bytes + 2) / 3;
}

uint64_t requested_output(std::string_view raw_body) {
  auto doc = json::read(raw_body, json::client_limits);
  if (!doc)
    return 0;
  auto root = doc->root();
  auto max = json::uint_of(root, "max_completion_tokens", 0);
  if (max == 0)
    max = json::uint_of(root, "max_tokens", 0);
  return max == 0 ? 0 : times(max, json::uint_of(root, "n", 1));
}

uint64_t requested_output(const nlohmann::ordered_json& body) {
  if (!body.is_object())
    return 0;
  auto max = uint_member(body, "max_completion_tokens");
  if (max == 0)
    max = uint_member(body, "max_tokens");
  return max == 0 ? 0 : times(max, uint_member(body, "n"));
}

} // namespace pw
