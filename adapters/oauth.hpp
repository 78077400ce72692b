#pragma once

// OAuth 2.0 token fetches shared by the providers whose credentials are
// access tokens (Azure's Entra ID): the form body, the token file of a
// workload identity, the POST to a token endpoint and the reading of its
// answer. The MODEL actor sends the request and keeps the token
// (adapter::credential_request).

#include "adapters/adapter.hpp"
#include "core/config/config_reader.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace pw::adapters::oauth {

/// An application/x-www-form-urlencoded body.
class form {
public:
  /// Appends `name=value`, both percent-encoded.
  void add(std::string_view name, std::string_view value);

  [[nodiscard]] const std::string& text() const { return text_; }

private:
  std::string text_;
};

/// `text` (a token endpoint's error text) with `secret` (4 bytes or more)
/// replaced by "***", then cut to `max` bytes on a UTF-8 boundary.
std::string bounded(std::string text, const std::string& secret,
                    size_t max = 300);

/// Percent-encodes everything but RFC 3986's unreserved characters.
std::string percent_encoded(std::string_view text);

/// The token in a workload identity's token file (rotated by its
/// platform, so read at each fetch), whitespace trimmed. Errors say which
/// file and why, never its content.
caf::expected<std::string> read_token_file(const std::string& path);

/// A token endpoint's URL: https, or http to a loopback host only (a fake
/// in tests); reported on `cfg` at `where` otherwise.
std::optional<endpoint> parse_token_url(const std::string& url,
                                        const std::string& where,
                                        config_reader& cfg);

/// A form POST of `body` to `path` at `at`, with the model's connect
/// timeout and 30 s for the whole exchange; the system's CAs verify it.
upstream_request token_post(const model_config& model, const endpoint& at,
                            std::string path, std::string body);

/// Base64url without padding (RFC 7515's encoding of JWT parts).
std::string base64url(std::string_view bytes);

/// A JWT signed with RS256 by the RSA private key in `key_pem`: base64url
/// of `header`, '.', of `claims`, '.', of the signature. An error when the
/// key cannot be read or cannot sign (never quoting the key).
caf::expected<std::string> rs256_jwt(const std::string& key_pem,
                                     const nlohmann::json& header,
                                     const nlohmann::json& claims);

/// Whether `key_pem` holds an RSA private key OpenSSL can read.
bool readable_rsa_key(const std::string& key_pem);

/// Reads a token endpoint's answer (`access_token`, `expires_in` as a
/// number or a string of digits). Errors name `issuer`, the status and the
/// endpoint's `error` and `error_description`, bounded and scrubbed of
/// `secret`.
caf::expected<fetched_credential>
read_token_answer(const upstream_result& result, std::string_view issuer,
                  const std::string& secret);

} // namespace pw::adapters::oauth
