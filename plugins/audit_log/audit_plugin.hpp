#pragma once

// The `audit_log` plugin (post stage): one JSON line per request, chained
// by SHA-256 (see audit_chain.hpp), written by one detached actor so lines
// never interleave and a slow disk never stalls the scheduler. A line holds
// what happened and why (models tried, route reason, tags, status, usage,
// latency) and hashes of the bodies, never keys; bodies only with
// `include_bodies: true`. When a line cannot be written the plugin fails,
// and with the default `on_error: block` the request is not served.
//
// Config: `path` (required), `fsync: every | interval` (default every),
// `interval_ms` (default 1000, with `fsync: interval`), `max_bytes`
// (rotate beyond; default 0 = never), `include_bodies` (default false),
// `checkpoint` (signed checkpoints: `key_file`, `every_lines` default 1000,
// `every_seconds` default 60, and a `witness` (witness.hpp) to send them
// to; see checkpoint.hpp and docs/security.md).

#include "plugins/plugin.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace pw::plugins {

/// Checks the entry; one message per problem.
std::vector<std::string> check_audit_log(const plugin_entry& entry);

/// Spawns the writer actor of a checked entry.
actors::plugin_actor spawn_audit_log(caf::actor_system& sys,
                                     const plugin_entry& entry,
                                     const plugin_env& env);

/// The audit record of one request, written at `time` (RFC 3339), as
/// compact JSON text without `prev` (which the writer adds).
std::string audit_record(const actors::plugin_outcome& out, bool include_bodies,
                         std::string_view time);

} // namespace pw::plugins
