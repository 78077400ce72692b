#pragma once

// Client authentication: `Authorization: Bearer <key>` against the
// configured keys, in constant time.

#include "core/config/config.hpp"

#include <caf/expected.hpp>

#include <string_view>

namespace pw {

/// Returns the key entry that `authorization` (the header value) presents.
/// The scheme is case-insensitive; the token must be 1..4096 visible ASCII
/// characters. Every configured key is compared (by SHA-256 digest, in
/// constant time), so timing tells nothing about which key matched or how
/// much of it. Errors: `missing_api_key` (absent or malformed header),
/// `invalid_api_key` (no key matches).
caf::expected<const api_key_config*>
authenticate(const server_config& server, std::string_view authorization);

} // namespace pw
