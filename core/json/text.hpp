#pragma once

// Small, allocation-light operations on JSON text: string escaping and
// splicing one top-level field, so the hot path forwards bodies without
// building and re-serialising a document.

#include <charconv>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>

namespace pw {

/// Appends `text` as a JSON string literal: quotes, backslashes and control
/// characters escaped, valid UTF-8 copied as it is, each invalid byte
/// replaced by U+FFFD.
void append_json_string(std::string& out, std::string_view text);

/// Appends the digits of `n` in `base` (a JSON number for base 10).
template <std::integral T>
void append_integer(std::string& out, T n, int base = 10) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n, base);
  out.append(digits, end);
}

/// Returns `text` as a JSON string literal.
std::string json_string(std::string_view text);

/// The longest prefix of `text` of at most `max` bytes that does not end
/// inside a UTF-8 character.
std::string_view utf8_prefix(std::string_view text, size_t max);

/// Returns `doc` (a valid JSON object text) with its top-level `key` set to
/// the string `value`: the old value's bytes are replaced, or the field is
/// inserted first when absent. Everything else stays byte for byte.
/// Returns nullopt when splicing would be ambiguous (the key appears more
/// than once, or a top-level key uses escapes) or `doc` is not an object;
/// the caller then serialises a parsed document instead.
std::optional<std::string> with_top_level_string(std::string_view doc,
                                                 std::string_view key,
                                                 std::string_view value);

} // namespace pw
