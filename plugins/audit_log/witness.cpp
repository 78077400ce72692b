#include "plugins/audit_log/witness.hpp"

#include "actors/upstream_reply.hpp"
#include "core/observe/audit_stats.hpp"
#include "core/observe/log.hpp"
#include "plugins/http/http_plugin.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <deque>

namespace pw::plugins::audit {

namespace {

constexpr std::chrono::milliseconds first_backoff{500};

struct witness_state {
  static inline const char* name = "audit_witness";
  witness_settings settings;
  upstream_fn call;
  /// Checkpoints not yet delivered, oldest first; the front one is the one
  /// being sent (or waiting for its retry).
  std::deque<std::string> queue;
  /// The front is on its way; its call's id (a dropped front's answer is
  /// ignored by id).
  bool in_flight = false;
  uint64_t call_id = 0;
  /// A retry of the front is scheduled.
  bool retry_armed = false;
  std::chrono::milliseconds backoff = first_backoff;
  /// Failed attempts of the front.
  uint64_t attempts = 0;

  witness_state() = default;
  witness_state(const witness_state&) = delete;
  witness_state& operator=(const witness_state&) = delete;

  /// Checkpoints still queued when it stops are not sent: the writer offers
  /// the log's last checkpoint again when it next opens the log.
  ~witness_state() {
    audit_stats::witness_queue(-static_cast<int64_t>(queue.size()));
  }
};

using witness_ptr = witness_actor::stateful_pointer<witness_state>;

void send_front(witness_ptr self) {
  auto& st = self->state;
  if (st.queue.empty() || st.in_flight || st.retry_armed)
    return;
  auto req = service_post(st.settings.to, st.queue.front());
  st.in_flight = true;
  auto id = ++st.call_id;
  actors::call_and_reply(st.call, std::move(req),
                         caf::actor_cast<witness_actor>(self), id);
}

void pop_front(witness_ptr self) {
  auto& st = self->state;
  st.queue.pop_front();
  audit_stats::witness_queue(-1);
  st.in_flight = false;
  st.attempts = 0;
  st.backoff = first_backoff;
}

/// Whether an answer is worth trying again: the witness or the way to it
/// may recover; anything else would be refused again.
bool retryable(const upstream_result& r) {
  return r.failure != upstream_failure::none || r.status == 408
         || r.status == 429 || r.status >= 500;
}

void answered(witness_ptr self, uint64_t id, const upstream_result& r) {
  auto& st = self->state;
  if (!st.in_flight || id != st.call_id)
    return; // the answer for a checkpoint dropped meanwhile
  st.in_flight = false;
  auto origin = st.settings.to.target.origin();
  if (r.failure == upstream_failure::none && r.status >= 200
      && r.status < 300) {
    audit_stats::witness_sent();
    if (st.attempts > 0)
      log::write(log_level::info, "audit_witness_recovered",
                 {{"witness", origin}, {"failed_attempts", st.attempts}});
    pop_front(self);
    send_front(self);
    return;
  }
  audit_stats::witness_failed();
  ++st.attempts;
  auto why = r.failure != upstream_failure::none
               ? std::string{to_string(r.failure)}
                   + (r.detail.empty() ? "" : ": " + r.detail)
               : "HTTP " + std::to_string(r.status);
  if (!retryable(r)) {
    log::write(
      log_level::error, "audit_witness_refused",
      {{"witness", origin}, {"error", why}, {"queued", st.queue.size() - 1}});
    audit_stats::witness_dropped();
    pop_front(self);
    send_front(self);
    return;
  }
  log::write(log_level::warning, "audit_witness_failed",
             {{"witness", origin},
              {"error", why},
              {"attempt", st.attempts},
              {"retry_in_ms", st.backoff.count()},
              {"queued", st.queue.size()}});
  st.retry_armed = true;
  self->delayed_send(self, st.backoff, atom::retry_v);
  st.backoff = std::min(st.backoff * 2, st.settings.max_backoff);
}

void enqueue(witness_ptr self, std::string line) {
  auto& st = self->state;
  if (st.queue.size() >= st.settings.queue) {
    // Bounded through any outage: the oldest goes, counted and logged. A
    // call in flight for it is forgotten (its answer ignored by id).
    log::write(log_level::error, "audit_witness_dropped",
               {{"witness", st.settings.to.target.origin()},
                {"queue", st.settings.queue}});
    audit_stats::witness_dropped();
    bool was_in_flight = st.in_flight;
    pop_front(self);
    if (was_in_flight)
      ++st.call_id;
  }
  st.queue.push_back(std::move(line));
  audit_stats::witness_queue(1);
  send_front(self);
}

witness_actor::behavior_type
witness(witness_ptr self, witness_settings settings, upstream_fn call) {
  self->state.settings = std::move(settings);
  self->state.call = std::move(call);
  return {
    [self](atom::checkpoint, std::string& line) {
      enqueue(self, std::move(line));
    },
    [self](atom::upstream, uint64_t id, const upstream_result& r) {
      answered(self, id, r);
    },
    [self](atom::retry) {
      self->state.retry_armed = false;
      send_front(self);
    },
  };
}

} // namespace

std::optional<witness_settings> read_witness_settings(config_reader& cfg,
                                                      const YAML::Node& map,
                                                      const std::string& path) {
  if (!map.IsMap()) {
    cfg.fail(path, "expected a mapping with url");
    return std::nullopt;
  }
  if (!cfg.check_keys(
        map, path,
        {"url", "headers", "ca_file", "timeout_ms", "queue", "max_backoff_ms"}))
    return std::nullopt;
  witness_settings s;
  bool ok = true;
  if (auto url = cfg.string(map, "url", path, true)) {
    std::string why;
    auto target = parse_base_url(*url, why);
    if (!target) {
      cfg.fail(config_reader::join(path, "url"), why);
      ok = false;
    } else if (!target->tls && !is_loopback_host(target->host)) {
      cfg.fail(config_reader::join(path, "url"),
               "must be https (http only to a loopback host, for tests)");
      ok = false;
    } else {
      s.to.target = *target;
      s.to.path = target->base_path.empty() ? "/" : target->base_path;
    }
  } else {
    ok = false;
  }
  s.to.headers = read_header_map(cfg, map, path);
  s.to.ca_file = cfg.string(map, "ca_file", path).value_or("");
  if (auto ms = cfg.integer(map, "timeout_ms", path, 1, 600'000))
    s.to.timeout = std::chrono::milliseconds{*ms};
  if (auto n = cfg.integer(map, "queue", path, 1, 1'000'000))
    s.queue = static_cast<size_t>(*n);
  if (auto ms = cfg.integer(map, "max_backoff_ms", path, 500, 3'600'000))
    s.max_backoff = std::chrono::milliseconds{*ms};
  if (!ok)
    return std::nullopt;
  return s;
}

witness_actor spawn_witness(caf::actor_system& sys, witness_settings settings,
                            upstream_fn call) {
  return sys.spawn(witness, std::move(settings), std::move(call));
}

} // namespace pw::plugins::audit
