#pragma once

// The ROUTER actor: resolves a request to its ordered candidates. It
// applies the per-client rate limit, the route table (explicit model,
// chain, tag rule, default) and the key's allowlist; the SESSION then
// walks the candidates, asking each MODEL for admission in turn.

#include "actors/contracts.hpp"
#include "core/config/config.hpp"
#include "core/policy/rate_limiter.hpp"
#include "core/policy/route_table.hpp"

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pw::actors {

struct router_state {
  static inline const char* name = "router";

  gateway_config_ptr config;
  std::unique_ptr<route_table> table;
  /// Alias -> MODEL actor.
  std::unordered_map<std::string, model_actor> models;
  /// Client name -> its sliding window (only with `rate_limit`).
  std::unordered_map<std::string, sliding_window_limiter> limiters;
  /// Requests given candidates, and refused, since it started (/health).
  uint64_t resolved = 0;
  uint64_t refused = 0;
};

/// Spawn function of the ROUTER actor. A `predecessor` (the ROUTER of the
/// generation a reload replaces; may be null) hands over its rate-limit
/// windows.
router_actor::behavior_type
router(router_actor::stateful_pointer<router_state> self,
       gateway_config_ptr config,
       std::vector<std::pair<std::string, model_actor>> models,
       router_actor predecessor);

} // namespace pw::actors
