#include "actors/model.hpp"

#include "adapters/adapter.hpp"
#include "core/observe/log.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

namespace pw::actors {

std::string to_string(call_result x) {
  switch (x) {
  case call_result::success:
    return "success";
  case call_result::failure:
    return "failure";
  case call_result::rejected:
    return "rejected";
  case call_result::cancelled:
    return "cancelled";
  }
  return "unknown";
}

void model_state::record(const call_outcome& x) {
  if (x.status != 0)
    last_status = x.status;
  switch (x.result) {
  case call_result::success:
    ++successes;
    break;
  case call_result::failure:
    ++failures;
    last_error = x.error;
    break;
  case call_result::rejected:
    ++rejected;
    break;
  case call_result::cancelled:
    ++cancelled;
    return; // no latency for calls that never finished
  }
  last_latency_us = x.latency_us;
  total_latency_us += x.latency_us;
  latencies.add(x.latency_us);
}

model_status model_state::status(circuit_breaker::clock::time_point now) const {
  model_status out;
  out.alias = settings->alias;
  out.provider = settings->provider;
  out.model = settings->model;
  out.circuit = std::string{to_string(breaker.state(now))};
  out.in_flight = in_flight();
  out.requests = requests;
  out.successes = successes;
  out.failures = failures;
  out.rejected = rejected;
  out.cancelled = cancelled;
  out.last_status = last_status;
  out.last_error = last_error;
  out.last_latency_us = last_latency_us;
  auto finished = successes + failures + rejected;
  out.mean_latency_us
    = finished == 0 ? 0 : total_latency_us / static_cast<int64_t>(finished);
  out.p50_latency_us = latencies.quantile(0.5);
  out.p99_latency_us = latencies.quantile(0.99);
  out.consecutive_failures = breaker.consecutive_failures();
  out.last_check = last_check;
  out.last_check_ok = last_check_ok;
  out.last_check_error = last_check_error;
  return out;
}

namespace {

using model_ptr = model_actor::stateful_pointer<model_state>;

/// Logs a breaker transition (the actor's log line reads as a trace).
void log_transition(model_ptr self, std::string_view cause) {
  auto& st = self->state;
  if (!st.breaker.changed())
    return;
  auto state = st.breaker.state(self->clock().now());
  log::write(state == circuit_state::closed ? log_level::info
                                            : log_level::warning,
             "breaker",
             {{"model", st.settings->alias},
              {"circuit", to_string(state)},
              {"cause", cause},
              {"consecutive_failures", st.breaker.consecutive_failures()}});
}

/// Takes back leases whose outcome never came: their in-flight slot, and
/// the probe slot of a half-open breaker, are free again. Looked at most
/// once a second, when the actor runs anyway (admissions, health checks,
/// status), so no timer is armed for it.
void sweep_leases(model_ptr self, circuit_breaker::clock::time_point now) {
  auto& st = self->state;
  if (now < st.next_sweep)
    return;
  st.next_sweep = now + std::chrono::seconds{1};
  for (auto it = st.leases.begin(); it != st.leases.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    st.breaker.record_cancelled(it->second.probe);
    ++st.cancelled;
    ++st.expired;
    log::write(log_level::warning, "lease_expired",
               {{"model", st.settings->alias},
                {"probe", it->second.probe},
                {"expired_total", st.expired}});
    it = st.leases.erase(it);
  }
}

void run_check(model_ptr self) {
  auto& st = self->state;
  if (st.check_in_flight || !st.check)
    return;
  if (!st.has_credential(self->clock().now())) {
    // Nothing to check with; requests fail with the reason meanwhile.
    st.last_check = log::timestamp();
    st.last_check_ok = false;
    st.last_check_error
      = "skipped: no valid credential ("
        + (st.credential_error.empty() ? std::string{"its token expired"}
                                       : st.credential_error)
        + ")";
    return;
  }
  const auto& m = *st.settings;
  auto req = adapters::adapter_for(m).health_request(m);
  if (!req)
    return;
  req->connect_timeout = std::min(req->connect_timeout, st.check_timeout);
  req->timeout = st.check_timeout;
  req->first_byte_timeout = st.check_timeout;
  st.check_in_flight = true;
  auto handle = caf::actor_cast<model_actor>(self);
  st.check(std::move(*req), [handle](upstream_result r) {
    caf::anon_send(handle, atom::checked_v, std::move(r));
  });
}

void on_checked(model_ptr self, const upstream_result& r) {
  auto& st = self->state;
  st.check_in_flight = false;
  st.last_check = log::timestamp();
  auto now = self->clock().now();
  // Not the provider's doing: shutdown, or the gateway's own failure.
  if (r.failure == upstream_failure::cancelled
      || r.failure == upstream_failure::internal)
    return;
  st.last_check_ok
    = r.failure == upstream_failure::none && r.status >= 200 && r.status < 300;
  if (st.last_check_ok) {
    st.last_check_error.clear();
    st.breaker.health_success();
    log_transition(self, "health check passed");
    return;
  }
  st.last_check_error = r.failure != upstream_failure::none
                          ? std::string{to_string(r.failure)} + ": " + r.detail
                          : "HTTP " + std::to_string(r.status);
  st.breaker.health_failure(now);
  log_transition(self, "health check failed");
}

/// A credential fetch failed: said in the log, retried with a backoff (1,
/// 2, 4 ... 60 s). A token still valid stays in use meanwhile.
void credential_failed(model_ptr self, std::string why) {
  auto& st = self->state;
  st.credential_error = std::move(why);
  ++st.credential_failures;
  auto shift = std::min<uint32_t>(st.credential_failures - 1, 6);
  auto delay = std::min(std::chrono::seconds{1} * (1u << shift),
                        std::chrono::seconds{60});
  if (!st.checks_started)
    st.last_check_error = "waiting for a credential: " + st.credential_error;
  log::write(log_level::warning, "credential_failed",
             {{"model", st.settings->alias},
              {"error", st.credential_error},
              {"failures", st.credential_failures},
              {"retry_in_s", delay.count()}});
  self->delayed_send(self, delay, atom::renew_v);
}

/// Asks the provider's token endpoint for a credential, on an io thread.
void fetch_credential(model_ptr self) {
  auto& st = self->state;
  if (st.credential_in_flight)
    return;
  const auto& m = *st.configured;
  auto req = adapters::adapter_for(m).credential_request(m);
  if (!req)
    return;
  if (!*req) {
    credential_failed(self, message_of(req->error()));
    return;
  }
  st.credential_in_flight = true;
  auto handle = caf::actor_cast<model_actor>(self);
  st.check(std::move(**req), [handle](upstream_result r) {
    caf::anon_send(handle, atom::renewed_v, std::move(r));
  });
}

/// A credential fetch finished: the new token goes into the settings the
/// MODEL hands out, and the next fetch is set ahead of its expiry (at 3/4
/// of its life, at most 5 minutes before it ends, at least 5 s on).
void on_renewed(model_ptr self, const upstream_result& r) {
  auto& st = self->state;
  st.credential_in_flight = false;
  if (r.failure == upstream_failure::cancelled)
    return; // shutting down
  const auto& m = *st.configured;
  auto cred = adapters::adapter_for(m).credential_from(r, m);
  if (!cred) {
    credential_failed(self, message_of(cred.error()));
    return;
  }
  auto next = std::make_shared<model_config>(m);
  next->access_token = std::move(cred->token);
  st.settings = std::move(next);
  auto life = std::max(cred->lifetime, std::chrono::seconds{0});
  st.credential_expires = self->clock().now() + life;
  st.credential_error.clear();
  st.credential_failures = 0;
  auto ahead = std::min(life / 4, std::chrono::seconds{300});
  auto renew_in = std::max(life - ahead, std::chrono::seconds{5});
  log::write(log_level::info, "credential_renewed",
             {{"model", m.alias},
              {"expires_in_s", life.count()},
              {"renew_in_s", renew_in.count()}});
  self->delayed_send(self, renew_in, atom::renew_v);
  if (!st.checks_started) {
    st.last_check_error.clear();
    if (st.check_interval.count() > 0) {
      st.checks_started = true;
      self->send(self, atom::probe_v);
    }
  }
}

} // namespace

model_actor::behavior_type
model(model_actor::stateful_pointer<model_state> self,
      model_config_ptr settings, health_config health, upstream_fn check) {
  auto& st = self->state;
  st.configured = settings;
  st.settings = std::move(settings);
  st.breaker = circuit_breaker{breaker_settings{
    health.unhealthy_threshold, health.healthy_threshold,
    std::chrono::duration_cast<circuit_breaker::clock::duration>(
      health.cooldown)}};
  st.check = std::move(check);
  st.check_interval = to_ms(health.check_interval);
  st.check_timeout = to_ms(health.check_timeout);
  // The first check runs at once, then one every interval: one timer per
  // model, never per request.
  // A provider with a run-time credential fetches it at once and renews
  // it ahead of its expiry; its health checks start with the first token.
  st.needs_credential = adapters::adapter_for(*st.configured)
                          .credential_request(*st.configured)
                          .has_value();
  if (st.needs_credential) {
    st.credential_error
      = st.check ? "not fetched yet" : "no io thread to fetch it";
    st.last_check_error = "waiting for a credential";
    if (st.check)
      self->send(self, atom::renew_v);
  } else if (st.check && st.check_interval.count() > 0) {
    self->send(self, atom::probe_v);
  }
  return {
    [self](atom::admit, const admit_request& req) -> admission {
      auto& st = self->state;
      auto now = self->clock().now();
      sweep_leases(self, now);
      if (st.settings->max_concurrent > 0
          && st.in_flight() >= st.settings->max_concurrent)
        return admission{false, "at max_concurrent", st.settings, 0, false};
      bool probe = false;
      if (!st.breaker.try_admit(now, probe)) {
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          st.breaker.retry_at() - now);
        return admission{false, "circuit open", st.settings,
                         std::max<int64_t>(wait.count(), 1), false};
      }
      log_transition(self, "cooldown over: probing");
      auto id = ++st.next_lease;
      auto ttl = std::chrono::milliseconds{std::max<int64_t>(req.ttl_ms, 0)};
      st.leases.emplace(id,
                        model_state::lease{now + ttl + st.lease_grace, probe});
      ++st.requests;
      admission out{true, {}, st.settings, 0, probe, id};
      if (!st.has_credential(now))
        out.credential_error = st.credential_error.empty()
                                 ? std::string{"its token expired"}
                                 : st.credential_error;
      return out;
    },
    [self](atom::outcome, const call_outcome& x) {
      auto& st = self->state;
      auto found = st.leases.find(x.lease);
      if (found == st.leases.end())
        return; // taken back already (expired), or never given
      bool probe = found->second.probe;
      st.leases.erase(found);
      st.record(x);
      auto now = self->clock().now();
      switch (x.result) {
      case call_result::success:
      case call_result::rejected:
        // A 4xx still proves the upstream answers.
        st.breaker.record_success(probe);
        log_transition(self, "request succeeded");
        break;
      case call_result::failure:
        st.breaker.record_failure(now, probe);
        log_transition(self, x.error);
        break;
      case call_result::cancelled:
        st.breaker.record_cancelled(probe);
        break;
      }
    },
    [self](atom::status) {
      auto now = self->clock().now();
      sweep_leases(self, now);
      return self->state.status(now);
    },
    [self](atom::probe) {
      sweep_leases(self, self->clock().now());
      run_check(self);
      self->delayed_send(self, self->state.check_interval, atom::probe_v);
    },
    [self](atom::checked, const upstream_result& r) { on_checked(self, r); },
    [self](atom::renew) { fetch_credential(self); },
    [self](atom::renewed, const upstream_result& r) { on_renewed(self, r); },
  };
}

} // namespace pw::actors
