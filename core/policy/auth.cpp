#include "core/policy/auth.hpp"

#include "core/errc.hpp"
#include "core/request/exchange.hpp"
#include "core/sha256.hpp"

namespace pw {

caf::expected<const api_key_config*>
authenticate(const server_config& server, std::string_view authorization) {
  constexpr size_t max_token = 4096;
  if (authorization.empty())
    return make_error(errc::missing_api_key,
                      "Missing API key: send 'Authorization: Bearer <key>'");
  auto space = authorization.find(' ');
  if (space == std::string_view::npos
      || !iequals(authorization.substr(0, space), "bearer"))
    return make_error(errc::missing_api_key,
                      "Malformed Authorization header: expected 'Bearer "
                      "<key>'");
  auto token = authorization.substr(space + 1);
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
    token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
    token.remove_suffix(1);
  if (token.empty() || token.size() > max_token)
    return make_error(errc::missing_api_key,
                      "Malformed Authorization header: expected 'Bearer "
                      "<key>'");
  for (char c : token) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
      return make_error(errc::invalid_api_key, "Invalid API key");
  }
  auto digest = sha256(token);
  const api_key_config* found = nullptr;
  for (const auto& key : server.api_keys) {
    // No early exit: every key costs the same comparison.
    bool equal = digest_equal(digest, key.key_digest);
    if (equal && found == nullptr)
      found = &key;
  }
  if (found == nullptr)
    return make_error(errc::invalid_api_key, "Invalid API key");
  return found;
}

} // namespace pw
