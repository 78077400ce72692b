#pragma once

// The only place that maps an errc to an HTTP status and an OpenAI error
// envelope: {"error":{"message":...,"type":...,"param":...,"code":...}}.

#include "core/errc.hpp"
#include "core/request/exchange.hpp"

#include <span>
#include <string>
#include <string_view>

namespace pw {

struct error_row {
  errc code;
  /// HTTP status; 0 means "the relayed upstream status".
  unsigned status;
  std::string_view type;
  std::string_view code_text;
};

/// One row per errc, in enum order (a test checks both).
std::span<const error_row> error_table();

/// Returns the row of `code`.
const error_row& row_of(errc code);

struct rendered_error {
  unsigned status;
  std::string body;
};

/// Which envelope an error is written in.
enum class error_dialect : uint8_t {
  /// {"error":{"message","type","param","code"}}
  openai,
  /// Anthropic's {"type":"error","error":{"type","message"}}, for the
  /// Messages API (/v1/messages...); the type follows the status.
  anthropic,
};

/// Renders `err` as the envelope of `dialect` with its status.
rendered_error render_error(const api_error& err,
                            error_dialect dialect = error_dialect::openai);

/// Anthropic's error `type` for an HTTP status (e.g. 429 ->
/// "rate_limit_error").
std::string_view anthropic_error_type(unsigned status);

} // namespace pw
