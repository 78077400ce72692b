#include "core/observe/metrics.hpp"

#include "core/json/reader.hpp"
#include "core/observe/build_info.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>

namespace pw {

namespace {

constexpr std::array<double, 14> duration_bounds{
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

constexpr std::array<double, 12> overhead_bounds{
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
  0.005,   0.01,   0.025,   0.05,   0.1,   0.25};

double seconds_of(std::chrono::microseconds x) {
  return static_cast<double>(x.count()) / 1e6;
}

/// A label value with `\`, `"` and newlines escaped (exposition format).
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

/// A number as the exposition format writes it: integers without a
/// fraction, others with enough digits to round-trip.
std::string number(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (std::abs(v) < 1e15 && v == std::trunc(v))
    return std::to_string(static_cast<int64_t>(v));
  // The shortest form that reads back as the same double (0.005, not
  // 0.0050000000000000001).
  std::array<char, 32> buf;
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buf.data(), buf.size(), "%.*g", digits, v);
    if (std::strtod(buf.data(), nullptr) == v)
      break;
  }
  return buf.data();
}

using labels = std::vector<std::pair<std::string_view, std::string_view>>;

class exposition {
public:
  void family(std::string_view name, std::string_view type,
              std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, const labels& ls, double value) {
    out_ += name;
    if (!ls.empty()) {
      out_ += '{';
      for (size_t i = 0; i < ls.size(); ++i) {
        if (i > 0)
          out_ += ',';
        out_ += ls[i].first;
        out_ += "=\"";
        append_label_value(out_, ls[i].second);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }

  /// The `_bucket`, `_sum` and `_count` samples of one histogram.
  void histogram_samples(std::string_view name, labels ls, const histogram& h) {
    auto bucket = std::string{name} + "_bucket";
    uint64_t cumulative = 0;
    ls.emplace_back("le", "");
    for (size_t i = 0; i <= h.bounds().size(); ++i) {
      cumulative += h.counts()[i];
      auto le = i < h.bounds().size() ? number(h.bounds()[i]) : "+Inf";
      ls.back().second = le;
      sample(bucket, ls, static_cast<double>(cumulative));
    }
    ls.pop_back();
    sample(std::string{name} + "_sum", ls, h.sum());
    sample(std::string{name} + "_count", ls, static_cast<double>(h.count()));
  }

  std::string take() { return std::move(out_); }

private:
  std::string out_;
};

bool visible(const metrics_scope& scope, std::string_view client) {
  return scope.all || client == scope.client;
}

} // namespace

// -- histogram ----------------------------------------------------------------

histogram::histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(bounds.size() + 1, 0) {
  // nop
}

void histogram::observe(double seconds) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);
  ++counts_[static_cast<size_t>(it - bounds_.begin())];
  ++count_;
  sum_ += seconds;
}

void histogram::merge(const histogram& other) {
  for (size_t i = 0; i < counts_.size() && i < other.counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
}

std::span<const double> duration_buckets() {
  return duration_bounds;
}

std::span<const double> overhead_buckets() {
  return overhead_bounds;
}

// -- shard --------------------------------------------------------------------

void usage_counts::merge(const usage_counts& other) {
  requests += other.requests;
  errors += other.errors;
  prompt_tokens += other.prompt_tokens;
  completion_tokens += other.completion_tokens;
  latency_us += other.latency_us;
}

std::chrono::microseconds overhead_of(const http_reply& reply,
                                      std::chrono::microseconds total) {
  return std::max(std::chrono::microseconds{0}, total - reply.upstream_total);
}

void metrics_shard::record(std::string_view client, const http_reply& reply,
                           std::chrono::microseconds total,
                           std::chrono::microseconds gateway,
                           api_endpoint endpoint) {
  auto status = reply.status;
  ++requests[{endpoint, reply.model, std::string{client}, status}];
  auto& u = usage[{std::string{client}, reply.model}];
  ++u.requests;
  u.errors += status >= 400 ? 1 : 0;
  u.prompt_tokens += reply.prompt_tokens;
  u.completion_tokens += reply.completion_tokens;
  u.latency_us += static_cast<uint64_t>(std::max<int64_t>(0, total.count()));
  auto [it, added] = duration.try_emplace(reply.model, duration_buckets());
  it->second.observe(seconds_of(total));
  if (!reply.facts_unknown)
    overhead.observe(seconds_of(gateway));
  for (size_t i = 0; i < reply.attempts.size(); ++i) {
    const auto& a = reply.attempts[i];
    ++attempts[{a.model, std::string{a.outcome}}];
    if (i > 0 && reply.attempts[i - 1].model != a.model)
      ++fallbacks[{reply.attempts[i - 1].model, a.model}];
  }
  if (!reply.blocked_by.empty())
    ++plugin_blocks[reply.blocked_by];
}

void metrics_shard::merge(const metrics_shard& other) {
  for (const auto& [k, v] : other.requests)
    requests[k] += v;
  for (const auto& [k, v] : other.usage)
    usage[k].merge(v);
  for (const auto& [k, v] : other.duration)
    duration.try_emplace(k, duration_buckets()).first->second.merge(v);
  overhead.merge(other.overhead);
  for (const auto& [k, v] : other.attempts)
    attempts[k] += v;
  for (const auto& [k, v] : other.fallbacks)
    fallbacks[k] += v;
  for (const auto& [k, v] : other.plugin_blocks)
    plugin_blocks[k] += v;
}

int circuit_gauge(std::string_view circuit) {
  if (circuit == "open")
    return 2;
  if (circuit == "half_open")
    return 1;
  return 0;
}

// -- process ------------------------------------------------------------------

process_stats read_process_stats() {
  process_stats out;
  auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (std::ifstream statm{"/proc/self/statm"}) {
    double size = 0;
    double resident = 0;
    if (statm >> size >> resident)
      out.resident_bytes = resident * page;
  }
  if (std::ifstream stat{"/proc/self/stat"}) {
    std::string text{std::istreambuf_iterator<char>{stat}, {}};
    // Fields after the command name, which may contain spaces: field 3
    // (state) is the first after the last ')'.
    auto close = text.rfind(')');
    if (close != std::string::npos && ticks > 0) {
      std::istringstream rest{text.substr(close + 2)};
      std::vector<std::string> fields{std::istream_iterator<std::string>{rest},
                                      {}};
      // utime, stime and starttime are fields 14, 15 and 22 (1-based).
      if (fields.size() > 19) {
        out.cpu_seconds
          = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
        double since_boot = std::stod(fields[19]) / ticks;
        if (std::ifstream boot{"/proc/stat"}) {
          std::string key;
          double btime = 0;
          while (boot >> key) {
            if (key == "btime" && boot >> btime) {
              out.start_time_seconds = btime + since_boot;
              break;
            }
          }
        }
      }
    }
  }
  std::error_code ec;
  double fds = 0;
  for (std::filesystem::directory_iterator it{"/proc/self/fd", ec}, end;
       !ec && it != end; it.increment(ec))
    ++fds;
  // The directory's own descriptor is counted too: it is open while read.
  out.open_fds = fds > 0 ? fds - 1 : 0;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0)
    out.max_fds = static_cast<double>(limit.rlim_cur);
  return out;
}

// -- rendering ----------------------------------------------------------------

namespace {

/// Requests and tokens, by client: the families a tenant may see.
void render_client_families(exposition& out, const metrics_shard& m,
                            const metrics_scope& scope) {
  out.family("pw_router_requests_total", "counter",
             "Requests to models answered, by endpoint, model, client and "
             "status.");
  for (const auto& [k, v] : m.requests) {
    const auto& [endpoint, model, client, status] = k;
    if (!visible(scope, client))
      continue;
    auto code = std::to_string(status);
    out.sample("pw_router_requests_total",
               {{"endpoint", to_string(endpoint)},
                {"model", model},
                {"client", client},
                {"status", code}},
               static_cast<double>(v));
  }
  out.family("pw_router_tokens_total", "counter",
             "Tokens the providers reported, by model, client and kind.");
  for (const auto& [k, u] : m.usage) {
    const auto& [client, model] = k;
    if (!visible(scope, client))
      continue;
    out.sample("pw_router_tokens_total",
               {{"model", model}, {"client", client}, {"kind", "prompt"}},
               static_cast<double>(u.prompt_tokens));
    out.sample("pw_router_tokens_total",
               {{"model", model}, {"client", client}, {"kind", "completion"}},
               static_cast<double>(u.completion_tokens));
  }
}

/// Durations, overhead, attempts, fallbacks and plugin blocks.
void render_traffic_families(exposition& out, const metrics_shard& m) {
  out.family("pw_router_request_duration_seconds", "histogram",
             "Time from a request's first byte to its answer (streams: to "
             "their end), by model.");
  for (const auto& [model, h] : m.duration)
    out.histogram_samples("pw_router_request_duration_seconds",
                          {{"model", model}}, h);
  out.family("pw_router_gateway_overhead_seconds", "histogram",
             "Time a request spent in the gateway, every upstream attempt "
             "excluded.");
  out.histogram_samples("pw_router_gateway_overhead_seconds", {}, m.overhead);
  out.family("pw_router_upstream_attempts_total", "counter",
             "Attempts per model: success, failure, rejected, cancelled or "
             "skipped (circuit open, at its limit).");
  for (const auto& [k, v] : m.attempts)
    out.sample("pw_router_upstream_attempts_total",
               {{"model", k.first}, {"outcome", k.second}},
               static_cast<double>(v));
  out.family("pw_router_fallbacks_total", "counter",
             "Requests that moved from one model of their route to the "
             "next.");
  for (const auto& [k, v] : m.fallbacks)
    out.sample("pw_router_fallbacks_total",
               {{"from", k.first}, {"to", k.second}}, static_cast<double>(v));
  out.family("pw_router_plugin_blocks_total", "counter",
             "Requests a plugin blocked, by plugin.");
  for (const auto& [plugin, v] : m.plugin_blocks)
    out.sample("pw_router_plugin_blocks_total", {{"plugin", plugin}},
               static_cast<double>(v));
}

/// Each model's circuit and in-flight requests, then the gateway's own
/// errors, dropped log lines, configuration and uptime.
void render_gateway_families(exposition& out, const metrics_snapshot& snap) {
  out.family("pw_router_circuit_state", "gauge",
             "Each model's circuit: 0 closed, 1 half-open, 2 open.");
  for (const auto& g : snap.models)
    out.sample("pw_router_circuit_state", {{"model", g.alias}}, g.circuit);
  out.family("pw_router_in_flight", "gauge",
             "Requests each model is serving now.");
  for (const auto& g : snap.models)
    out.sample("pw_router_in_flight", {{"model", g.alias}},
               static_cast<double>(g.in_flight));
  out.family("pw_router_internal_errors_total", "counter",
             "Failures inside the gateway caught at a boundary; each ended "
             "one request with a 500 or 502 (and an internal_error log "
             "line).");
  for (size_t i = 0; i < boundary_count; ++i)
    out.sample("pw_router_internal_errors_total",
               {{"boundary", std::string{to_string(static_cast<boundary>(i))}}},
               static_cast<double>(snap.internal_errors[i]));
  out.family("pw_router_log_lines_dropped_total", "counter",
             "Log lines dropped because stdout could not keep up (a "
             "thread's queue was full); no thread ever waits for stdout.");
  out.sample("pw_router_log_lines_dropped_total", {},
             static_cast<double>(snap.log_lines_dropped));
  const auto& audit = snap.audit;
  out.family("pw_router_audit_checkpoints_total", "counter",
             "Signed checkpoints written to the audit log.");
  out.sample("pw_router_audit_checkpoints_total", {},
             static_cast<double>(audit.checkpoints));
  out.family("pw_router_audit_witness_sent_total", "counter",
             "Audit checkpoints the witness accepted.");
  out.sample("pw_router_audit_witness_sent_total", {},
             static_cast<double>(audit.witness_sent));
  out.family("pw_router_audit_witness_failures_total", "counter",
             "Failed attempts to send a checkpoint to the witness (each "
             "retry counts).");
  out.sample("pw_router_audit_witness_failures_total", {},
             static_cast<double>(audit.witness_failures));
  out.family("pw_router_audit_witness_dropped_total", "counter",
             "Checkpoints the witness will never get: its queue was full, or "
             "it refused them (an answer other than 2xx, 408, 429 or 5xx).");
  out.sample("pw_router_audit_witness_dropped_total", {},
             static_cast<double>(audit.witness_dropped));
  out.family("pw_router_audit_witness_queued", "gauge",
             "Checkpoints waiting to be sent to the witness.");
  out.sample("pw_router_audit_witness_queued", {},
             static_cast<double>(audit.witness_queued));
  out.family("pw_router_trace_spans_exported_total", "counter",
             "Spans the OpenTelemetry collector accepted.");
  out.sample("pw_router_trace_spans_exported_total", {},
             static_cast<double>(snap.traces.exported));
  out.family("pw_router_trace_spans_dropped_total", "counter",
             "Spans never exported: the queue was full, or their export "
             "failed.");
  out.sample("pw_router_trace_spans_dropped_total", {},
             static_cast<double>(snap.traces.dropped));
  out.family("pw_router_trace_export_failures_total", "counter",
             "Exports the collector did not accept (each is logged).");
  out.sample("pw_router_trace_export_failures_total", {},
             static_cast<double>(snap.traces.failures));
  out.family("pw_router_config_info", "gauge",
             "The configuration being served, by the SHA-256 of its file.");
  out.sample("pw_router_config_info", {{"sha256", snap.config_sha256}}, 1);
  out.family("pw_router_uptime_seconds", "gauge",
             "Seconds since the gateway started.");
  out.sample("pw_router_uptime_seconds", {}, snap.uptime_seconds);
}

/// The standard `process_*` families.
void render_process_families(exposition& out, const process_stats& p) {
  out.family("process_resident_memory_bytes", "gauge",
             "Resident memory size in bytes.");
  out.sample("process_resident_memory_bytes", {}, p.resident_bytes);
  out.family("process_cpu_seconds_total", "counter",
             "User and system CPU time spent in seconds.");
  out.sample("process_cpu_seconds_total", {}, p.cpu_seconds);
  out.family("process_open_fds", "gauge", "Open file descriptors.");
  out.sample("process_open_fds", {}, p.open_fds);
  out.family("process_max_fds", "gauge", "The limit of open file descriptors.");
  out.sample("process_max_fds", {}, p.max_fds);
  out.family("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.");
  out.sample("process_start_time_seconds", {}, p.start_time_seconds);
}

/// The usage LEDGER: reservations by outcome, settlements, the state's
/// reachability, and each governed scope's use and budget left.
void render_usage_families(exposition& out, const usage_gauges& u) {
  out.family("pw_router_usage_reservations_total", "counter",
             "Governed requests at the usage ledger, by outcome: reserved, "
             "refused (a limit), unavailable (the usage state could not be "
             "reached).");
  out.sample("pw_router_usage_reservations_total", {{"outcome", "reserved"}},
             static_cast<double>(u.reserved));
  out.sample("pw_router_usage_reservations_total", {{"outcome", "refused"}},
             static_cast<double>(u.refused));
  out.sample("pw_router_usage_reservations_total", {{"outcome", "unavailable"}},
             static_cast<double>(u.unavailable));
  out.family("pw_router_usage_settled_total", "counter",
             "Reservations replaced by the real usage.");
  out.sample("pw_router_usage_settled_total", {},
             static_cast<double>(u.settled));
  out.family("pw_router_usage_settled_tokens_total", "counter",
             "Tokens charged at settlement (the provider's usage).");
  out.sample("pw_router_usage_settled_tokens_total", {},
             static_cast<double>(u.settled_tokens));
  out.family("pw_router_usage_settled_cost_usd_total", "counter",
             "USD charged at settlement, at the models' prices.");
  out.sample("pw_router_usage_settled_cost_usd_total", {}, u.settled_cost_usd);
  out.family("pw_router_usage_state_available", "gauge",
             "1 while the usage state (embedded, or Redis) can be reached.");
  out.sample("pw_router_usage_state_available", {{"backend", u.backend}},
             u.available ? 1 : 0);
  out.family("pw_router_usage_in_flight", "gauge",
             "Requests each governed key or team has in flight.");
  for (const auto& s : u.scopes)
    out.sample("pw_router_usage_in_flight",
               {{"scope", s.kind}, {"name", s.name}},
               static_cast<double>(s.in_flight));
  out.family("pw_router_usage_tokens_today", "gauge",
             "Tokens each governed key or team used this UTC day.");
  for (const auto& s : u.scopes)
    out.sample("pw_router_usage_tokens_today",
               {{"scope", s.kind}, {"name", s.name}},
               static_cast<double>(s.tokens_today));
  out.family("pw_router_usage_tokens_this_month", "gauge",
             "Tokens each governed key or team used this UTC month.");
  for (const auto& s : u.scopes)
    out.sample("pw_router_usage_tokens_this_month",
               {{"scope", s.kind}, {"name", s.name}},
               static_cast<double>(s.tokens_this_month));
  out.family("pw_router_usage_budget_remaining_usd", "gauge",
             "What is left of each monthly budget this UTC month.");
  for (const auto& s : u.scopes)
    if (s.budget_remaining_usd)
      out.sample("pw_router_usage_budget_remaining_usd",
                 {{"scope", s.kind}, {"name", s.name}},
                 *s.budget_remaining_usd);
}

} // namespace

std::string render_prometheus(const metrics_snapshot& snap,
                              const metrics_scope& scope) {
  exposition out;
  render_client_families(out, snap.merged, scope);
  out.family("pw_router_build_info", "gauge",
             "The running build: version and git revision.");
  out.sample("pw_router_build_info",
             {{"version", PW_VERSION}, {"revision", git_revision()}}, 1);
  if (!scope.all)
    // Everything below is about every tenant at once.
    return out.take();
  render_traffic_families(out, snap.merged);
  render_gateway_families(out, snap);
  if (snap.usage)
    render_usage_families(out, *snap.usage);
  render_process_families(out, snap.process);
  return out.take();
}

std::string render_usage_json(const metrics_snapshot& snap,
                              const metrics_scope& scope) {
  usage_counts totals;
  auto by_client = nlohmann::ordered_json::object();
  for (const auto& [k, u] : snap.merged.usage) {
    const auto& [client, model] = k;
    // Usage belongs to clients: requests refused before a key was known
    // are only in the Prometheus text (client="").
    if (client.empty() || !visible(scope, client))
      continue;
    totals.merge(u);
    auto avg = u.requests == 0 ? 0.0
                               : static_cast<double>(u.latency_us)
                                   / static_cast<double>(u.requests) / 1000.0;
    by_client[client][model] = {
      {"requests", u.requests},
      {"prompt_tokens", u.prompt_tokens},
      {"completion_tokens", u.completion_tokens},
      {"total_tokens", u.prompt_tokens + u.completion_tokens},
      {"errors", u.errors},
      {"avg_latency_ms", std::round(avg * 1000.0) / 1000.0},
    };
  }
  nlohmann::ordered_json body = {
    {"uptime_seconds", static_cast<int64_t>(snap.uptime_seconds)},
    {"totals",
     {{"requests", totals.requests},
      {"prompt_tokens", totals.prompt_tokens},
      {"completion_tokens", totals.completion_tokens},
      {"total_tokens", totals.prompt_tokens + totals.completion_tokens},
      {"errors", totals.errors}}},
    {"by_client", std::move(by_client)},
  };
  return json::dump(body);
}

} // namespace pw
