#pragma once

// The one JSON reader of the gateway. Every JSON text from outside is read
// here, under limits (core/json/limits.hpp): client request bodies, JSON
// that clients nest in strings (tool call arguments), upstream answers and
// stream events, plugin decision answers, audit files. A text is accepted
// only whole: valid syntax, valid UTF-8 with no lone surrogate, numbers
// that are finite and fit in 64 bits, no key twice in one object, and every
// bound of its limits kept. Nothing here recurses deeper than the limit's
// depth, and nothing is quadratic in the input.
//
// Built on simdjson's DOM parser (one validating pass, a parser reused per
// thread), then one walk over the parsed values for the bounds simdjson
// does not know (members, elements, string length, duplicate keys).

#include "core/json/limits.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <simdjson.h>
#include <string>
#include <string_view>
#include <utility>

namespace pw::json {

/// The documents the gateway builds and changes; keys keep their order.
using document = nlohmann::ordered_json;

/// A value, or the problem that kept it from being read.
template <class T>
class [[nodiscard]] result {
public:
  result(T value) : value_(std::move(value)) {
    // nop
  }

  result(problem p) : problem_(std::move(p)) {
    // nop
  }

  explicit operator bool() const { return value_.has_value(); }

  T& operator*() { return *value_; }

  const T& operator*() const { return *value_; }

  T* operator->() { return &*value_; }

  const T* operator->() const { return &*value_; }

  /// Why reading failed; only when `!*this`.
  [[nodiscard]] const problem& error() const { return *problem_; }

private:
  std::optional<T> value_;
  std::optional<problem> problem_;
};

/// A checked text, read-only. Its values stay valid while the view lives;
/// it owns its parser, so views can nest (a tool's arguments read while
/// the request is being walked). Stays on the thread that made it.
class view {
public:
  view(view&& other) noexcept = default;
  view& operator=(view&& other) noexcept = default;
  view(const view&) = delete;
  view& operator=(const view&) = delete;
  ~view();

  [[nodiscard]] simdjson::dom::element root() const { return root_; }

private:
  friend result<view> read(std::string_view text, const limits& lim);

  view(std::unique_ptr<simdjson::dom::parser> parser,
       simdjson::dom::element root)
      : parser_(std::move(parser)), root_(root) {
    // nop
  }

  std::unique_ptr<simdjson::dom::parser> parser_;
  simdjson::dom::element root_;
};

/// Reads `text` under `lim`.
result<view> read(std::string_view text, const limits& lim);

/// Reads `text` under `lim` into a document.
result<document> parse(std::string_view text, const limits& lim);

/// A document with the values of `value` (which came from read(), so its
/// depth is bounded). Non-negative integers become unsigned numbers, as
/// nlohmann's own parser makes them.
document to_document(simdjson::dom::element value);

/// Serialises `doc` compactly; invalid UTF-8 in strings (possible only in
/// strings the gateway made) becomes U+FFFD. Safe for every document made
/// from read() values plus a bounded nesting of the gateway's own.
std::string dump(const document& doc);

// -- reading fields of a checked value
// -----------------------------------------

/// `value[key]` when `value` is an object that has `key`.
std::optional<simdjson::dom::element> member(simdjson::dom::element value,
                                             std::string_view key);

/// `value[key]` as a string; `fallback` when absent or not a string.
std::string_view string_of(simdjson::dom::element value, std::string_view key,
                           std::string_view fallback = {});

/// `value[key]` as a non-negative integer; `fallback` otherwise.
uint64_t uint_of(simdjson::dom::element value, std::string_view key,
                 uint64_t fallback = 0);

} // namespace pw::json
