#pragma once

// The MODEL actor: one per configured model. It owns the model's admission
// decision, in-flight count and counters; the resilience work adds the
// circuit breaker and the health loop here.

#include "actors/contracts.hpp"
#include "core/config.hpp"

#include <cstdint>
#include <string>

namespace pw::actors {

struct model_state {
  static inline const char* name = "model";

  /// The model's validated settings, shared with SESSIONs it admits.
  model_config_ptr settings;
  /// Admitted calls whose outcome has not arrived.
  uint64_t in_flight = 0;
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

  /// Applies one outcome to the counters.
  void record(const call_outcome& x);

  /// The state as /health shows it.
  [[nodiscard]] model_status status() const;
};

/// Spawn function of the MODEL actor.
model_actor::behavior_type
model(model_actor::stateful_pointer<model_state> self,
      model_config_ptr settings);

} // namespace pw::actors
