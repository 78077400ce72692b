#pragma once

// The calls an io thread makes into the actor world. No actor handle or
// message type appears here (CAF comes in only as `caf::error`, through
// core/errc.hpp): http/ sees the actors only through these functions and
// the opaque `generation`.

#include "actors/fwd.hpp"

#include "core/config/config.hpp"
#include "core/observe/metrics.hpp"
#include "core/request/chat_request.hpp"
#include "core/request/exchange.hpp"

#include <functional>
#include <optional>
#include <vector>

namespace pw::actors {

/// Tells io threads about a new generation (a restarted ROUTER, later a
/// reloaded config). Implemented by the bridge: it posts to every io thread.
using publish_fn = std::function<void(generation_ptr)>;

/// The configuration a generation runs on.
const gateway_config& config_of(const generation_ptr& gen);

/// Ends a SESSION early: its io thread stopped waiting, because the
/// request's deadline passed or the client left. Harmless after the
/// SESSION ended by itself.
using cancel_fn = std::function<void(cancel_reason)>;

/// Spawns a SESSION for one chat request. `reply` is called exactly once;
/// `upstream` runs provider calls on the calling io thread. The io thread
/// calls the returned function when it stops waiting for the reply, with
/// the reason.
cancel_fn start_chat(const generation_ptr& gen, chat_context ctx,
                     reply_fn reply, upstream_fn upstream);

/// Whose usage GET /v1/usage shows: a key its own scopes (its name and
/// its team), an admin key every scope.
struct usage_view {
  std::string client;
  std::string team;
  bool all = false;
};

/// Answers GET /v1/usage from the LEDGER: limits, use and what is left.
void start_usage(const generation_ptr& gen, usage_view view, reply_fn reply);

/// One io thread's part of GET /health, copied on that thread.
struct io_thread_health {
  /// Client connections open.
  uint32_t connections = 0;
  /// Requests read and not yet answered (the /health request itself
  /// counts on its own thread).
  uint32_t in_flight = 0;
};

/// What GET /health shows its caller.
struct health_view {
  /// Every actor's counters and errors (an admin key, or
  /// `server.health_details: public`); else the status and each model's
  /// circuit only.
  bool details = false;
  /// Each io thread, in order; nullopt for one that did not answer in
  /// time. Gathered only with `details`.
  std::vector<std::optional<io_thread_health>> io_threads;
};

/// Answers GET /health from the SUPERVISOR's view of every actor.
void start_health(const generation_ptr& gen, health_view view, reply_fn reply);

/// Answers GET /health/ready: 200 when the configuration is loaded and at
/// least one MODEL admits traffic (circuit closed or half-open), else 503.
void start_ready(const generation_ptr& gen, reply_fn reply);

/// Answers GET /metrics: adds the MODELs' state (from the SUPERVISOR) and
/// the process's figures to `snap` (the io threads' merged counters) and
/// renders what `scope` may see, as JSON or as Prometheus text.
void start_metrics(const generation_ptr& gen, metrics_snapshot snap,
                   metrics_scope scope, bool json, reply_fn reply);

} // namespace pw::actors
