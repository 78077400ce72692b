#pragma once

// Every atom, message and typed actor interface of pw-router. Reading this
// file tells you every message in the system:
//
//   io thread --spawn--> SESSION --resolve--> ROUTER (the ordered candidates)
//   SESSION --admit--> each candidate MODEL in turn, until one admits
//   SESSION --upstream_fn--> io thread --upstream--> SESSION
//   SESSION --outcome--> MODEL;  SESSION --reply_fn--> io thread
//   io thread --cancel--> SESSION (the deadline fired, or the client left)
//   io thread --health--> SUPERVISOR --status--> every MODEL and the ROUTER
//   SESSION --pre--> each pre PLUGIN;  SESSION --post--> each post PLUGIN
//   SESSION --reserve--> LEDGER (a governed key's worst case, after the
//   route);  SESSION --settle--> LEDGER (the real usage, at the end)

#include "actors/fwd.hpp"

#include "core/config/config.hpp"
#include "core/observe/actor_stats.hpp"
#include "core/observe/trace.hpp"
#include "core/request/exchange.hpp"
#include "core/request/stream_guard.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pw::atom {

// Atoms are at most 10 characters (CAF 0.17). CAF's own are reused where
// they fit: caf::get_atom, caf::update_atom.

/// Ask a MODEL to admit one call.
using admit = caf::atom_constant<caf::atom("admit")>;
constexpr admit admit_v{};
/// Report what happened to an admitted call.
using outcome = caf::atom_constant<caf::atom("outcome")>;
constexpr outcome outcome_v{};
/// Ask a MODEL for its state.
using status = caf::atom_constant<caf::atom("status")>;
constexpr status status_v{};
/// Ask the ROUTER for a route.
using resolve = caf::atom_constant<caf::atom("resolve")>;
constexpr resolve resolve_v{};
/// Ask the SUPERVISOR for every model's state.
using health = caf::atom_constant<caf::atom("health")>;
constexpr health health_v{};
/// An upstream exchange finished (io thread -> SESSION).
using upstream = caf::atom_constant<caf::atom("upstream")>;
constexpr upstream upstream_v{};
/// Time for a MODEL's health check (MODEL to itself).
using probe = caf::atom_constant<caf::atom("probe")>;
constexpr probe probe_v{};
/// A health check finished (io thread -> MODEL).
using checked = caf::atom_constant<caf::atom("checked")>;
constexpr checked checked_v{};
/// Time to fetch a MODEL's run-time credential (MODEL to itself).
using renew = caf::atom_constant<caf::atom("renew")>;
constexpr renew renew_v{};
/// A credential fetch finished (io thread -> MODEL).
using renewed = caf::atom_constant<caf::atom("renewed")>;
constexpr renewed renewed_v{};
/// Time for a SESSION's next attempt after a backoff (SESSION to itself).
using retry = caf::atom_constant<caf::atom("retry")>;
constexpr retry retry_v{};
/// Ask a PLUGIN to check a request (pre stage).
using pre = caf::atom_constant<caf::atom("pre")>;
constexpr pre pre_v{};
/// Show a PLUGIN how a request ended (post stage).
using post = caf::atom_constant<caf::atom("post")>;
constexpr post post_v{};
/// Time to flush buffered work (a PLUGIN to itself, e.g. audit fsync).
using flush = caf::atom_constant<caf::atom("flush")>;
constexpr flush flush_v{};
/// Time for a signed audit checkpoint (the audit PLUGIN to itself), or one
/// to deliver (the audit PLUGIN -> its witness sender).
using checkpoint = caf::atom_constant<caf::atom("checkpoint")>;
constexpr checkpoint checkpoint_v{};
/// A finished request's spans (SESSION -> TRACER).
using spans = caf::atom_constant<caf::atom("spans")>;
constexpr spans spans_v{};
/// A new configuration to serve (main thread -> SUPERVISOR, on SIGHUP).
using reload = caf::atom_constant<caf::atom("reload")>;
constexpr reload reload_v{};
/// Actors of an old generation may end now (SUPERVISOR to itself).
using retire = caf::atom_constant<caf::atom("retire")>;
constexpr retire retire_v{};
/// A PLUGIN's restart backoff is over (SUPERVISOR to itself).
using restart = caf::atom_constant<caf::atom("restart")>;
constexpr restart restart_v{};
/// The io thread stopped waiting for a request (its deadline passed and
/// the client got 504): the SESSION ends it (io thread -> SESSION).
using cancel = caf::atom_constant<caf::atom("cancel")>;
constexpr cancel cancel_v{};
/// Reserve a request's worst case (SESSION -> LEDGER).
using reserve = caf::atom_constant<caf::atom("reserve")>;
constexpr reserve reserve_v{};
/// Replace a reservation by the real usage (SESSION -> LEDGER).
using settle = caf::atom_constant<caf::atom("settle")>;
constexpr settle settle_v{};
/// Time to end the holds whose settlement never came (LEDGER to itself).
using expire = caf::atom_constant<caf::atom("expire")>;
/// INTERNAL: Redis answered a batch (to the LEDGER).
using exchanged = caf::atom_constant<caf::atom("exchanged")>;
constexpr exchanged exchanged_v{};
constexpr expire expire_v{};
using get = caf::get_atom;
constexpr get get_v{};
using update = caf::update_atom;
constexpr update update_v{};

} // namespace pw::atom

namespace pw::actor_stats {

// Found by argument-dependent lookup: these live in the types' namespace.

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plugin_snapshot& x) {
  return f(caf::meta::type_name("plugin_snapshot"), x.calls, x.blocks,
           x.timeouts, x.failures, x.p50_us, x.p99_us, x.last_error,
           x.last_error_at);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_counts& x) {
  return f(caf::meta::type_name("session_counts"), x.started, x.answered,
           x.cancelled, x.deadline);
}

} // namespace pw::actor_stats

namespace pw::actors {

// -- messages ----------------------------------------------------------------

/// SESSION -> MODEL: may this request use you?
struct admit_request {
  /// How long the request may still run (its deadline, from now): an
  /// admission whose outcome never comes is taken back this long after,
  /// plus a grace period (model_state::lease_grace).
  int64_t ttl_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admit_request& x) {
  return f(caf::meta::type_name("admit_request"), x.ttl_ms);
}

/// MODEL -> SESSION: the answer to admit. `settings` is shared, immutable
/// config (hence an unsafe message type: it never leaves the process).
struct admission {
  bool admitted = false;
  /// Why not, when refused (e.g. "circuit open").
  std::string reason;
  model_config_ptr settings;
  /// Refused by an open breaker: milliseconds until it admits a probe.
  int64_t retry_after_ms = 0;
  /// Admitted as the half-open breaker's single probe.
  bool probe = false;
  /// The admission's lease: the outcome report names it. A lease whose
  /// outcome never comes (its holder died, a message was lost) expires, so
  /// neither an in-flight slot nor the probe slot is lost for good.
  uint64_t lease = 0;
  /// Set when the model's provider needs a run-time credential (a token)
  /// and the MODEL holds no valid one: why. The SESSION then fails the
  /// attempt without calling (upstream_failure::credentials).
  std::string credential_error{};
};

/// How an admitted call ended.
enum class call_result : uint8_t {
  /// The provider answered 2xx with a well-formed body.
  success,
  /// Transport failure, timeout, 5xx, 429, malformed answer: counts
  /// against the model.
  failure,
  /// The provider rejected the request (4xx): the client's fault.
  rejected,
  /// The call never finished: client gone, deadline, shutdown.
  cancelled,
};

/// Tokens an answer used, as the provider reported them.
struct token_usage {
  uint64_t prompt = 0;
  uint64_t completion = 0;
  /// Prompt tokens served from the provider's cache.
  uint64_t cached = 0;
  /// The provider reported usage at all.
  bool known = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_usage& x) {
  return f(caf::meta::type_name("token_usage"), x.prompt, x.completion,
           x.cached, x.known);
}

/// SESSION -> MODEL: what happened to one admitted call.
struct call_outcome {
  call_result result = call_result::success;
  /// Upstream HTTP status, 0 if none arrived.
  uint32_t status = 0;
  int64_t latency_us = 0;
  /// Failure summary for /health; never contains secrets.
  std::string error;
  /// Echoes admission::lease.
  uint64_t lease = 0;
};

std::string to_string(call_result x);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_outcome& x) {
  return f(caf::meta::type_name("call_outcome"), x.result, x.status,
           x.latency_us, x.error, x.lease);
}

/// MODEL -> SUPERVISOR: one model's state for /health.
struct model_status {
  std::string alias;
  std::string provider;
  std::string model;
  /// "closed", "open" or "half_open".
  std::string circuit = "closed";
  uint64_t in_flight = 0;
  uint64_t requests = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  uint64_t rejected = 0;
  uint64_t cancelled = 0;
  uint32_t last_status = 0;
  std::string last_error;
  int64_t last_latency_us = 0;
  int64_t mean_latency_us = 0;
  int64_t p50_latency_us = 0;
  int64_t p99_latency_us = 0;
  uint32_t consecutive_failures = 0;
  /// Last health check: when (RFC 3339, "" if none yet), and its result.
  std::string last_check;
  bool last_check_ok = false;
  std::string last_check_error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, model_status& x) {
  return f(caf::meta::type_name("model_status"), x.alias, x.provider, x.model,
           x.circuit, x.in_flight, x.requests, x.successes, x.failures,
           x.rejected, x.cancelled, x.last_status, x.last_error,
           x.last_latency_us, x.mean_latency_us, x.p50_latency_us,
           x.p99_latency_us, x.consecutive_failures, x.last_check,
           x.last_check_ok, x.last_check_error);
}

/// ROUTER -> SUPERVISOR: the ROUTER's state for /health.
struct router_status {
  /// Requests given their candidates, and refused (rate limit, no route,
  /// a model the key may not use).
  uint64_t resolved = 0;
  uint64_t refused = 0;
  /// Messages waiting in its mailbox: the requests it has yet to resolve
  /// (it resolves each one as it takes it, so these are its in flight).
  uint64_t mailbox = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, router_status& x) {
  return f(caf::meta::type_name("router_status"), x.resolved, x.refused,
           x.mailbox);
}

/// One PLUGIN entry for /health: the SUPERVISOR's view (running, restarts)
/// and its SESSIONs' (calls and how they went).
struct plugin_health {
  /// "pre" or "post", the index in that stage, the plugin's name and the
  /// entry's YAML path.
  std::string stage;
  uint64_t index = 0;
  std::string name;
  std::string entry;
  bool running = true;
  /// Times the SUPERVISOR started it again after it ended.
  uint32_t restarts = 0;
  /// When it went down (RFC 3339); "" while running.
  std::string down_since;
  /// When the SUPERVISOR starts it again (RFC 3339); "" when it runs, or
  /// when the restart budget is spent (down until a reload).
  std::string restart_at;
  actor_stats::plugin_snapshot calls;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plugin_health& x) {
  return f(caf::meta::type_name("plugin_health"), x.stage, x.index, x.name,
           x.entry, x.running, x.restarts, x.down_since, x.restart_at, x.calls);
}

/// SUPERVISOR -> io thread: every actor's state, models in config order.
struct health_report {
  std::vector<model_status> models;
  /// The running configuration: SHA-256 of its file and when it was loaded.
  std::string config_sha256;
  std::string config_loaded_at;
  /// 1 at start-up, one more with each reload.
  uint64_t generation = 1;
  /// Restarts in the current one-minute window, and how many more it
  /// allows.
  uint32_t restarts_last_minute = 0;
  uint32_t restart_budget_left = 0;
  /// Children left dead once the budget was spent ("model <alias>",
  /// "ledger", "plugin pre[0] (<name>)"): down until a reload.
  std::vector<std::string> given_up;
  router_status router;
  /// False when the ROUTER did not answer in time (`partial` says so).
  bool router_answered = true;
  std::vector<plugin_health> plugins;
  actor_stats::session_counts sessions;
  /// The parts that did not answer in time, in words.
  std::vector<std::string> partial;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_report& x) {
  return f(caf::meta::type_name("health_report"), x.models, x.config_sha256,
           x.config_loaded_at, x.generation, x.restarts_last_minute,
           x.restart_budget_left, x.given_up, x.router, x.router_answered,
           x.plugins, x.sessions, x.partial);
}

/// SESSION -> ROUTER: find the models this request may use.
struct resolve_request {
  std::string request_id;
  /// The key's name: the rate-limit bucket.
  std::string client;
  /// Index into `server.api_keys`: whose allowlist applies.
  uint64_t key_index = 0;
  /// The `model` the client asked for ("" = none).
  std::string model;
  std::vector<std::string> tags;
  /// The API called: only models that serve it are candidates.
  api_endpoint endpoint = api_endpoint::chat;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resolve_request& x) {
  return f(caf::meta::type_name("resolve_request"), x.request_id, x.client,
           x.key_index, x.model, x.tags, x.endpoint);
}

// -- interfaces --------------------------------------------------------------

/// The MODEL actor interface: one per configured model; owns its breaker
/// state, in-flight count and counters.
using model_actor = caf::typed_actor<
  // Admits or refuses one call (counts it as in flight when admitted).
  caf::replies_to<atom::admit, admit_request>::with<admission>,
  // Records how an admitted call ended (releases its in-flight slot).
  caf::reacts_to<atom::outcome, call_outcome>,
  // Reports the model's state for /health.
  caf::replies_to<atom::status>::with<model_status>,
  // INTERNAL: runs one health check and re-arms the timer.
  caf::reacts_to<atom::probe>,
  // INTERNAL: a health check finished (from the io thread).
  caf::reacts_to<atom::checked, upstream_result>,
  // INTERNAL: fetches the run-time credential (a token) and re-arms.
  caf::reacts_to<atom::renew>,
  // INTERNAL: a credential fetch finished (from the io thread).
  caf::reacts_to<atom::renewed, upstream_result>>;

/// One model of a route: its alias and its actor.
struct candidate {
  std::string alias;
  model_actor model;
};

/// ROUTER -> SESSION: every model the request may use, in the order the
/// SESSION tries them (admission, then fallback), and why.
struct route_plan {
  /// Why this route (`X-Route-Reason`), e.g. "model:gpt-4o" or
  /// "tag:client-data->chain:local".
  std::string reason;
  std::vector<candidate> candidates;
};

/// The model a SESSION's current attempt runs on: a candidate whose MODEL
/// admitted the call.
struct route_decision {
  std::string alias;
  model_actor model;
  model_config_ptr settings;
  /// The admission's lease (echoed in the outcome).
  uint64_t lease = 0;
  /// admission::credential_error.
  std::string credential_error{};
};

/// The decision for a candidate whose MODEL admitted the call.
inline route_decision decision_for(std::string alias, model_actor model,
                                   admission&& a) {
  route_decision d;
  d.alias = std::move(alias);
  d.model = std::move(model);
  d.settings = std::move(a.settings);
  d.lease = a.lease;
  d.credential_error = std::move(a.credential_error);
  return d;
}

/// SESSION -> LEDGER: reserve the worst case of a governed request.
struct usage_request {
  std::string request_id;
  /// The key's name and its team ("" = none): the scopes charged.
  std::string client;
  std::string team;
  /// The route's models: the reservation is priced at the dearest.
  std::vector<std::string> models;
  /// Estimated prompt tokens (usage_estimate.hpp).
  uint64_t prompt_tokens = 0;
  /// The most output tokens the request allows: max_tokens times n, or
  /// the largest `default_max_tokens` of the route's models (0 for
  /// embeddings).
  uint64_t max_output = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_request& x) {
  return f(caf::meta::type_name("usage_request"), x.request_id, x.client,
           x.team, x.models, x.prompt_tokens, x.max_output);
}

/// LEDGER -> SESSION: a hold, or why not; and the `x-ratelimit-*`
/// headers either way.
struct usage_grant {
  /// The hold's id (settle names it); 0 when refused.
  uint64_t hold = 0;
  /// Refused: the client's error (429 rate_limit_exceeded or
  /// insufficient_quota; 503 when the usage state is unreachable).
  std::optional<api_error> refusal;
  std::vector<header_field> headers;
};

/// SESSION -> LEDGER: how a request with a hold ended.
struct usage_settlement {
  uint64_t hold = 0;
  /// The model that answered ("" = none did: nothing is charged).
  std::string model;
  token_usage usage;
  /// No usage reported, but an answer went out (a stream cut, a provider
  /// that omits usage): the reservation is charged whole.
  bool charge_reservation = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_settlement& x) {
  return f(caf::meta::type_name("usage_settlement"), x.hold, x.model, x.usage,
           x.charge_reservation);
}

/// One scope's limits and use, for GET /v1/usage and /metrics.
struct scope_usage {
  /// "key:<name>" or "team:<name>".
  std::string scope;
  usage_limits limits;
  uint64_t minute_requests = 0;
  uint64_t minute_tokens = 0;
  uint64_t day_tokens = 0;
  uint64_t month_tokens = 0;
  /// pico-USD.
  uint64_t month_cost = 0;
  uint64_t in_flight = 0;
};

/// LEDGER -> io thread: every scope, and the ledger's own counters.
struct usage_report {
  std::vector<scope_usage> scopes;
  /// "embedded" or "redis".
  std::string backend;
  /// False while the backend cannot be reached.
  bool available = true;
  uint64_t reserved = 0;
  uint64_t settled = 0;
  uint64_t refused = 0;
  uint64_t unavailable = 0;
  /// Tokens settled (real usage) and their cost, since start.
  uint64_t settled_tokens = 0;
  uint64_t settled_cost = 0;
};

/// ROUTER -> ROUTER: every client's rate-limit window (admission times,
/// oldest first), handed to the ROUTER of a newer generation.
struct rate_windows {
  std::vector<
    std::pair<std::string, std::vector<std::chrono::steady_clock::time_point>>>
    clients;
};

/// The ROUTER actor interface: owns the routing table, the key allowlists
/// and the per-client rate limits. It admits nothing: the SESSION asks
/// the candidates' MODELs.
using router_actor = caf::typed_actor<
  // Resolves a request to its ordered candidates, or an error
  // (invalid_api_key, model_not_found, model_not_allowed, no_allowed_model,
  // rate_limited).
  caf::replies_to<atom::resolve, resolve_request>::with<route_plan>,
  // INTERNAL (from the SUPERVISOR): a MODEL was restarted under a new handle.
  caf::reacts_to<atom::update, std::string, model_actor>,
  // Hands its clients' rate-limit windows to its successor (a reload), so
  // a limit holds across SIGHUP.
  caf::replies_to<atom::get>::with<rate_windows>,
  // Reports its counters and mailbox for /health.
  caf::replies_to<atom::status>::with<router_status>>;

/// What a PLUGIN sees of a request (pre stage), and of the request part of
/// an outcome (post stage). Documents are shared and immutable: a PLUGIN
/// that changes one answers with a new one.
struct plugin_request {
  std::string request_id;
  /// The key's name.
  std::string client;
  /// The API called: which fields of `body` hold the request's text
  /// (plugins::request_texts reads them).
  api_endpoint endpoint = api_endpoint::chat;
  /// The body as the previous plugins left it.
  std::shared_ptr<const nlohmann::ordered_json> body;
  /// Routing tags set so far.
  std::vector<std::string> tags;
  /// Facts plugins recorded so far (an object; e.g.
  /// "pii_request": {"email": 1}).
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
};

/// One attempt of a request: which model and how it went ("ok",
/// "skipped (circuit open)", "connect: refused", "HTTP 503", ...).
struct attempt_note {
  std::string model;
  std::string outcome;
  /// The outcome's class for the metrics: success, failure, rejected,
  /// cancelled or skipped.
  std::string_view kind;
};

/// SESSION -> post PLUGIN: a request and how it ended.
struct plugin_outcome {
  plugin_request request;
  /// Hex SHA-256 of the body as the client sent it.
  std::string request_sha256;
  /// Hex SHA-256 of the configuration that served the request.
  std::string config_sha256;
  /// What the client gets (or got, for a stream).
  unsigned status = 0;
  /// A successful non-streamed answer: the body the client gets, which
  /// post plugins may change (answering with a new document). Null
  /// otherwise.
  std::shared_ptr<const std::string> response_body;
  /// The client asked for a stream.
  bool stream_requested = false;
  /// A relayed stream: the assistant text assembled from it (recorded, not
  /// changeable: the client has it already), at most max_kept_stream_text
  /// bytes; `stream_text_truncated` says when more was sent.
  bool streamed = false;
  bool stream_complete = false;
  std::string stream_text;
  bool stream_text_truncated = false;
  /// An error answer: its code and message ("" on success).
  std::string error_code;
  std::string error_message;
  /// The model that answered ("" if none), every attempt, and why the
  /// route was chosen.
  std::string model;
  std::vector<attempt_note> attempts;
  std::string route_reason;
  /// The pre plugin that blocked the request ("" if none).
  std::string blocked_by;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  std::chrono::microseconds latency{0};
};

/// A PLUGIN's answer.
struct plugin_verdict {
  /// Stop the request with `status` and `message` (pre stage), or replace
  /// the response with that error (post stage, non-streamed).
  bool block = false;
  unsigned status = 0;
  std::string message;
  /// A changed document (pre: the request body; post: the response); null
  /// when unchanged.
  std::shared_ptr<const nlohmann::ordered_json> body;
  /// Tags to add.
  std::vector<std::string> tags;
  /// Fields to merge into the request's metadata (null = none).
  nlohmann::ordered_json metadata;
};

/// The PLUGIN actor interface: one per configured middleware entry. Both
/// stages are in every interface; a plugin answers `continue` (an empty
/// verdict) in a stage it does not act in.
using plugin_actor = caf::typed_actor<
  caf::replies_to<atom::pre, plugin_request>::with<plugin_verdict>,
  caf::replies_to<atom::post, plugin_outcome>::with<plugin_verdict>>;

/// One configured plugin as a SESSION calls it.
struct plugin_slot {
  /// The plugin's name and the entry's YAML path (for errors and logs).
  std::string name;
  std::string path;
  plugin_actor actor;
  std::chrono::milliseconds timeout{1000};
  /// `on_error: continue`: a failure or timeout lets the request pass.
  bool fail_open = false;
  /// A post plugin: how it treats streamed answers.
  stream_mode stream = stream_mode::record;
  /// How its calls went, as its SESSIONs saw them (for /health); kept
  /// across restarts of its PLUGIN and reloads that keep the entry.
  actor_stats::plugin_counters_ptr stats;
  /// Times the SUPERVISOR started its PLUGIN again, when it went down
  /// ("" while it runs) and when it restarts ("" if not scheduled).
  uint32_t restarts = 0;
  std::string down_since;
  std::string restart_at;
};

/// The plugins of a generation, in config order per stage.
struct plugin_set {
  std::vector<plugin_slot> pre;
  std::vector<plugin_slot> post;
  /// The post plugins in `stream: hold`, in order: every stream passes
  /// them (core/request/stream_guard.hpp). Null when none holds.
  held_stages_ptr held;
  /// The first post plugin in `stream: refuse`, if any: a request for a
  /// stream is answered 400.
  std::optional<size_t> refuses_streams;
};

using plugin_set_ptr = std::shared_ptr<const plugin_set>;

/// The TRACER actor interface: one per process while `tracing` is on;
/// batches the spans of finished requests and exports them to the
/// OpenTelemetry collector (actors/tracer.hpp).
using tracer_actor = caf::typed_actor<
  // A finished request's spans (SESSION -> TRACER).
  caf::reacts_to<atom::spans, trace::encoded_spans>,
  // INTERNAL: the flush timer.
  caf::reacts_to<atom::flush>,
  // INTERNAL: an export finished (io thread -> TRACER).
  caf::reacts_to<atom::upstream, uint64_t, upstream_result>>;

/// The SUPERVISOR actor interface: spawns and monitors the MODELs, the
/// ROUTER and the PLUGINs, restarts them when they die, and answers
/// /health.
using supervisor_actor = caf::typed_actor<
  // Returns the current generation: ROUTER and PLUGINs (startup).
  caf::replies_to<atom::get>::with<generation_ptr>,
  // Collects every actor's state: each MODEL's (in config order) and the
  // ROUTER's, asked with a bounded wait; the PLUGINs', its own.
  caf::replies_to<atom::health>::with<health_report>,
  // Serves a new, already validated configuration: MODELs whose upstream
  // settings did not change keep running (and their breaker state), a new
  // ROUTER takes over, io threads get the new generation; requests in
  // flight finish on the generation they started with.
  caf::reacts_to<atom::reload, gateway_config_ptr>,
  // INTERNAL: ends actors of a replaced generation once their requests
  // had time to finish.
  caf::reacts_to<atom::retire, std::vector<caf::actor>>,
  // INTERNAL: a PLUGIN's restart backoff is over: generation, stage (0
  // pre, 1 post) and index of its entry.
  caf::reacts_to<atom::restart, uint64_t, uint64_t, uint64_t>>;

/// A batch the LEDGER sends to Redis, and its answer (redis_store.hpp).
struct redis_batch;
using redis_batch_ptr = std::shared_ptr<redis_batch>;

/// The LEDGER actor interface: one per process, across reloads; owns the
/// usage counters of every governed key and team (embedded), or reaches
/// them in Redis.
using ledger_actor = caf::typed_actor<
  // Reserves a request's worst case, or refuses it.
  caf::replies_to<atom::reserve, usage_request>::with<usage_grant>,
  // Replaces a hold by the real usage and ends its request in flight.
  caf::reacts_to<atom::settle, usage_settlement>,
  // Every scope's limits and use (GET /v1/usage, /metrics).
  caf::replies_to<atom::get>::with<usage_report>,
  // The backend and whether it was reachable at the last exchange, without
  // the scopes (GET /health/ready: no Redis round trip).
  caf::replies_to<atom::status>::with<usage_report>,
  // A reloaded configuration: new limits and prices, same counters.
  caf::reacts_to<atom::update, gateway_config_ptr>,
  // INTERNAL: time to write the journal.
  caf::reacts_to<atom::flush>,
  // INTERNAL: time to end the holds whose settlement never came.
  caf::reacts_to<atom::expire>,
  // INTERNAL: Redis answered a batch (sent from the link's io thread).
  caf::reacts_to<atom::exchanged, redis_batch_ptr>>;

/// The SESSION actor interface: one per chat request. It is spawned by an io
/// thread and drives pre stage -> resolve -> upstream call -> outcome ->
/// post stage -> reply.
/// The request's total deadline is kept by the io thread (the bridge), which
/// sends `cancel` when it passes; a SESSION arms a timer only to back off
/// before a retry, so it never waits longer than its request.
using session_actor = caf::typed_actor<
  // An upstream exchange finished; the SESSION decides what the client gets
  // (sent from the io thread).
  caf::reacts_to<atom::upstream, upstream_result>,
  // The io thread already answered the client with a successful response
  // (no post stage had to see it); record this outcome, and what the
  // answer used, and end.
  caf::reacts_to<atom::outcome, call_outcome, token_usage>,
  // INTERNAL: the backoff before retrying the same model is over.
  caf::reacts_to<atom::retry>,
  // The io thread stopped waiting: it answered 504 at the request's
  // deadline, or the client left (the io thread also cut the upstream
  // exchange in flight, whose result the SESSION then awaits). Give back
  // the admission, let the post stage record the end, and quit.
  caf::reacts_to<atom::cancel, cancel_reason>>;

} // namespace pw::actors

// These carry shared immutable config or io-thread results; they are only
// ever exchanged inside one process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::admission)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::route_plan)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::rate_windows)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::usage_grant)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::usage_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::redis_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::upstream_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::gateway_config_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::generation_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::plugin_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::plugin_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::actors::plugin_verdict)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pw::trace::encoded_spans)
