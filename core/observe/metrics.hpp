#pragma once

// The gateway's metrics as pure code: the counters one io thread keeps for
// the requests it served, how two of them merge, and the two renderings of
// a scrape (Prometheus text exposition format 0.0.4, and pw-router's JSON
// usage shape). Nothing here is shared between threads: each io thread owns
// one shard, and a scrape merges copies of them on the scraping thread.

#include "core/boundary.hpp"
#include "core/config/config.hpp"
#include "core/observe/audit_stats.hpp"
#include "core/observe/trace.hpp"
#include "core/request/exchange.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace pw {

/// Counts of observations over fixed upper bounds (seconds).
class histogram {
public:
  /// `bounds` must be sorted and outlive the histogram (static tables).
  explicit histogram(std::span<const double> bounds);

  void observe(double seconds);

  /// Adds `other`, which has the same bounds.
  void merge(const histogram& other);

  [[nodiscard]] std::span<const double> bounds() const { return bounds_; }

  /// One count per bound plus the last for +Inf; not cumulative.
  [[nodiscard]] const std::vector<uint64_t>& counts() const { return counts_; }

  [[nodiscard]] uint64_t count() const { return count_; }

  [[nodiscard]] double sum() const { return sum_; }

private:
  std::span<const double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

/// Bucket bounds of request durations (upstream included), in seconds.
std::span<const double> duration_buckets();

/// Bucket bounds of the gateway's own time per request, in seconds.
std::span<const double> overhead_buckets();

/// What one client spent on one model, for the JSON usage shape.
struct usage_counts {
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t latency_us = 0;

  void merge(const usage_counts& other);
};

/// The counters of the chat requests one io thread answered. Labels come
/// from the configuration (model aliases, client names, plugin names) and
/// from status codes, never from what a client sent, so the number of
/// series is bounded by the config.
struct metrics_shard {
  /// (endpoint, model, client, status) -> requests.
  std::map<std::tuple<api_endpoint, std::string, std::string, unsigned>,
           uint64_t>
    requests;
  /// (client, model) -> usage.
  std::map<std::pair<std::string, std::string>, usage_counts> usage;
  /// model -> request durations.
  std::map<std::string, histogram> duration;
  histogram overhead{overhead_buckets()};
  /// (model, outcome) -> attempts.
  std::map<std::pair<std::string, std::string>, uint64_t> attempts;
  /// (from, to) -> fallbacks.
  std::map<std::pair<std::string, std::string>, uint64_t> fallbacks;
  /// plugin -> blocked requests.
  std::map<std::string, uint64_t> plugin_blocks;

  /// Counts one answered request of `client` ("" before authentication)
  /// to `endpoint`: `total` from its first byte to its answer, `overhead`
  /// the part of it spent in the gateway.
  void record(std::string_view client, const http_reply& reply,
              std::chrono::microseconds total,
              std::chrono::microseconds overhead,
              api_endpoint endpoint = api_endpoint::chat);

  void merge(const metrics_shard& other);
};

/// The gateway's time for a request that took `total`, of which `reply`
/// says how much was spent upstream; never negative.
std::chrono::microseconds overhead_of(const http_reply& reply,
                                      std::chrono::microseconds total);

/// One MODEL's state at scrape time.
struct model_gauge {
  std::string alias;
  /// 0 closed, 1 half-open, 2 open.
  int circuit = 0;
  uint64_t in_flight = 0;
};

/// One governed key or team at scrape time (the LEDGER's view).
struct usage_scope_gauge {
  /// "key" or "team", and its name.
  std::string kind;
  std::string name;
  uint64_t in_flight = 0;
  uint64_t tokens_today = 0;
  uint64_t tokens_this_month = 0;
  double cost_usd_this_month = 0;
  /// Set when the scope has a monthly budget.
  std::optional<double> budget_remaining_usd;
};

/// The LEDGER's counters at scrape time (docs/governance.md).
struct usage_gauges {
  std::string backend;
  bool available = true;
  uint64_t reserved = 0;
  uint64_t refused = 0;
  uint64_t unavailable = 0;
  uint64_t settled = 0;
  uint64_t settled_tokens = 0;
  double settled_cost_usd = 0;
  std::vector<usage_scope_gauge> scopes;
};

/// The circuit state as the gauge's number ("closed" -> 0, ...).
int circuit_gauge(std::string_view circuit);

/// The process, read from /proc at scrape time.
struct process_stats {
  double resident_bytes = 0;
  double cpu_seconds = 0;
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;
};

/// Reads this process's figures; fields it cannot read stay 0.
process_stats read_process_stats();

/// Everything one scrape shows.
struct metrics_snapshot {
  metrics_shard merged;
  std::vector<model_gauge> models;
  std::string config_sha256;
  double uptime_seconds = 0;
  process_stats process;
  /// Failures caught at each boundary (core/boundary.hpp), by boundary.
  std::array<uint64_t, boundary_count> internal_errors{};
  /// Log lines dropped because stdout could not keep up (core/observe/log.hpp).
  uint64_t log_lines_dropped = 0;
  /// The usage LEDGER's counters (absent when it did not answer).
  std::optional<usage_gauges> usage;
  /// Signed audit checkpoints and their witness.
  audit_stats::counters audit;
  /// The span exporter (`tracing`).
  trace::export_counters traces;
};

/// Who scrapes: `all` (an admin key, or `server.metrics_public`), or one
/// client, which sees only its own series.
struct metrics_scope {
  bool all = false;
  std::string client;
};

/// Prometheus text exposition format 0.0.4.
std::string render_prometheus(const metrics_snapshot& snap,
                              const metrics_scope& scope);

/// pw-router's `GET /metrics` JSON: `uptime_seconds`, `totals`,
/// `by_client.<client>.<model>`; totals cover what the scope may see, and
/// only authenticated requests.
std::string render_usage_json(const metrics_snapshot& snap,
                              const metrics_scope& scope);

/// The media type of render_prometheus()'s output.
inline constexpr std::string_view prometheus_content_type
  = "text/plain; version=0.0.4; charset=utf-8";

} // namespace pw
