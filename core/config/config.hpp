#pragma once

// The validated configuration: plain structs that every other part of the
// gateway reads. load_config() in config_loader.cpp is the only producer.

#include "core/config/redacted_string.hpp"

#include <caf/expected.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Node;
} // namespace YAML

namespace pw {

class stream_rule;       // core/request/stream_guard.hpp
struct provider_options; // core/config/provider_spec.hpp
struct provider_spec;    // core/config/provider_spec.hpp

using seconds_d = std::chrono::duration<double>;

/// Converts fractional seconds from the config into a clock duration.
inline std::chrono::milliseconds to_ms(seconds_d x) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(x);
}

/// Usage limits of a client (`server.api_keys[].limits`) or a team
/// (`teams.<name>.limits`); each unset one does not apply. Minutes, days
/// and months are UTC calendar periods (core/policy/usage_ledger.hpp).
struct usage_limits {
  std::optional<uint64_t> requests_per_minute;
  std::optional<uint64_t> tokens_per_minute;
  /// Requests in flight at once.
  std::optional<uint64_t> max_concurrent;
  std::optional<uint64_t> tokens_per_day;
  std::optional<uint64_t> tokens_per_month;
  /// `budget_usd_per_month`, in pico-USD (10^-12 USD): costs add up in
  /// integers, exactly.
  std::optional<uint64_t> budget_per_month;

  /// Whether any limit is set.
  [[nodiscard]] bool any() const {
    return requests_per_minute || tokens_per_minute || max_concurrent
           || tokens_per_day || tokens_per_month || budget_per_month;
  }

  friend bool operator==(const usage_limits&, const usage_limits&) = default;
};

/// A model's prices (`models.<alias>.pricing`, USD per million tokens),
/// held in pico-USD per token.
struct model_pricing {
  uint64_t input = 0;
  uint64_t output = 0;
  /// Prompt tokens the provider served from its cache (default: `input`).
  uint64_t cached_input = 0;
};

/// One client key: the identity a request runs under.
struct api_key_config {
  /// The bearer token itself (empty when the config gives `key_sha256`).
  redacted_string key;
  /// SHA-256 of the key, compared in constant time by authenticate().
  std::array<unsigned char, 32> key_digest{};
  /// Client identity for logs and rate limiting (keys may share a name).
  std::string name;
  /// Globs over model aliases (`*`, `gpt-*`, `local-?`).
  std::vector<std::string> allowed_models;
  /// Sees every tenant's series on GET /metrics (others see only their own).
  bool admin = false;
  /// The team whose limits also apply ("" = none).
  std::string team;
  /// This client's own limits (keys sharing a name share them).
  usage_limits limits;
};

/// Inbound TLS (`server.tls`); off when `cert_file` is empty.
struct tls_config {
  /// PEM certificate chain and private key, re-read on SIGHUP.
  std::string cert_file;
  std::string key_file;
  /// Lowest protocol version accepted: 12 (TLS 1.2) or 13 (TLS 1.3).
  int min_version = 12;

  [[nodiscard]] bool enabled() const { return !cert_file.empty(); }
};

/// The listener, its limits and the thread counts.
struct server_config {
  std::string host = "0.0.0.0";
  uint16_t port = 8100;
  std::vector<api_key_config> api_keys;
  /// Number of io threads, each with its own io_context (default: the
  /// CPUs the process may run on).
  unsigned io_threads = 1;
  /// 0 (the default): the actors run on the io threads
  /// (http/io_scheduler.hpp). Otherwise the number of threads of CAF's
  /// `sharing` scheduler, which run the actors instead.
  unsigned actor_threads = 0;
  uint64_t max_body_bytes = 10 * 1024 * 1024;
  uint32_t max_header_bytes = 16 * 1024;
  /// Total time a client may take to send the request line and headers.
  seconds_d header_timeout{10};
  /// Total time a client may take to send the body.
  seconds_d body_timeout{30};
  /// How long an idle keep-alive connection stays open.
  seconds_d keepalive_timeout{60};
  /// Total time for writing one response.
  seconds_d write_timeout{30};
  /// Open client connections the process accepts (split across io threads).
  uint32_t max_connections = 4096;
  /// On SIGTERM/SIGINT: how long in-flight requests may finish before the
  /// remaining ones are cut.
  seconds_d drain{30};
  /// Run the io and actor threads under SCHED_BATCH: the kernel then does
  /// not preempt a running thread each time it wakes another, so threads
  /// hand work over in batches (docs/performance.md).
  bool sched_batch = true;
  /// Total time one request may take inside the gateway, all attempts
  /// included; past it the client gets 504. Default: the longest model
  /// `timeout_seconds` plus 10 s.
  seconds_d request_deadline{0};
  /// GET /metrics without a key, every series visible (for a listener only
  /// the scraper can reach).
  bool metrics_public = false;
  /// `health_details: public`: GET /health shows every actor's counters
  /// and errors without a key. Default (`admin`): without an admin key it
  /// shows the status and each model's circuit only.
  bool health_details_public = false;
  tls_config tls;
};

/// The client-facing APIs a model can serve (`models.<alias>.endpoints`).
enum class api_endpoint : uint8_t {
  /// POST /v1/chat/completions
  chat,
  /// POST /v1/completions (legacy text completions)
  completions,
  /// POST /v1/embeddings
  embeddings,
  /// POST /v1/messages (Anthropic's Messages API, inbound)
  messages,
  /// POST /v1/messages/count_tokens: served by every model that serves
  /// `messages` and whose provider counts tokens; not a name in the
  /// config.
  count_tokens,
};

/// Every api_endpoint, in order.
inline constexpr api_endpoint all_endpoints[]
  = {api_endpoint::chat, api_endpoint::completions, api_endpoint::embeddings,
     api_endpoint::messages, api_endpoint::count_tokens};

/// Returns the config spelling of `x`, e.g. "embeddings".
constexpr std::string_view to_string(api_endpoint x) {
  switch (x) {
  case api_endpoint::chat:
    return "chat";
  case api_endpoint::completions:
    return "completions";
  case api_endpoint::embeddings:
    return "embeddings";
  case api_endpoint::messages:
    return "messages";
  case api_endpoint::count_tokens:
    return "count_tokens";
  }
  return "unknown";
}

/// Returns the HTTP path clients call for `x`, e.g. "/v1/embeddings".
constexpr std::string_view path_of(api_endpoint x) {
  switch (x) {
  case api_endpoint::chat:
    return "/v1/chat/completions";
  case api_endpoint::completions:
    return "/v1/completions";
  case api_endpoint::embeddings:
    return "/v1/embeddings";
  case api_endpoint::messages:
    return "/v1/messages";
  case api_endpoint::count_tokens:
    return "/v1/messages/count_tokens";
  }
  return "/";
}

/// A set of api_endpoints.
class endpoint_set {
public:
  constexpr endpoint_set() = default;

  constexpr endpoint_set(std::initializer_list<api_endpoint> xs) {
    for (auto x : xs)
      add(x);
  }

  constexpr void add(api_endpoint x) { bits_ |= bit(x); }

  /// Whether `x` is in the set.
  [[nodiscard]] constexpr bool has(api_endpoint x) const {
    return (bits_ & bit(x)) != 0;
  }

  [[nodiscard]] constexpr bool empty() const { return bits_ == 0; }

  friend constexpr bool operator==(endpoint_set, endpoint_set) = default;

private:
  static constexpr uint8_t bit(api_endpoint x) {
    return static_cast<uint8_t>(1u << static_cast<unsigned>(x));
  }

  uint8_t bits_ = 0;
};

/// Whether `x` is spelled in `endpoints` (count_tokens is not: it goes
/// with messages).
constexpr bool configurable(api_endpoint x) {
  return x != api_endpoint::count_tokens;
}

/// A parsed `base_url`: where a model's requests go.
struct endpoint {
  bool tls = true;
  std::string host;
  uint16_t port = 443;
  /// Path prefix without a trailing slash, e.g. "/v1" or "".
  std::string base_path;

  /// "https://host:port", the key of the connection pool.
  [[nodiscard]] std::string origin() const;
  /// The value of the Host header (port omitted when default).
  [[nodiscard]] std::string host_header() const;
};

/// One entry of `models`.
struct model_config {
  /// The name clients use (`models.<alias>`).
  std::string alias;
  /// The `provider:` name (adapters/registry.cpp lists them).
  std::string provider = "openai";
  /// The provider's own keys, read by its loader (null when it has none).
  std::shared_ptr<const provider_options> options;
  /// Those keys as written, to tell whether a reload changed them.
  std::string options_fingerprint;
  /// The provider answers inside the gateway (echo): no upstream, no price.
  bool local = false;
  /// The provider's model id, sent upstream.
  std::string model;
  /// Empty means: send no credentials.
  redacted_string api_key;
  /// A credential fetched at run time (an OAuth access token): set by the
  /// MODEL actor in the settings it hands out, never by the loader.
  redacted_string access_token;
  std::string base_url;
  endpoint target;
  /// Total time for one upstream attempt.
  seconds_d timeout{120};
  /// Time to connect (TCP and TLS) to the upstream.
  seconds_d connect_timeout{10};
  /// Time until the upstream's response headers (default: timeout_seconds).
  seconds_d first_byte_timeout{0};
  /// Streams: the longest gap between two pieces of the answer (default:
  /// timeout_seconds).
  seconds_d idle_timeout{0};
  /// Calls in flight at most (0 = no limit); over it the model is skipped
  /// like an open one.
  uint32_t max_concurrent = 0;
  /// Retries on the same model (accepted; used by the resilience work).
  uint32_t max_retries = 0;
  std::vector<std::string> tags;
  /// PEM file with the CAs that verify this upstream (default: system store).
  std::string ca_file;
  /// `max_tokens` sent to providers that require one (Anthropic) when the
  /// client gave none.
  uint64_t default_max_tokens = 4096;
  /// What the model serves (`endpoints`, default chat only): routing
  /// never picks it for anything else.
  endpoint_set endpoints{api_endpoint::chat};
  /// Its prices; unset: its tokens cost nothing against a budget.
  std::optional<model_pricing> pricing;
};

using model_config_ptr = std::shared_ptr<const model_config>;

struct chain_config {
  std::string name;
  std::vector<std::string> members;
};

struct rule_config {
  std::string tag;
  std::string chain;
};

/// What a tag rule does to an explicit model outside its chain.
enum class tag_override : uint8_t {
  /// Serve the request with the rule's chain instead.
  reroute,
  /// Refuse it: 403 policy_error.
  reject,
};

struct routing_config {
  std::string default_model;
  /// In config order: "the first chain containing the model" depends on it.
  std::vector<chain_config> fallback_chains;
  std::vector<rule_config> rules;
  tag_override on_tag_conflict = tag_override::reroute;
};

struct health_config {
  seconds_d check_interval{30};
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 1;
  seconds_d check_timeout{5};
  seconds_d cooldown{30};
};

struct rate_limit_config {
  /// Off unless the config has a `rate_limit` section.
  bool enabled = false;
  uint64_t max_requests = 60;
  seconds_d window{60};
};

/// `teams.<name>`: limits several keys share.
struct team_config {
  std::string name;
  usage_limits limits;
};

enum class state_backend : uint8_t { embedded, redis };

/// `state.redis`: where the shared counters live.
struct redis_config {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  redacted_string password;
  /// Prefix of every key the gateway writes.
  std::string key_prefix = "pw-router";
  /// Bound on one round trip (and on connecting).
  std::chrono::milliseconds timeout{250};
};

/// `state`: where usage counters live and what happens without them.
struct state_config {
  state_backend backend = state_backend::embedded;
  /// Embedded: the file the day and month totals are journalled to (""
  /// = memory only).
  std::string path;
  /// Redis unreachable: refuse governed requests (deny, the default) or
  /// serve them uncounted (allow).
  bool allow_when_unavailable = false;
  /// How often the journal is written (embedded).
  seconds_d journal_interval{1};
  redis_config redis;
};

/// One `middleware.pre_request[]` or `post_response[]` entry.
/// How a post plugin treats streamed answers (`stream:` of its entry).
enum class stream_mode : uint8_t {
  /// Hold back a window of the streamed text; send it once the plugin
  /// passed it (core/request/stream_guard.hpp).
  hold,
  /// Answer `"stream": true` with 400.
  refuse,
  /// Record the stream after it was sent; change nothing.
  record,
};

/// Config name: "hold", "refuse", "record".
std::string_view to_string(stream_mode x);

struct plugin_entry {
  std::string plugin;
  /// YAML path of the entry, for error messages.
  std::string path;
  /// The entry's `config` mapping (may be null).
  std::shared_ptr<const YAML::Node> config;
  /// How long the SESSION waits for the plugin (`timeout_ms`).
  std::chrono::milliseconds timeout{1000};
  /// `on_error: continue`: a plugin that fails or does not answer in time
  /// lets the request pass; by default (`block`) it fails closed.
  bool fail_open = false;
  /// The entry as written (plugin, config, timeout, on_error, stream), to
  /// tell whether a reload changed it.
  std::string fingerprint;
  /// `stream` as written (post_response only); unset: the plugin's default.
  std::optional<stream_mode> stream;
  /// `stream_window` as written, in bytes; 0: the plugin's default.
  size_t stream_window = 0;
  /// Settled by plugins::check_middleware: the mode in force and, for
  /// `hold`, the plugin's rule and its window.
  stream_mode stream_in_force = stream_mode::record;
  std::shared_ptr<const pw::stream_rule> rule;
  size_t stream_window_in_force = 0;
};

struct middleware_config {
  std::vector<plugin_entry> pre_request;
  std::vector<plugin_entry> post_response;
};

enum class log_level : uint8_t { debug, info, warning, error };

struct logging_config {
  log_level level = log_level::info;
  /// Accepted for compatibility; bodies are never logged in this version.
  bool log_request_body = false;
  bool log_response_body = false;
};

/// `tracing`: OpenTelemetry spans of every request, exported over
/// OTLP/HTTP with the JSON encoding (docs/operations.md, "Traces"). Off
/// unless `tracing.endpoint` is set.
struct tracing_config {
  /// The collector (`endpoint`: https, or http to a loopback host).
  std::optional<endpoint> collector;
  /// Path of the export POST: the URL's path, or "/v1/traces" without one.
  std::string path;
  /// Sent with every export (e.g. an API key of a hosted collector).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string ca_file;
  /// The resource's `service.name`.
  std::string service_name = "pw-router";
  /// Share of new traces recorded; a client's `traceparent` decides for
  /// its own trace (its sampled flag).
  double sample_ratio = 1.0;
  /// Spans per export, and the most kept waiting (more are dropped and
  /// counted).
  size_t batch_spans = 512;
  size_t queue_spans = 8192;
  /// The longest a span waits for its export, and an export's timeout.
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds timeout{5000};

  [[nodiscard]] bool enabled() const { return collector.has_value(); }
  bool operator==(const tracing_config& other) const;
};

/// The whole validated configuration. Immutable once loaded.
struct gateway_config {
  server_config server;
  /// In config order (`/v1/models` and `/health` list them this way).
  std::vector<model_config_ptr> models;
  routing_config routing;
  health_config health;
  rate_limit_config rate_limit;
  /// `teams`, in config order.
  std::vector<team_config> teams;
  state_config state;
  middleware_config middleware;
  logging_config logging;
  tracing_config tracing;
  /// Hex SHA-256 of the file as read, for startup logs.
  std::string source_sha256;
  /// Values that are valid but extreme (`health.unhealthy_threshold:
  /// 1000000`), each "<YAML path>: <why>": logged as `config_warning` at
  /// start and reload, printed by --check-config. The config loads.
  std::vector<std::string> warnings;

  /// Returns the model with this alias, or nullptr.
  [[nodiscard]] const model_config_ptr*
  find_model(std::string_view alias) const;

  /// Returns the chain with this name, or nullptr.
  [[nodiscard]] const chain_config* find_chain(std::string_view name) const;

  /// Returns the team with this name, or nullptr.
  [[nodiscard]] const team_config* find_team(std::string_view name) const;

  /// Whether any key or team has a usage limit (a LEDGER runs).
  [[nodiscard]] bool governed() const;
};

using gateway_config_ptr = std::shared_ptr<const gateway_config>;

/// The providers the loader accepts (adapters::catalog() gives them all).
using provider_catalog = std::span<const provider_spec* const>;

/// Reads, expands `${VAR}` / `${VAR:-default}`, converts and validates;
/// each model's provider is looked up in `providers`, which reads the
/// provider's own keys. On failure the error's message lists every
/// problem, one per line, each starting with its YAML path.
caf::expected<gateway_config> load_config(const std::string& path,
                                          provider_catalog providers);

/// Same as load_config, from YAML text (tests, fuzzing).
caf::expected<gateway_config> load_config_text(std::string_view yaml,
                                               provider_catalog providers);

/// True if two models call their upstream the same way (provider, model,
/// key, URL, CA, timeouts, retries, limits): a reload keeps such a MODEL
/// running, breaker state included.
bool same_upstream(const model_config& x, const model_config& y);

/// True if two health sections are equal.
bool same_health(const health_config& x, const health_config& y);

/// CPUs this process may run on (its affinity mask): the default for
/// `server.io_threads`.
unsigned available_cores();

/// Parses an http(s) URL into an endpoint; nullopt with `why` on failure.
std::optional<endpoint> parse_base_url(std::string_view url, std::string& why);

/// Whether `host` (as parse_base_url leaves it) names this machine's
/// loopback interface: where plain http may carry a secret (a test's fake).
bool is_loopback_host(std::string_view host);

} // namespace pw
