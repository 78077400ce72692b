#pragma once

// The `regex` plugin: rules of `{pattern, tag}` (add a routing tag) or
// `{pattern, block, message}` (refuse with that status), searched in the
// text of every message with RE2, whose matching time is linear in the
// input: no pattern can make the gateway hang.

#include "plugins/plugin.hpp"

#include <string>
#include <vector>

namespace pw::plugins {

/// Builds the plugin from its entry, or returns nullptr and appends the
/// problems (an invalid pattern names its YAML path) to `errors`.
plugin_logic_ptr make_regex_plugin(const plugin_entry& entry,
                                   std::vector<std::string>& errors);

} // namespace pw::plugins
