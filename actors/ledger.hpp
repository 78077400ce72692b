#pragma once

// The LEDGER actor: one per process, kept across reloads. It owns the usage
// counters of every governed key and team (core/policy/usage_ledger.hpp):
// a SESSION reserves its request's worst case after the route and settles
// the real usage when it ends. With `state.path` the day and month totals
// are journalled to that file, so a restart does not reset a quota. With
// `state.backend: redis` the counters live in Redis instead (shared by
// every replica): the LEDGER hands batches of settlements and reservations
// to its redis_store, whose connection an io thread's event loop drives,
// and Redis's answer comes back as a message, so nothing waits on the
// network; what queues while a batch is out goes as the next batch.

#include "actors/contracts.hpp"
#include "actors/redis_store.hpp"
#include "core/config/config.hpp"
#include "core/policy/usage_ledger.hpp"

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace pw::actors {

struct ledger_state {
  static inline const char* name = "ledger";

  gateway_config_ptr config;
  /// Embedded: the counters themselves.
  usage_ledger book;
  /// Redis: the store (null when embedded) and how many batches are out.
  /// The backend is the one the process started with; a reload does not
  /// change it.
  std::shared_ptr<redis_store> store;
  size_t out = 0;
  /// Names this process's holds in Redis ("<random>:<n>").
  std::string replica;
  /// Redis: the settlements and reservations (with their promises and hold
  /// ids) that wait for the next batch. A batch goes out (when fewer than
  /// the most are out) once the LEDGER has read every message that came
  /// before it.
  std::vector<redis_reservation> reservations;
  struct waiting_grant {
    caf::typed_response_promise<usage_grant> promise;
    uint64_t hold = 0;
  };
  std::vector<waiting_grant> waiting;
  std::vector<redis_settlement> settlements;
  /// Configurations replaced while reservations made under them waited.
  std::vector<gateway_config_ptr> retained;
  bool batch_armed = false;
  /// The reservations of each batch out, by batch number.
  std::unordered_map<uint64_t, std::vector<waiting_grant>> sent;
  /// GET /v1/usage reads out, by batch number.
  std::unordered_map<uint64_t, caf::typed_response_promise<usage_report>>
    reports;
  uint64_t batches = 0;
  /// Redis is unreachable now (logged once per outage).
  bool outage = false;
  uint64_t unavailable = 0;
  /// Key name -> its limits and team (keys sharing a name share both).
  std::unordered_map<std::string, const api_key_config*> keys;
  /// An open hold, and when it ends without its settlement (its
  /// SESSION died before the grant reached it).
  struct open_hold {
    ledger_hold hold;
    caf::actor_clock::time_point expires;
  };
  /// Open holds by id.
  std::unordered_map<uint64_t, open_hold> holds;
  bool expiry_armed = false;
  uint64_t expired = 0;
  uint64_t next_hold = 0;
  /// Changes since the journal was last written.
  bool dirty = false;
  bool flush_armed = false;
  /// The last journal write failed (logged once until one succeeds).
  bool journal_failing = false;
  uint64_t reserved = 0;
  uint64_t settled = 0;
  uint64_t refused = 0;
  uint64_t settled_tokens = 0;
  uint64_t settled_cost = 0;

  ledger_state() = default;
  ledger_state(const ledger_state&) = delete;
  ledger_state& operator=(const ledger_state&) = delete;
  /// Writes the journal a last time; fails the reservations still waiting
  /// for Redis.
  ~ledger_state();

  /// Whether the counters are in Redis.
  [[nodiscard]] bool shared() const { return store != nullptr; }
};

/// Writes `text` to `path` through a temporary file and a rename, so the
/// journal is always whole. False with `why` on failure.
bool write_journal(const std::string& path, const std::string& text,
                   std::string& why);

/// Spawn function of the LEDGER actor. Reads the journal of
/// `config->state.path` first, if there is one (embedded), or makes its
/// Redis link with `links` (which connects at the first request).
ledger_actor::behavior_type
ledger(ledger_actor::stateful_pointer<ledger_state> self,
       gateway_config_ptr config, redis_link_factory links);

} // namespace pw::actors
