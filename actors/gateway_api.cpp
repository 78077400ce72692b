#include "actors/gateway_api.hpp"

#include "actors/generation.hpp"
#include "actors/session.hpp"
#include "core/json/reader.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

namespace pw::actors {

namespace {

/// How long GET /health waits for the SUPERVISOR.
constexpr auto health_timeout = std::chrono::seconds{3};

std::string render_health(const health_report& report) {
  nlohmann::ordered_json models = nlohmann::ordered_json::object();
  // pw-router's field: "healthy" while the process serves; "degraded" when
  // a model is not admitting traffic (so the body tells, not only a model).
  bool all_closed = true;
  for (const auto& m : report.models) {
    all_closed = all_closed && m.circuit == "closed";
    models[m.alias] = {
      {"status", m.circuit == "closed" ? "healthy" : "unhealthy"},
      {"circuit", m.circuit},
      {"provider", m.provider},
      {"model", m.model},
      {"in_flight", m.in_flight},
      {"requests", m.requests},
      {"successes", m.successes},
      {"failures", m.failures},
      {"rejected", m.rejected},
      {"cancelled", m.cancelled},
      {"last_status", m.last_status},
      {"last_error", m.last_error.empty()
                       ? nlohmann::ordered_json(nullptr)
                       : nlohmann::ordered_json(m.last_error)},
      {"consecutive_failures", m.consecutive_failures},
      {"last_latency_ms", static_cast<double>(m.last_latency_us) / 1000.0},
      {"mean_latency_ms", static_cast<double>(m.mean_latency_us) / 1000.0},
      {"p50_latency_ms", static_cast<double>(m.p50_latency_us) / 1000.0},
      {"p99_latency_ms", static_cast<double>(m.p99_latency_us) / 1000.0},
      {"last_check", m.last_check.empty()
                       ? nlohmann::ordered_json(nullptr)
                       : nlohmann::ordered_json(m.last_check)},
      {"last_check_ok", m.last_check_ok},
      {"last_check_error", m.last_check_error.empty()
                             ? nlohmann::ordered_json(nullptr)
                             : nlohmann::ordered_json(m.last_check_error)},
    };
  }
  nlohmann::ordered_json body = {
    {"status", all_closed ? "healthy" : "degraded"},
    {"version", PW_VERSION},
    {"config_sha256", report.config_sha256},
    {"config_loaded_at", report.config_loaded_at},
    {"models", std::move(models)},
  };
  return json::dump(body);
}

/// A one-shot actor that asks the SUPERVISOR and answers through the bridge.
void health_request(caf::event_based_actor* self, supervisor_actor sup,
                    reply_fn reply) {
  auto shared = std::make_shared<reply_fn>(std::move(reply));
  self->request(sup, health_timeout, atom::health_v)
    .then(
      [shared](health_report& report) {
        http_reply r;
        r.body = render_health(report);
        (*shared)(std::move(r));
      },
      [shared](caf::error&) {
        http_reply r;
        r.error = error_of(errc::overloaded,
                           "The gateway's supervisor did not answer");
        (*shared)(std::move(r));
      });
}

/// pico-USD as USD.
double usd(uint64_t pico) {
  return static_cast<double>(pico) / 1e12;
}

/// One scope of GET /v1/usage: its limits, what it used in the current
/// periods, and what is left of each limit.
nlohmann::ordered_json render_scope(const scope_usage& u) {
  using doc = nlohmann::ordered_json;
  auto colon = u.scope.find(':');
  doc limits = doc::object();
  doc used = {{"requests_this_minute", u.minute_requests},
              {"tokens_this_minute", u.minute_tokens},
              {"in_flight", u.in_flight},
              {"tokens_today", u.day_tokens},
              {"tokens_this_month", u.month_tokens},
              {"cost_usd_this_month", usd(u.month_cost)}};
  doc remaining = doc::object();
  auto add = [&](const char* name, const std::optional<uint64_t>& limit,
                 uint64_t use) {
    if (!limit)
      return;
    limits[name] = *limit;
    remaining[name] = *limit > use ? *limit - use : 0;
  };
  const auto& l = u.limits;
  add("requests_per_minute", l.requests_per_minute, u.minute_requests);
  add("tokens_per_minute", l.tokens_per_minute, u.minute_tokens);
  add("max_concurrent", l.max_concurrent, u.in_flight);
  add("tokens_per_day", l.tokens_per_day, u.day_tokens);
  add("tokens_per_month", l.tokens_per_month, u.month_tokens);
  if (l.budget_per_month) {
    limits["budget_usd_per_month"] = usd(*l.budget_per_month);
    remaining["budget_usd_per_month"] = usd(
      *l.budget_per_month > u.month_cost ? *l.budget_per_month - u.month_cost
                                         : 0);
  }
  return {{"scope", u.scope.substr(0, colon)},
          {"name", u.scope.substr(colon + 1)},
          {"limits", std::move(limits)},
          {"used", std::move(used)},
          {"remaining", std::move(remaining)}};
}

/// A one-shot actor that answers GET /v1/usage.
void usage_request_actor(caf::event_based_actor* self, ledger_actor ledger,
                         usage_view view, reply_fn reply) {
  auto shared = std::make_shared<reply_fn>(std::move(reply));
  self->request(ledger, health_timeout, atom::get_v)
    .then(
      [shared, view](usage_report& report) {
        nlohmann::ordered_json scopes = nlohmann::ordered_json::array();
        for (const auto& u : report.scopes)
          if (view.all || u.scope == "key:" + view.client
              || (!view.team.empty() && u.scope == "team:" + view.team))
            scopes.push_back(render_scope(u));
        nlohmann::ordered_json body = {{"object", "usage"},
                                       {"backend", report.backend},
                                       {"available", report.available},
                                       {"scopes", std::move(scopes)}};
        http_reply r;
        r.body = json::dump(body);
        (*shared)(std::move(r));
      },
      [shared](caf::error&) {
        http_reply r;
        r.error = error_of(errc::usage_unavailable,
                           "The gateway's usage ledger did not answer");
        (*shared)(std::move(r));
      });
}

/// A one-shot actor that answers the readiness probe.
void ready_request(caf::event_based_actor* self, supervisor_actor sup,
                   ledger_actor ledger, reply_fn reply) {
  auto shared = std::make_shared<reply_fn>(std::move(reply));
  // The usage state first (answered from memory): it goes in the body.
  auto usage = std::make_shared<nlohmann::ordered_json>(nullptr);
  auto models = [self, sup, shared, usage] {
    self->request(sup, health_timeout, atom::health_v)
      .then(
        [shared, usage](health_report& report) {
          size_t admitting = 0;
          for (const auto& m : report.models)
            admitting += m.circuit == "closed" || m.circuit == "half_open";
          http_reply r;
          if (admitting == 0) {
            r.error = error_of(errc::no_model_available,
                               "Not ready: no model admits traffic");
          } else {
            // An unreachable usage state does not make the replica unready:
            // every replica shares it, so taking them all out of the load
            // balancer helps nobody; ungoverned keys are still served, and
            // governed ones get a clear 503 (or are served, with allow).
            nlohmann::ordered_json body
              = {{"status", "ready"},
                 {"models_admitting", admitting},
                 {"models", report.models.size()},
                 {"config_sha256", report.config_sha256},
                 {"usage_state", *usage}};
            r.body = json::dump(body);
          }
          (*shared)(std::move(r));
        },
        [shared](caf::error&) {
          http_reply r;
          r.error = error_of(errc::overloaded,
                             "Not ready: the gateway's supervisor did not "
                             "answer");
          (*shared)(std::move(r));
        });
  };
  if (!ledger) {
    models();
    return;
  }
  self->request(ledger, health_timeout, atom::status_v)
    .then(
      [usage, models](usage_report& r) {
        *usage = {{"backend", r.backend}, {"available", r.available}};
        models();
      },
      [usage, models](caf::error&) {
        *usage = {{"backend", nullptr}, {"available", false}};
        models();
      });
}

/// What a metrics scrape carries to its one-shot actor.
struct metrics_job {
  metrics_snapshot snap;
  metrics_scope scope;
  bool json = false;
  reply_fn reply;
};

/// Renders the scrape in the shape asked for and answers it.
void answer_scrape(metrics_job& job) {
  http_reply r;
  if (job.json) {
    r.body = render_usage_json(job.snap, job.scope);
  } else {
    r.body = render_prometheus(job.snap, job.scope);
    r.content_type = std::string{prometheus_content_type};
  }
  job.reply(std::move(r));
}

/// A one-shot actor that completes a scrape with the MODELs' state.
/// The LEDGER's report as scrape gauges.
usage_gauges gauges_of(const usage_report& r) {
  usage_gauges out;
  out.backend = r.backend;
  out.available = r.available;
  out.reserved = r.reserved;
  out.refused = r.refused;
  out.unavailable = r.unavailable;
  out.settled = r.settled;
  out.settled_tokens = r.settled_tokens;
  out.settled_cost_usd = usd(r.settled_cost);
  for (const auto& u : r.scopes) {
    auto colon = u.scope.find(':');
    usage_scope_gauge g;
    g.kind = u.scope.substr(0, colon);
    g.name = u.scope.substr(colon + 1);
    g.in_flight = u.in_flight;
    g.tokens_today = u.day_tokens;
    g.tokens_this_month = u.month_tokens;
    g.cost_usd_this_month = usd(u.month_cost);
    if (auto b = u.limits.budget_per_month)
      g.budget_remaining_usd = usd(*b > u.month_cost ? *b - u.month_cost : 0);
    out.scopes.push_back(std::move(g));
  }
  return out;
}

void metrics_request(caf::event_based_actor* self, supervisor_actor sup,
                     ledger_actor ledger, std::shared_ptr<metrics_job> job) {
  if (job->json || !job->scope.all) {
    // The usage shape and a client's scrape show no model state: no need
    // to ask for it.
    answer_scrape(*job);
    return;
  }
  self->request(sup, health_timeout, atom::health_v)
    .then(
      [self, ledger, job](health_report& report) {
        auto& snap = job->snap;
        for (const auto& m : report.models)
          snap.models.push_back(
            {m.alias, circuit_gauge(m.circuit), m.in_flight});
        snap.config_sha256 = report.config_sha256;
        snap.process = read_process_stats();
        if (!ledger) {
          answer_scrape(*job);
          return;
        }
        // A LEDGER that does not answer leaves its series out; the rest of
        // the scrape still comes.
        self->request(ledger, health_timeout, atom::get_v)
          .then(
            [job](usage_report& usage) {
              job->snap.usage = gauges_of(usage);
              answer_scrape(*job);
            },
            [job](caf::error&) { answer_scrape(*job); });
      },
      [job](caf::error&) {
        http_reply r;
        r.error = error_of(errc::overloaded,
                           "The gateway's supervisor did not answer");
        job->reply(std::move(r));
      });
}

} // namespace

const gateway_config& config_of(const generation_ptr& gen) {
  return *gen->config;
}

cancel_fn start_chat(const generation_ptr& gen, chat_context ctx,
                     reply_fn reply, upstream_fn upstream) {
  auto s = gen->system->spawn(session, std::move(ctx), gen->config, gen->router,
                              gen->ledger, gen->plugins, std::move(reply),
                              std::move(upstream), gen->tracer);
  return [s](cancel_reason why) { caf::anon_send(s, atom::cancel_v, why); };
}

void start_usage(const generation_ptr& gen, usage_view view, reply_fn reply) {
  gen->system->spawn(usage_request_actor, gen->ledger, std::move(view),
                     std::move(reply));
}

void start_health(const generation_ptr& gen, reply_fn reply) {
  gen->system->spawn(health_request, gen->supervisor, std::move(reply));
}

void start_metrics(const generation_ptr& gen, metrics_snapshot snap,
                   metrics_scope scope, bool json, reply_fn reply) {
  auto job = std::make_shared<metrics_job>(
    metrics_job{std::move(snap), std::move(scope), json, std::move(reply)});
  gen->system->spawn(metrics_request, gen->supervisor, gen->ledger,
                     std::move(job));
}

void start_ready(const generation_ptr& gen, reply_fn reply) {
  gen->system->spawn(ready_request, gen->supervisor, gen->ledger,
                     std::move(reply));
}

} // namespace pw::actors
