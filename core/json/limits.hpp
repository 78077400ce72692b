#pragma once

// The bounds every JSON text from outside is read under: one set for
// clients, one for upstreams (providers, plugin decision services, files
// the gateway did not write). A text past any bound is refused whole, with
// its own error; nothing later (a document, a dump, a copy) can then
// recurse deeper than max_depth or grow past the text's own size by much.

#include <caf/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace pw::json {

struct limits {
  /// Deepest nesting of objects and arrays; the top level counts as 1.
  uint32_t max_depth;
  /// Most members of one object.
  uint32_t max_members;
  /// Most elements of one array.
  uint32_t max_elements;
  /// Longest string or key, in bytes (UTF-8, after unescaping).
  uint64_t max_string;
};

/// Client requests, and JSON that clients nest in strings (tool call
/// arguments). 64 levels is 10 times what any OpenAI request needs.
inline constexpr limits client_limits{64, 10'000, 100'000, 16 * 1024 * 1024};

/// Answers and stream events of providers and plugin services. Deeper than
/// the clients' bound, because a model's tool input may nest what a client
/// sent; the string bound is the largest upstream body read.
inline constexpr limits upstream_limits{128, 10'000, 1'000'000,
                                        32 * 1024 * 1024};

/// Why a text was refused.
enum class fault : uint8_t {
  /// Not JSON: a syntax error, a bad escape, an escaped lone surrogate,
  /// a control character in a string, trailing bytes, no text at all.
  syntax,
  /// Bytes that are not UTF-8.
  utf8,
  /// A number that is not finite or does not fit in 64 bits.
  number,
  /// Nested deeper than max_depth.
  too_deep,
  /// An object with more than max_members members.
  too_many_members,
  /// An array with more than max_elements elements.
  too_many_elements,
  /// A string or key longer than max_string bytes.
  string_too_long,
  /// The same key twice in one object.
  duplicate_key,
};

/// A refused text: what is wrong, and where.
struct problem {
  fault kind = fault::syntax;
  /// The offending value, as in OpenAI's `param`: "messages[0].content";
  /// empty for the top level or when the parser cannot tell.
  std::string path;
  /// The repeated key (duplicate_key only).
  std::string key;

  /// What is wrong, as a fragment: "nests deeper than 64 levels".
  [[nodiscard]] std::string what(const limits& lim) const;

  /// The field at fault, as OpenAI's `param`: the path, joined with the
  /// key for a duplicate ("messages" for a repeated top-level
  /// "messages").
  [[nodiscard]] std::string param() const;
};

/// The client's error (400 `invalid_request`) for a JSON text it sent that
/// the reader refused: "<subject> nests deeper than 64 levels.", with the
/// field at fault as `param`; `subject` names the text ("The request
/// body").
caf::error client_error(const problem& p, const limits& lim,
                        std::string_view subject);

} // namespace pw::json
