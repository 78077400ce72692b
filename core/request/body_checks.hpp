#pragma once

// The checks the bodies of every model endpoint share: the wording of a
// body the JSON layer refused, the sampling fields, and the "text or token
// ids" fields (`input` of embeddings, `prompt` of completions).

#include "core/json/limits.hpp"

#include <caf/error.hpp>

#include <simdjson.h>
#include <string>
#include <string_view>

namespace pw::body_checks {

/// At most this many items in a list of texts or token lists (OpenAI's
/// limit for embeddings inputs, kept for completion prompts).
constexpr size_t max_items = 2048;

/// An `invalid_request` error with OpenAI's wording and the field at fault.
caf::error invalid(std::string message, std::string param = {});

/// The error for a body the JSON layer refused (json::client_limits).
caf::error unreadable(const json::problem& p);

/// `key` holding null, or a number from `min` to `max` (an integer when
/// `integer`).
caf::error check_number(std::string_view key, simdjson::dom::element value,
                        double min, double max, bool integer);

/// A top-level sampling field (temperature, top_p, max_tokens,
/// max_completion_tokens, n, presence_penalty, frequency_penalty): null,
/// or a number in OpenAI's range. Any other key: no error.
caf::error check_sampling(std::string_view key, simdjson::dom::element value);

/// How a text-or-tokens field may look.
struct text_rules {
  /// The field's name, for messages and `param`.
  std::string_view field;
  /// Whether an empty string is a text.
  bool empty_text = false;
};

/// A field holding a string, or a list of 1 to max_items items that are
/// all strings, all token ids (integers from 0 to 2^32-1), or all non-empty
/// lists of token ids. Sets `token_input` when it holds token ids.
caf::error check_text_or_tokens(simdjson::dom::element value,
                                const text_rules& rules, bool& token_input);

} // namespace pw::body_checks
