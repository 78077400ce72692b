#pragma once

// The `http` plugin: posts the request context as JSON to an external
// decision service (a compliance engine written in another language) and
// applies its answer `{"action": "continue" | "block", "tags": [...],
// "status": ..., "message": ...}`. The call runs on an io thread through the
// same upstream client as provider calls (keep-alive, TLS verification).
//
// Config: `url` (http or https), `timeout_ms` (default 1000: the call's
// own budget; the entry's `timeout_ms` bounds the whole step), `headers`
// (a mapping; values may use `${VAR}` for secrets), `ca_file`.

#include "core/config/config_reader.hpp"
#include "plugins/plugin.hpp"

#include <string>
#include <vector>

namespace pw::plugins {

/// Reads `headers` of `map` (at YAML path `path`): a mapping of header
/// names to string values, none holding a line break. Problems go to `cfg`.
std::vector<header_field> read_header_map(config_reader& cfg,
                                          const YAML::Node& map,
                                          const std::string& path);

/// Checks the entry; one message per problem.
std::vector<std::string> check_http_plugin(const plugin_entry& entry);

/// Spawns the PLUGIN actor of a checked entry.
actors::plugin_actor spawn_http_plugin(caf::actor_system& sys,
                                       const plugin_entry& entry,
                                       const plugin_env& env);

} // namespace pw::plugins
