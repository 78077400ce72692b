#pragma once

// The SESSION actor: one per chat request. It runs the pre stage, asks the
// ROUTER for a model, makes the provider call through the io thread
// (upstream_fn), reports each outcome to its MODEL, falls back along the
// route (retrying a model `max_retries` times with backoff) while nothing
// has reached the client, runs the post stage and answers through
// reply_fn exactly once.

#include "actors/contracts.hpp"
#include "core/chat_request.hpp"
#include "core/exchange.hpp"

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace pw::actors {

struct session_state {
  static inline const char* name = "session";

  chat_context ctx;
  router_actor router;
  reply_fn reply;
  upstream_fn upstream;
  /// The admitted model of the current attempt.
  std::optional<route_decision> decision;
  /// Candidates not tried yet, in route order.
  std::deque<candidate> remaining;
  /// True while a MODEL waits for this session's outcome report.
  bool outcome_pending = false;
  std::chrono::steady_clock::time_point attempt_start;
  /// Retries spent on the current model.
  uint32_t retries = 0;
  /// "alias: failure" per failed attempt, for the final 502.
  std::vector<std::string> attempts;
  /// What the client gets if no attempt succeeds.
  std::optional<api_error> last_error;
  unsigned last_status = 0;

  session_state() = default;
  session_state(const session_state&) = delete;
  session_state& operator=(const session_state&) = delete;

  /// Whatever ends the actor, an admitted MODEL gets its slot back, and a
  /// client that got no answer gets the bridge's 500 (reply_fn's fallback).
  ~session_state();
};

/// Backoff before retry `n` (1, 2, ...) of the same model: 100 ms doubling
/// up to 2 s, with +-50 % jitter so clients do not retry in step.
std::chrono::milliseconds retry_backoff(uint32_t n);

/// Spawn function of the SESSION actor.
session_actor::behavior_type
session(session_actor::stateful_pointer<session_state> self, chat_context ctx,
        router_actor router, reply_fn reply, upstream_fn upstream);

} // namespace pw::actors
