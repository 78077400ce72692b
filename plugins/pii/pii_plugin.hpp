#pragma once

// The `pii` plugin: finds emails, phone numbers, payment card numbers
// (Luhn), IBANs (mod 97) and US SSNs in every message text (pre stage) or
// in the answer (post stage), and then tags the request (routing), redacts
// each finding as `[REDACTED:<KIND>]`, or blocks. Only counts per kind are
// recorded, never the values.

#include "plugins/plugin.hpp"

#include <string>
#include <vector>

namespace pw::plugins {

/// Builds the plugin from its entry, or returns nullptr and appends the
/// problems to `errors`.
plugin_logic_ptr make_pii_plugin(const plugin_entry& entry,
                                 std::vector<std::string>& errors);

} // namespace pw::plugins
