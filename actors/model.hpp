#pragma once

// The MODEL actor: one per configured model. It owns the model's circuit
// breaker, its admission decision (breaker, max_concurrent), its health
// loop, its in-flight count and the counters /health shows.

#include "actors/contracts.hpp"
#include "core/config/config.hpp"
#include "core/observe/latency_window.hpp"
#include "core/policy/circuit_breaker.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace pw::actors {

struct model_state {
  static inline const char* name = "model";

  /// The model's validated settings, shared with SESSIONs it admits; for a
  /// provider with a run-time credential, a copy of `configured` with the
  /// current access token.
  model_config_ptr settings;
  /// The settings as loaded.
  model_config_ptr configured;
  /// The provider needs a run-time credential (adapter::credential_request).
  bool needs_credential = false;
  /// When the access token in `settings` stops being valid.
  circuit_breaker::clock::time_point credential_expires{};
  /// Why the MODEL holds no valid credential ("" when it does).
  std::string credential_error;
  bool credential_in_flight = false;
  /// The health checks run (for a provider with a run-time credential,
  /// once its first token came).
  bool checks_started = false;
  /// Failed fetches in a row (the retry backs off: 1, 2, 4 ... 60 s).
  uint32_t credential_failures = 0;
  circuit_breaker breaker{breaker_settings{}};
  /// Runs health checks on an io thread (empty: no checks).
  upstream_fn check;
  /// Time between health checks (0: none).
  std::chrono::milliseconds check_interval{0};
  std::chrono::milliseconds check_timeout{5000};
  bool check_in_flight = false;
  /// One admitted call whose outcome has not arrived.
  struct lease {
    /// When it is taken back if no outcome came (its holder is gone).
    circuit_breaker::clock::time_point expires;
    /// It holds the half-open breaker's probe slot.
    bool probe = false;
  };
  /// Admitted calls whose outcome has not arrived, by lease id.
  std::unordered_map<uint64_t, lease> leases;
  uint64_t next_lease = 0;
  /// When leases are next looked at for expiry.
  circuit_breaker::clock::time_point next_sweep{};
  /// Leases that expired without an outcome (a bug or a lost message
  /// somewhere; each is logged).
  uint64_t expired = 0;
  /// How long past its request's deadline a lease waits for its outcome.
  static constexpr std::chrono::seconds lease_grace{10};
  uint64_t requests = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  uint64_t rejected = 0;
  uint64_t cancelled = 0;
  uint32_t last_status = 0;
  /// Last failure summary (no secrets).
  std::string last_error;
  int64_t last_latency_us = 0;
  /// Sum of latencies of finished calls, for the mean.
  int64_t total_latency_us = 0;
  latency_window<> latencies;
  std::string last_check;
  bool last_check_ok = false;
  std::string last_check_error;

  /// Whether the credential is valid at `now` (always, when none is needed).
  [[nodiscard]] bool
  has_credential(circuit_breaker::clock::time_point now) const {
    return !needs_credential
           || (!settings->access_token.empty() && now < credential_expires);
  }

  /// Applies one outcome to the counters (not to the breaker).
  void record(const call_outcome& x);

  /// Admitted calls in flight.
  [[nodiscard]] uint64_t in_flight() const { return leases.size(); }

  /// The state as /health shows it at `now`.
  [[nodiscard]] model_status
  status(circuit_breaker::clock::time_point now) const;
};

/// Spawn function of the MODEL actor. `check` runs its health checks (pass
/// an empty function for none); `health` gives thresholds and intervals.
model_actor::behavior_type
model(model_actor::stateful_pointer<model_state> self,
      model_config_ptr settings, health_config health, upstream_fn check);

} // namespace pw::actors
