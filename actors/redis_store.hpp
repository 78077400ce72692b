#pragma once

// The LEDGER's shared backend (`state.backend: redis`): the same counters
// and rules as core/policy/usage_ledger.hpp, kept in one Redis that every
// replica uses. The client is hiredis's synchronous API, bounded by
// `state.redis.timeout_ms`: the LEDGER's Redis worker that owns a store
// runs on a thread of its own (caf::detached), so a slow Redis never
// blocks an io thread.
// The reservations and settlements that queue up while Redis answers one
// batch go as the next batch: one Lua script, atomic on the server
// whatever the other replicas do, that reads and writes each scope's
// counters once and applies the batch's operations in order.

#include "core/config/config.hpp"
#include "core/policy/usage_ledger.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace pw::actors {

/// A reservation to make in Redis.
struct redis_reservation {
  /// Scopes without limits are skipped. The limits must outlive exchange().
  std::vector<ledger_scope> scopes;
  usage_amount worst;
  /// Names the hold in the scopes' sets of requests in flight.
  std::string hold_id;
  /// When the hold leaves those sets if its settlement never comes.
  int64_t expires_unix_ms = 0;
};

/// A settlement to make in Redis.
struct redis_settlement {
  ledger_hold hold;
  std::string hold_id;
  usage_amount actual;
};

/// What one exchange() got.
struct redis_outcome {
  /// Per reservation, in order: the answer (as usage_ledger::reserve
  /// gives it), or nullopt when it got none.
  std::vector<std::optional<ledger_answer>> answers;
  /// Settlements that got no answer (their reservations stay charged).
  size_t settlements_failed = 0;
  /// Why something got no answer.
  std::string why;
};

class redis_store {
public:
  explicit redis_store(redis_config cfg);
  ~redis_store();

  redis_store(const redis_store&) = delete;
  redis_store& operator=(const redis_store&) = delete;

  /// Makes every settlement, then every reservation, in one script: one
  /// round trip, atomic on the server, each scope's counters read and
  /// written once whatever the batch's size. Reservations are checked and
  /// charged in the periods of `at`; holds whose expiry is before `at` no
  /// longer count as in flight.
  redis_outcome exchange(const std::vector<redis_settlement>& settlements,
                         const std::vector<redis_reservation>& reservations,
                         std::chrono::system_clock::time_point at);

  /// The counters of `scope` in the periods of `now`; nullopt when Redis
  /// cannot be reached.
  std::optional<scope_counters>
  read(const std::string& scope, const ledger_periods& now, std::string& why);

private:
  struct reply_deleter {
    void operator()(void* r) const;
  };
  using reply_ptr = std::unique_ptr<void, reply_deleter>;
  /// One script call: which script, and EVALSHA's argv (the SHA-1 is
  /// filled in when it is sent).
  struct call {
    int script = 0;
    std::vector<std::string> argv;
  };

  /// Connects (at most once a second while Redis is away), loads the
  /// scripts; false with `why` when that fails.
  bool connect(std::string& why);
  void drop();
  /// Runs a script call, reconnecting once when the connection was closed
  /// and loading the scripts again after a Redis restart; null with `why`
  /// when it got no answer.
  reply_ptr run(call& c, std::string& why);

  redis_config cfg_;
  redisContext* ctx_ = nullptr;
  std::vector<std::string> shas_;
  bool available_ = true;
  std::chrono::steady_clock::time_point last_attempt_{};
};

} // namespace pw::actors
