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

/// Renders `err` as the OpenAI envelope with its status.
rendered_error render_error(const api_error& err);

} // namespace pw
