#pragma once

// SHA-256 digests (OpenSSL) for key comparison and config fingerprints.

#include <array>
#include <span>
#include <string>
#include <string_view>

namespace pw {

using sha256_digest = std::array<unsigned char, 32>;

/// Returns the SHA-256 digest of `data`.
sha256_digest sha256(std::string_view data);

/// Returns lowercase hex of `bytes`.
std::string to_hex(std::span<const unsigned char> bytes);

/// Parses exactly 2 * out.size() hex digits (either case) into `out`;
/// false (with `out` unspecified) otherwise.
bool parse_hex(std::string_view hex, std::span<unsigned char> out);

/// Parses 64 hex digits (either case) into `out`; false if `hex` is not
/// exactly that.
bool parse_sha256_hex(std::string_view hex, sha256_digest& out);

/// Compares two digests in constant time.
bool digest_equal(const sha256_digest& x, const sha256_digest& y);

} // namespace pw
