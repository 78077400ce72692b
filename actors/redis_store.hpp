#pragma once

// The LEDGER's shared backend (`state.backend: redis`): the same counters
// and rules as core/policy/usage_ledger.hpp, kept in one Redis that every
// replica uses. A reservation and a settlement are each one Lua script, so
// each is atomic on the server whatever the other replicas do. The client
// is hiredis's synchronous API, bounded by `state.redis.timeout_ms`: the
// LEDGER that owns a store runs on a thread of its own (caf::detached), so
// a slow Redis never blocks an io thread.

#include "core/config/config.hpp"
#include "core/policy/usage_ledger.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace pw::actors {

class redis_store {
public:
  explicit redis_store(redis_config cfg);
  ~redis_store();

  redis_store(const redis_store&) = delete;
  redis_store& operator=(const redis_store&) = delete;

  /// Checks and charges like usage_ledger::reserve, on the server. Returns
  /// nullopt when Redis cannot be reached (`why` says why); the hold then
  /// holds nothing.
  std::optional<ledger_answer>
  reserve(const std::vector<ledger_scope>& scopes, usage_amount worst,
          const ledger_periods& now, const std::string& hold_id,
          int64_t expires_unix_ms, std::string& why);

  /// Replaces a hold's reservation by the real usage. False when Redis
  /// cannot be reached.
  bool settle(const ledger_hold& hold, const std::string& hold_id,
              usage_amount actual, std::string& why);

  /// The counters of `scope` in the periods of `now`; nullopt when Redis
  /// cannot be reached.
  std::optional<scope_counters>
  read(const std::string& scope, const ledger_periods& now, std::string& why);

  /// Whether the last exchange worked.
  [[nodiscard]] bool available() const { return available_; }

private:
  /// Connects (at most once a second while Redis is away), loads the
  /// scripts; false with `why` when that fails.
  bool connect(std::string& why);
  void drop();
  /// Runs a script by its SHA-1, reconnecting once when the connection was
  /// closed and loading the scripts again after a Redis restart.
  struct reply_deleter {
    void operator()(void* r) const;
  };
  using reply_ptr = std::unique_ptr<void, reply_deleter>;
  reply_ptr eval(int which, const std::vector<std::string>& keys,
                 const std::vector<std::string>& args, std::string& why);
  std::vector<std::string> keys_of(const std::string& scope,
                                   const ledger_periods& at) const;

  redis_config cfg_;
  redisContext* ctx_ = nullptr;
  std::vector<std::string> shas_;
  bool available_ = true;
  std::chrono::steady_clock::time_point last_attempt_{};
};

} // namespace pw::actors
