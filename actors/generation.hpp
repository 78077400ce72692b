#pragma once

// One generation of the running gateway: its config and the handles io
// threads use to reach the actors. Immutable; a new one is published when
// the ROUTER or a PLUGIN restarts, and on reload.

#include "actors/fwd.hpp"

#include "actors/contracts.hpp"
#include "core/config/config.hpp"

#include <caf/fwd.hpp>

namespace pw::actors {

struct generation {
  caf::actor_system* system = nullptr;
  gateway_config_ptr config;
  router_actor router;
  /// The usage counters (the same across reloads).
  ledger_actor ledger;
  supervisor_actor supervisor;
  /// The pre and post PLUGINs, in config order.
  plugin_set_ptr plugins;
  /// The span exporter; null while `tracing` is off.
  tracer_actor tracer;
};

} // namespace pw::actors
