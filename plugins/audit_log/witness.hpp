#pragma once

// The witness sender: posts each signed checkpoint of an audit log
// (checkpoint.hpp) to an HTTPS endpoint off the host, so that whoever
// controls the host cannot rewrite the log's history without
// `verify-audit --witness` catching it. One actor per audit log, beside
// its writer and off the request path: the writer hands it a checkpoint
// once the checkpoint is synced, and never waits for it.
//
// Delivery: one checkpoint at a time, in order, as the JSON body of a POST
// (the checkpoint line as written). A 2xx answer delivers it. A network
// failure, a 408, a 429 or a 5xx is retried after a backoff that doubles
// from 500 ms up to `max_backoff_ms`; any other answer refuses it for good
// (logged, counted as dropped). The queue holds at most `queue`
// checkpoints: when it is full the oldest is dropped and counted, so memory
// stays bounded through a witness outage of any length (a call still open
// for the dropped one runs to its end, its answer ignored, beside the call
// for the next). Each failed attempt
// and each drop is a log line and a counter in `/metrics`
// (core/observe/audit_stats.hpp).
//
// Config (under the audit_log entry's `checkpoint.witness`): `url` (https,
// or http to a loopback host), `headers` (e.g. an Authorization with
// `${ENV}`), `ca_file`, `timeout_ms` (default 5000), `queue` (default
// 10000), `max_backoff_ms` (default 60000).

#include "actors/contracts.hpp"
#include "core/config/config_reader.hpp"
#include "core/request/service_post.hpp"

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pw::plugins::audit {

/// Where and how checkpoints are sent.
struct witness_settings {
  service_target to;
  size_t queue = 10000;
  std::chrono::milliseconds max_backoff{60000};
};

/// Reads the `witness` mapping `map` at YAML path `path`; problems go to
/// `cfg`.
std::optional<witness_settings> read_witness_settings(config_reader& cfg,
                                                      const YAML::Node& map,
                                                      const std::string& path);

/// The witness sender: checkpoints in, and its own call results and timer.
using witness_actor
  = caf::typed_actor<caf::reacts_to<atom::checkpoint, std::string>,
                     caf::reacts_to<atom::upstream, uint64_t, upstream_result>,
                     caf::reacts_to<atom::retry>>;

/// Spawns a witness sender that makes its calls through `call`.
witness_actor spawn_witness(caf::actor_system& sys, witness_settings settings,
                            upstream_fn call);

} // namespace pw::plugins::audit
