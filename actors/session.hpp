#pragma once

// The SESSION actor: one per chat request. It runs the pre stage, asks the
// ROUTER for a model, makes the provider call through the io thread
// (upstream_fn), reports the outcome to the MODEL, runs the post stage and
// answers through reply_fn exactly once.

#include "actors/contracts.hpp"
#include "core/chat_request.hpp"
#include "core/exchange.hpp"

#include <chrono>
#include <optional>

namespace pw::actors {

struct session_state {
  static inline const char* name = "session";

  chat_context ctx;
  router_actor router;
  reply_fn reply;
  upstream_fn upstream;
  /// The admitted model while its call is in flight.
  std::optional<route_decision> decision;
  /// True while a MODEL waits for this session's outcome report.
  bool outcome_pending = false;
  std::chrono::steady_clock::time_point attempt_start;

  session_state() = default;
  session_state(const session_state&) = delete;
  session_state& operator=(const session_state&) = delete;

  /// Whatever ends the actor, an admitted MODEL gets its slot back, and a
  /// client that got no answer gets the bridge's 500 (reply_fn's fallback).
  ~session_state();
};

/// Spawn function of the SESSION actor.
session_actor::behavior_type
session(session_actor::stateful_pointer<session_state> self, chat_context ctx,
        router_actor router, reply_fn reply, upstream_fn upstream);

} // namespace pw::actors
