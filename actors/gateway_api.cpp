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

using doc = nlohmann::ordered_json;

/// A string, or null when empty.
doc text_or_null(const std::string& s) {
  return s.empty() ? doc(nullptr) : doc(s);
}

double ms_of(int64_t us) {
  return static_cast<double>(us) / 1000.0;
}

/// Why the gateway is degraded: one sentence per unwell actor; empty when
/// it is healthy.
std::vector<std::string> reasons_of(const health_report& report) {
  std::vector<std::string> out;
  for (const auto& m : report.models) {
    if (m.circuit == "closed")
      continue;
    if (m.circuit == "unknown")
      out.push_back("model " + m.alias + ": its actor did not answer");
    else
      out.push_back("model " + m.alias + ": circuit " + m.circuit);
  }
  for (const auto& p : report.plugins) {
    if (p.running)
      continue;
    auto who = "plugin " + p.stage + "[" + std::to_string(p.index) + "] ("
               + p.name + ")";
    if (!p.restart_at.empty())
      out.push_back(who + ": down since " + p.down_since + ", restarts at "
                    + p.restart_at);
    else
      out.push_back(who + ": down until a reload");
  }
  if (report.restart_budget_left == 0)
    out.push_back("restart budget spent: "
                  + std::to_string(report.restarts_last_minute)
                  + " restarts in the last minute; an actor that ends now "
                    "stays down until a reload");
  for (const auto& g : report.given_up)
    if (g.rfind("plugin ", 0) != 0) // plugins have their own line above
      out.push_back(g + ": down until a reload (restart budget spent)");
  if (!report.router_answered)
    out.push_back("router: did not answer");
  return out;
}

doc render_model(const model_status& m) {
  return {
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
    {"last_error", text_or_null(m.last_error)},
    {"consecutive_failures", m.consecutive_failures},
    {"last_latency_ms", ms_of(m.last_latency_us)},
    {"mean_latency_ms", ms_of(m.mean_latency_us)},
    {"p50_latency_ms", ms_of(m.p50_latency_us)},
    {"p99_latency_ms", ms_of(m.p99_latency_us)},
    {"last_check", text_or_null(m.last_check)},
    {"last_check_ok", m.last_check_ok},
    {"last_check_error", text_or_null(m.last_check_error)},
  };
}

doc render_plugin(const plugin_health& p) {
  const auto& c = p.calls;
  return {
    {"stage", p.stage},
    {"index", p.index},
    {"plugin", p.name},
    {"entry", p.entry},
    {"status", p.running ? "running" : "down"},
    {"restarts", p.restarts},
    {"down_since", text_or_null(p.down_since)},
    {"restart_at", text_or_null(p.restart_at)},
    {"calls", c.calls},
    {"blocks", c.blocks},
    {"timeouts", c.timeouts},
    {"failures", c.failures},
    {"p50_ms", ms_of(c.p50_us)},
    {"p99_ms", ms_of(c.p99_us)},
    {"last_error", text_or_null(c.last_error)},
    {"last_error_at", text_or_null(c.last_error_at)},
  };
}

std::string render_health(health_report& report, const health_view& view) {
  auto reasons = reasons_of(report);
  const char* status = reasons.empty() ? "healthy" : "degraded";
  doc models = doc::object();
  if (!view.details) {
    // pw-router's shape: what a load balancer needs, nothing a stranger
    // should learn.
    for (const auto& m : report.models)
      models[m.alias]
        = {{"status", m.circuit == "closed" ? "healthy" : "unhealthy"},
           {"circuit", m.circuit}};
    return json::dump(
      doc{{"status", status}, {"version", PW_VERSION}, {"models", models}});
  }
  for (const auto& m : report.models)
    models[m.alias] = render_model(m);
  doc io = doc::array();
  for (size_t i = 0; i < view.io_threads.size(); ++i) {
    const auto& t = view.io_threads[i];
    if (!t)
      report.partial.push_back("io thread " + std::to_string(i)
                               + ": did not answer within 1 s");
    io.push_back({{"thread", i},
                  {"connections", t ? doc(t->connections) : doc(nullptr)},
                  {"in_flight", t ? doc(t->in_flight) : doc(nullptr)}});
  }
  doc plugins = doc::array();
  for (const auto& p : report.plugins)
    plugins.push_back(render_plugin(p));
  const auto& s = report.sessions;
  doc router = nullptr;
  if (report.router_answered)
    router = {{"resolved", report.router.resolved},
              {"refused", report.router.refused},
              {"mailbox", report.router.mailbox}};
  doc body = {
    {"status", status},
    {"reasons", reasons},
    {"partial", report.partial},
    {"version", PW_VERSION},
    {"config_sha256", report.config_sha256},
    {"config_loaded_at", report.config_loaded_at},
    {"models", std::move(models)},
    {"supervisor",
     {{"generation", report.generation},
      {"config_loaded_at", report.config_loaded_at},
      {"restarts_last_minute", report.restarts_last_minute},
      {"restart_budget_per_minute",
       report.restarts_last_minute + report.restart_budget_left},
      {"restart_budget_left", report.restart_budget_left},
      {"given_up", report.given_up}}},
    {"router", std::move(router)},
    {"plugins", std::move(plugins)},
    {"sessions",
     {{"alive", s.alive()},
      {"started", s.started},
      {"finished", s.finished()},
      {"answered", s.answered},
      {"cancelled", s.cancelled},
      {"deadline", s.deadline}}},
    {"io_threads", std::move(io)},
  };
  return json::dump(body);
}

/// A one-shot actor that asks the SUPERVISOR and answers through the bridge.
void health_request(caf::event_based_actor* self, supervisor_actor sup,
                    health_view view, reply_fn reply) {
  auto shared = std::make_shared<reply_fn>(std::move(reply));
  self->request(sup, health_timeout, atom::health_v)
    .then(
      [shared, view = std::move(view)](health_report& report) {
        http_reply r;
        r.body = render_health(report, view);
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

void start_health(const generation_ptr& gen, health_view view, reply_fn reply) {
  gen->system->spawn(health_request, gen->supervisor, std::move(view),
                     std::move(reply));
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
