#pragma once

// The plugin extension point. A plugin is an actor spawned from a
// `middleware.pre_request[]` / `post_response[]` entry; the SESSION's pre and
// post stages call them in config order. registry.cpp is the one list of
// built-in plugins.

#include "core/config.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace pw::plugins {

/// The names of the built-in plugins, in registry order.
std::vector<std::string_view> builtin_names();

/// Checks every middleware entry of `cfg` against the registry. Returns one
/// message per problem, each starting with the entry's YAML path.
std::vector<std::string> check_middleware(const gateway_config& cfg);

} // namespace pw::plugins
