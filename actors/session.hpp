#pragma once

// The SESSION actor: one per chat request. It runs the pre stage (each pre
// PLUGIN in order, each within its timeout, failing closed unless
// `on_error: continue`), asks the ROUTER for the route's ordered candidates
// and walks them: asks each MODEL for admission until one admits, makes the
// provider call through the io thread (upstream_fn), reports each outcome to
// its MODEL, falls back along the route (retrying a model `max_retries` times
// with backoff) while nothing has reached the client, runs the post stage (each
// post PLUGIN sees how the request ended, streams included) and answers through
// reply_fn exactly once.

#include "actors/contracts.hpp"
#include "actors/session_trace.hpp"
#include "core/request/chat_request.hpp"
#include "core/request/exchange.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pw::actors {

struct session_state {
  static inline const char* name = "session";

  chat_context ctx;
  /// The configuration the request started on.
  gateway_config_ptr config;
  router_actor router;
  ledger_actor ledger;
  /// A governed key's hold at the LEDGER (0 = none): settled when the
  /// session ends, whatever ends it.
  uint64_t hold = 0;
  /// The `x-ratelimit-*` headers every answer carries.
  std::vector<header_field> limit_headers;
  /// What the answer used, and the model that gave it ("" = none).
  token_usage usage;
  std::string answered_by;
  /// An answer (or part of a stream) reached the client.
  bool answered = false;
  /// The pre and post PLUGINs of this request's generation (may be null).
  plugin_set_ptr plugins;
  reply_fn reply;
  upstream_fn upstream;
  /// The admitted model of the current attempt.
  std::optional<route_decision> decision;
  /// The ROUTER's plan, in route order; those from `next` on are not tried
  /// yet. (A vector: a deque allocates 576 bytes even when empty, for every
  /// request.)
  std::vector<candidate> remaining;
  size_t next = 0;
  /// The soonest a refusing MODEL's breaker admits a probe (ms; 0 = no
  /// refusal said), for the Retry-After of a 503 when none admits.
  int64_t soonest_retry_ms = 0;
  /// True while a MODEL waits for this session's outcome report.
  bool outcome_pending = false;
  std::chrono::steady_clock::time_point attempt_start;
  /// Retries spent on the current model.
  uint32_t retries = 0;
  /// Every attempt (model and outcome), for the final 502 and the post
  /// stage.
  std::vector<attempt_note> attempts;
  /// Time every attempt so far spent upstream (the gateway's overhead is
  /// the rest).
  std::chrono::microseconds upstream_spent{0};
  /// Why the route was chosen (`X-Route-Reason`).
  std::string route_reason;
  /// Facts pre plugins recorded, and the one that blocked (if any).
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  std::string blocked_by;
  /// Hex SHA-256 of the body as received (only when post plugins run).
  std::string request_sha256;
  /// A streamed answer's assembled text, for the post stage (kept only
  /// when there is one, and bounded: stream_options::keep_text).
  std::string stream_text;
  bool stream_text_truncated = false;
  /// What the post plugins in `stream: hold` did to the stream.
  std::vector<held_report> held;
  /// The client asked for a stream and gets a whole answer as one: turned
  /// into events after the post stage.
  bool wrap_sse = false;
  bool post_started = false;
  /// The request is ending (finish() ran): answers that arrive now from
  /// PLUGINs, the ROUTER, MODELs or a retry timer are dropped (admissions
  /// given back).
  bool finished = false;
  /// The client left (the io thread's cancel): no retry or fallback runs
  /// for nobody, and the exchange in flight, cut, ends the request.
  bool client_gone = false;
  /// What the client gets if no attempt succeeds.
  std::optional<api_error> last_error;
  unsigned last_status = 0;
  /// The request's spans while `tracing` is on, and where they go
  /// (actors/session_trace.hpp); what the client got, for them.
  std::unique_ptr<request_tracing> tracing;
  tracer_actor tracer;
  unsigned final_status = 0;
  std::string final_error;
  /// How it ended, for /health's SESSION counts (set by a cancel).
  actor_stats::session_end ended_as = actor_stats::session_end::answered;

  /// Counts the SESSION for /health (and its end, in the destructor).
  session_state() { actor_stats::session_started(); }
  session_state(const session_state&) = delete;
  session_state& operator=(const session_state&) = delete;

  /// Whatever ends the actor, an admitted MODEL gets its slot back, and a
  /// client that got no answer gets the bridge's 500 (reply_fn's fallback).
  ~session_state();
};

/// Backoff before retry `n` (1, 2, ...) of the same model: 100 ms doubling
/// up to 2 s, with +-50 % jitter so clients do not retry in step.
std::chrono::milliseconds retry_backoff(uint32_t n);

/// Spawn function of the SESSION actor. `plugins` may be null (none);
/// `tracer` is null while `tracing` is off.
session_actor::behavior_type
session(session_actor::stateful_pointer<session_state> self, chat_context ctx,
        gateway_config_ptr config, router_actor router, ledger_actor ledger,
        plugin_set_ptr plugins, reply_fn reply, upstream_fn upstream,
        tracer_actor tracer);

} // namespace pw::actors
