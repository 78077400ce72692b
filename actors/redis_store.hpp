#pragma once

// The LEDGER's shared backend (`state.backend: redis`): the same counters
// and rules as core/policy/usage_ledger.hpp, kept in one Redis that every
// replica uses. The store turns the LEDGER's batches into script calls and
// their replies into answers; the connection is a redis_link, which
// http/redis_link.hpp drives from an io thread's event loop (pipelined,
// each command bounded by `state.redis.timeout_ms`), so no thread ever
// waits on Redis.
// The reservations and settlements that queue up while Redis answers one
// batch go as the next batch: one Lua script, atomic on the server
// whatever the other replicas do, that reads and writes each scope's
// counters once and applies the batch's operations in order.

#include "core/config/config.hpp"
#include "core/policy/usage_ledger.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisReply;

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

/// One connection to Redis that pipelines commands: each gets its reply in
/// order. http/redis_link.hpp has the one the gateway uses.
class redis_link {
public:
  struct reply_deleter {
    void operator()(redisReply* r) const;
  };
  using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;
  /// Called once per command, on the link's thread: its reply (an error
  /// reply included), or null with why it got none (Redis unreachable, no
  /// answer within the timeout, the connection lost).
  using done_fn = std::function<void(reply_ptr reply, const std::string& why)>;

  virtual ~redis_link() = default;

  /// Sends command `argv`; callable from any thread.
  virtual void call(const std::vector<std::string>& argv, done_fn done) = 0;

  /// Closes the connection for good: what waits fails, later commands
  /// fail at once. Callable from any thread.
  virtual void close() = 0;
};
using redis_link_ptr = std::shared_ptr<redis_link>;
/// Makes the link of a LEDGER (app/ passes http::server's), which sends
/// the greeting commands on each new connection before any other.
using redis_link_factory = std::function<redis_link_ptr(
  const redis_config&, std::vector<std::vector<std::string>> greeting)>;

/// What the LEDGER asks Redis in one go: settlements and reservations to
/// make, scopes to read; answered with the same object, filled in.
struct redis_batch {
  /// Which batch of its LEDGER this is.
  uint64_t id = 0;
  /// Own the limits the reservations point to.
  std::vector<gateway_config_ptr> configs;
  std::vector<redis_settlement> settlements;
  std::vector<redis_reservation> reservations;
  std::chrono::system_clock::time_point at;
  redis_outcome outcome;
  /// Scopes to read, and what was read (nullopt: no answer).
  std::vector<std::string> reads;
  std::vector<std::optional<scope_counters>> read;
};
using redis_batch_ptr = std::shared_ptr<redis_batch>;

class redis_store {
public:
  /// The store's link comes from `links` (none: every call fails).
  redis_store(const redis_config& cfg, const redis_link_factory& links);
  /// Closes the link (a LEDGER that ends leaves no connection behind).
  ~redis_store();

  redis_store(const redis_store&) = delete;
  redis_store& operator=(const redis_store&) = delete;

  /// What each new connection sends first: SCRIPT LOAD of each script, so
  /// that every call after it finds its script.
  static std::vector<std::vector<std::string>> greeting();

  /// Runs `b`: every settlement, then every reservation, in one script
  /// (one round trip, atomic on the server, each scope's counters read and
  /// written once whatever the batch's size; reservations are checked and
  /// charged in the periods of `b->at`, and holds whose expiry is before
  /// it no longer count as in flight), and one read per scope of
  /// `b->reads`. Calls `done(b)` once every answer is in `b->outcome` and
  /// `b->read`, on the link's thread (at once when `b` asks nothing).
  void run(redis_batch_ptr b, std::function<void(redis_batch_ptr)> done) const;

private:
  /// Runs a script by its SHA-1, and by its text when Redis does not have
  /// it (its scripts were flushed while connected): `args` are EVALSHA's
  /// after the SHA-1.
  void eval(size_t script, std::vector<std::string> args,
            redis_link::done_fn done) const;

  std::string prefix_;
  redis_link_ptr link_;
};

} // namespace pw::actors
