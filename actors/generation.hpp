#pragma once

// One generation of the running gateway: its config and the handles io
// threads use to reach the actors. Immutable; a new one is published when
// the ROUTER restarts.

#include "actors/fwd.hpp"

#include "actors/contracts.hpp"
#include "core/config.hpp"

#include <caf/fwd.hpp>

namespace pw::actors {

struct generation {
  caf::actor_system* system = nullptr;
  gateway_config_ptr config;
  router_actor router;
  supervisor_actor supervisor;
};

} // namespace pw::actors
