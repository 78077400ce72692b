#pragma once

// The SUPERVISOR actor: spawns one MODEL per configured model, the ROUTER
// and one PLUGIN per middleware entry, monitors them, restarts a child that
// dies (a MODEL keeps its alias, the ROUTER learns the new handle; a new
// ROUTER or PLUGIN is published to the io threads), and answers /health by
// asking every MODEL and the ROUTER and reading the PLUGINs' counters.

#include "actors/contracts.hpp"
#include "actors/gateway_api.hpp"
#include "actors/redis_store.hpp"
#include "core/config/config.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace pw::actors {

/// Spawns the PLUGIN of one middleware entry (checked at load), whose
/// outbound calls (the `http` plugin) go through `call`; a null handle
/// means it could not start. app/ passes `plugins::spawn_builtin`, so
/// nothing in actors/ includes plugins/.
using plugin_spawner = std::function<plugin_actor(
  caf::actor_system&, const plugin_entry&, const upstream_fn& call)>;

struct supervisor_state {
  static inline const char* name = "supervisor";

  gateway_config_ptr config;
  /// Alias -> MODEL, in config order.
  std::vector<std::pair<std::string, model_actor>> models;
  router_actor router;
  /// The usage counters, kept across reloads.
  ledger_actor ledger;
  /// The span exporter while `tracing` is on (its settings change only
  /// with a restart).
  tracer_actor tracer;
  /// The PLUGINs of the running configuration, in config order.
  plugin_set_ptr plugins;
  /// Tells the io threads about a new ROUTER.
  publish_fn publish;
  /// Runs the MODELs' health checks (and the plugins' calls) on an io
  /// thread.
  upstream_fn check;
  /// Starts a PLUGIN.
  plugin_spawner spawn_plugin;
  /// Makes the LEDGER's Redis connection (`state.backend: redis`).
  redis_link_factory redis_links;
  /// When the running configuration was loaded (RFC 3339).
  std::string loaded_at;
  /// Actors of replaced generations, waiting to be retired (not restarted
  /// when they go down).
  std::vector<caf::actor> retiring;
  /// Restarts in the current window, to stop a crash loop.
  uint32_t restarts = 0;
  std::chrono::steady_clock::time_point window_start;
  /// Children left dead once the budget was spent: MODELs by alias, and
  /// the LEDGER. A reload spawns them again (a PLUGIN left dead has a
  /// null slot, which a reload fills too).
  std::vector<std::string> given_up_models;
  bool ledger_given_up = false;
  /// The ROUTER, left dead the same way (a reload starts a new one).
  bool router_given_up = false;
  /// 1 at start-up, one more with each reload (shown by /health; a
  /// PLUGIN restart scheduled before a reload is dropped after it).
  uint64_t generation = 1;
  /// Per PLUGIN entry (pre, then post): when it last went down, and the
  /// backoff its next restart waits (0: at once).
  struct plugin_downs {
    std::chrono::steady_clock::time_point last;
    std::chrono::milliseconds backoff{0};
  };
  std::vector<plugin_downs> pre_downs;
  std::vector<plugin_downs> post_downs;
};

/// At most this many restarts per minute; beyond, a dead child stays dead
/// (its requests get clear errors) and an error is logged.
constexpr uint32_t max_restarts_per_minute = 20;

/// A PLUGIN that goes down again within a minute of its last end waits
/// before its restart: 1 s, doubling each time, at most 30 s. Its
/// requests meanwhile get its `on_error`; /health shows it down.
constexpr std::chrono::milliseconds first_plugin_backoff{1000};
constexpr std::chrono::milliseconds max_plugin_backoff{30'000};

/// The backoff of a PLUGIN that went down `since_last` after its previous
/// end, whose previous restart waited `previous`.
std::chrono::milliseconds
next_plugin_backoff(std::chrono::steady_clock::duration since_last,
                    std::chrono::milliseconds previous);

/// Spawn function of the SUPERVISOR actor.
supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           gateway_config_ptr config, publish_fn publish, upstream_fn check,
           plugin_spawner spawner, redis_link_factory redis_links);

} // namespace pw::actors
