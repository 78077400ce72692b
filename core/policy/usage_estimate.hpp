#pragma once

// What a request may use at most, before it runs: the worst case a
// governed key reserves (actors/ledger.hpp). The real usage replaces it
// when the answer ends (docs/governance.md: the estimate and its error).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace pw {

/// Prompt tokens estimated from the body's size: one token per 3 bytes,
/// rounded up. Measured against o200k_base (scripts/bench/estimate_error.sh)
/// its median is 4 to 39 % above the real prompt, by kind of text, and
/// its worst 9 % below (Chinese text).
uint64_t estimate_prompt_tokens(uint64_t body_bytes);

/// The most output tokens a request allows: `max_completion_tokens`, else
/// `max_tokens`, times `n` (1 when absent); 0 when neither is set.
uint64_t requested_output(std::string_view raw_body);

/// The same for a document a plugin changed.
uint64_t requested_output(const nlohmann::ordered_json& body);

} // namespace pw
