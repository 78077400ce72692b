// The SUPERVISOR on the deterministic scheduler: health fan-out and
// restarts.

#include "actors/generation.hpp"
#include "actors/supervisor.hpp"
#include "core/errc.hpp"
#include "core/sha256.hpp"
#include "plugins/plugin.hpp"
#include "tests/support/actor_fixture.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <vector>

using namespace pw;
using namespace pw::actors;
using namespace pw::test;

namespace {

struct supervisor_fixture : actor_fixture {
  std::shared_ptr<gateway_config> config = std::make_shared<gateway_config>();
  std::vector<generation_ptr> published;
  supervisor_actor aut;

  supervisor_fixture() {
    api_key_config k;
    k.name = "client";
    k.key_digest = sha256("sk");
    k.allowed_models = {"*"};
    config->server.api_keys = {k};
    config->models
      = {test_model("first", "echo"), test_model("second", "echo")};
    config->routing.default_model = "first";
    aut = spawn(supervisor, gateway_config_ptr{config},
                publish_fn{[this](generation_ptr g) {
                  published.push_back(std::move(g));
                }},
                upstream_fn{}, plugin_spawner{plugins::spawn_builtin},
                redis_link_factory{});
    run();
  }

  ~supervisor_fixture() override {
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
  }

  generation_ptr current() {
    generation_ptr out;
    auto h = self->request(aut, caf::infinite, atom::get_v);
    run();
    h.receive([&](generation_ptr g) { out = std::move(g); },
              [&](caf::error& err) { FAIL(caf::to_string(err)); });
    return out;
  }

  router_actor current_router() { return current()->router; }

  health_report health() {
    health_report out;
    auto h = self->request(aut, caf::infinite, atom::health_v);
    run();
    h.receive([&](health_report& r) { out = std::move(r); },
              [&](caf::error& err) { FAIL(caf::to_string(err)); });
    return out;
  }

  /// Resolves as a SESSION does: the ROUTER's plan, then the first
  /// candidate's admission.
  route_decision resolve(const std::string& model) {
    route_plan plan;
    auto h = self->request(current_router(), caf::infinite, atom::resolve_v,
                           resolve_request{"r", "client", 0, model, {}});
    run();
    h.receive([&](route_plan& p) { plan = std::move(p); },
              [&](caf::error& err) { FAIL(caf::to_string(err)); });
    REQUIRE_FALSE(plan.candidates.empty());
    auto first = plan.candidates.front();
    route_decision out;
    auto a = self->request(first.model, caf::infinite, atom::admit_v,
                           admit_request{60000});
    run();
    a.receive(
      [&](admission& x) {
        REQUIRE(x.admitted);
        out = decision_for(first.alias, first.model, std::move(x));
      },
      [&](caf::error& err) { FAIL(caf::to_string(err)); });
    return out;
  }
};

} // namespace

TEST_CASE_METHOD(supervisor_fixture, "health lists every model in config "
                                     "order") {
  auto report = health();
  REQUIRE(report.models.size() == 2);
  CHECK(report.models[0].alias == "first");
  CHECK(report.models[1].alias == "second");
  CHECK(report.models[0].circuit == "closed");
  CHECK(report.models[0].provider == "echo");
}

TEST_CASE_METHOD(supervisor_fixture, "model state follows admissions and "
                                     "outcomes") {
  auto d = resolve("second");
  CHECK(health().models[1].in_flight == 1);
  self->send(
    d.model, atom::outcome_v,
    call_outcome{call_result::failure, 503, 2000, "HTTP 503", d.lease});
  run();
  auto s = health().models[1];
  CHECK(s.in_flight == 0);
  CHECK(s.requests == 1);
  CHECK(s.failures == 1);
  CHECK(s.last_status == 503);
  CHECK(s.last_error == "HTTP 503");
  CHECK(s.mean_latency_us == 2000);
}

TEST_CASE_METHOD(supervisor_fixture, "a dead MODEL is restarted and the "
                                     "ROUTER uses the new one") {
  auto before = resolve("first").model;
  self->send_exit(before, caf::exit_reason::kill);
  run();
  auto after = resolve("first").model;
  CHECK(after != before);
  CHECK(health().models[0].alias == "first");
  CHECK(published.empty()); // the ROUTER itself did not change
}

TEST_CASE_METHOD(supervisor_fixture, "a dead ROUTER is restarted and "
                                     "published to the io threads") {
  auto before = current_router();
  self->send_exit(before, caf::exit_reason::kill);
  run();
  REQUIRE(published.size() == 1);
  CHECK(published[0]->router != before);
  CHECK(published[0]->router == current_router());
  CHECK(resolve("second").alias == "second");
}

TEST_CASE_METHOD(supervisor_fixture, "an admission in flight when its MODEL "
                                     "dies is refused at once, never hangs") {
  auto doomed = resolve("first").model;
  // The MODEL dies with an admission request behind the kill in its
  // mailbox: the request reaches a dead actor.
  self->send_exit(doomed, caf::exit_reason::kill);
  auto h
    = self->request(doomed, caf::infinite, atom::admit_v, admit_request{60000});
  run();
  // An error at once (the SESSION passes the candidate over, or during a
  // fallback records "skipped (not responding)", and
  // moves on), never an admission.
  bool admitted = false;
  caf::error refused;
  h.receive([&](admission& a) { admitted = a.admitted; },
            [&](caf::error& err) { refused = std::move(err); });
  CHECK_FALSE(admitted);
  CHECK(refused);
  // The restarted MODEL serves the next request.
  CHECK(resolve("first").model != doomed);
}

TEST_CASE_METHOD(supervisor_fixture, "a reload keeps unchanged MODELs and "
                                     "publishes a new ROUTER") {
  auto before_router = current_router();
  auto before_first = resolve("first").model;
  auto before_second = resolve("second").model;
  auto next = std::make_shared<gateway_config>(*config);
  auto changed = std::make_shared<model_config>(*next->models[1]);
  changed->timeout = seconds_d{5};
  next->models[1] = changed;
  next->source_sha256 = "next";
  self->send(aut, atom::reload_v, gateway_config_ptr{next});
  run();
  REQUIRE(published.size() == 1);
  CHECK(published[0]->config == next);
  CHECK(resolve("first").model == before_first);
  CHECK(resolve("second").model != before_second);
  CHECK(health().config_sha256 == "next");
  // The replaced MODEL and ROUTER serve requests already on their way
  // until the grace period is over, then they are retired; the kept MODEL
  // stays.
  for (const auto& a : {caf::actor_cast<caf::actor>(before_router),
                        caf::actor_cast<caf::actor>(before_first),
                        caf::actor_cast<caf::actor>(before_second)})
    self->monitor(a);
  auto ended = [&] {
    std::vector<caf::actor_addr> out;
    bool more = true;
    while (more)
      self->receive([&](caf::down_msg& d) { out.push_back(d.source); },
                    caf::after(std::chrono::seconds{0}) >>
                      [&] { more = false; });
    return out;
  };
  sched.advance_time(to_ms(config->server.request_deadline));
  run();
  CHECK(ended().empty());
  sched.advance_time(std::chrono::seconds{2});
  run();
  auto retired = ended();
  CHECK(retired.size() == 2);
  auto has = [&](const caf::actor_addr& a) {
    return std::find(retired.begin(), retired.end(), a) != retired.end();
  };
  CHECK(has(before_router.address()));
  CHECK(has(before_second.address()));
  CHECK_FALSE(has(before_first.address()));
  CHECK(health().models.size() == 2);
}

TEST_CASE_METHOD(supervisor_fixture, "a MODEL and the LEDGER left dead "
                                     "once the restart budget is spent come "
                                     "back with a reload") {
  // The ROUTER's first candidate for "first", alive or not.
  auto first_model = [&] {
    route_plan plan;
    auto h = self->request(current_router(), caf::infinite, atom::resolve_v,
                           resolve_request{"r", "client", 0, "first", {}});
    run();
    h.receive([&](route_plan& p) { plan = std::move(p); },
              [&](caf::error& err) { FAIL(caf::to_string(err)); });
    REQUIRE_FALSE(plan.candidates.empty());
    return plan.candidates.front().model;
  };
  auto ledger_answers = [&](const ledger_actor& ledger) {
    bool answered = false;
    auto h = self->request(ledger, caf::infinite, atom::status_v);
    run();
    h.receive([&](usage_report&) { answered = true; }, [](caf::error&) {});
    return answered;
  };
  // Twenty restarts, then the MODEL stays dead.
  model_actor last;
  for (uint32_t i = 0; i <= max_restarts_per_minute; ++i) {
    last = first_model();
    self->send_exit(last, caf::exit_reason::kill);
    run();
  }
  CHECK(first_model() == last);
  CHECK(health().models[0].circuit == "unknown");
  // The budget is spent: the LEDGER stays dead too.
  auto dead_ledger = current()->ledger;
  self->send_exit(dead_ledger, caf::exit_reason::kill);
  run();
  CHECK(current()->ledger == dead_ledger);
  CHECK_FALSE(ledger_answers(dead_ledger));
  // And the ROUTER: /health names all three, and the parts that did not
  // answer.
  self->send_exit(current_router(), caf::exit_reason::kill);
  run();
  auto spent = health();
  CHECK(spent.restart_budget_left == 0);
  CHECK(spent.given_up
        == std::vector<std::string>{"model first", "router", "ledger"});
  CHECK_FALSE(spent.router_answered);
  CHECK(spent.partial
        == std::vector<std::string>{"router: did not answer within 2 s",
                                    "model first: did not answer within 2 s"});

  // A reload of the same settings spawns both again.
  auto next = std::make_shared<gateway_config>(*config);
  next->source_sha256 = "next";
  self->send(aut, atom::reload_v, gateway_config_ptr{next});
  run();
  CHECK(first_model() != last);
  CHECK(resolve("first").alias == "first");
  CHECK(health().models[0].circuit == "closed");
  CHECK(health().given_up.empty());
  CHECK(health().router_answered);
  auto ledger = current()->ledger;
  CHECK(ledger != dead_ledger);
  CHECK(ledger_answers(ledger));
}

namespace {

plugin_entry plugin_entry_of(std::string name, const std::string& yaml,
                             std::string path) {
  plugin_entry e;
  e.plugin = std::move(name);
  e.path = std::move(path);
  e.config = std::make_shared<const YAML::Node>(YAML::Load(yaml));
  e.fingerprint = e.plugin + ":" + yaml;
  return e;
}

struct plugin_supervisor_fixture : supervisor_fixture {
  plugin_supervisor_fixture() {
    // The base fixture's SUPERVISOR has no plugins: replace it.
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    run();
    config->middleware.pre_request
      = {plugin_entry_of("regex", "rules: [{pattern: x, tag: y}]",
                         "middleware.pre_request[0]"),
         plugin_entry_of("pii", "action: tag", "middleware.pre_request[1]")};
    config->middleware.pre_request[1].timeout = std::chrono::milliseconds{50};
    config->middleware.pre_request[1].fail_open = true;
    aut = spawn(supervisor, gateway_config_ptr{config},
                publish_fn{[this](generation_ptr g) {
                  published.push_back(std::move(g));
                }},
                upstream_fn{}, plugin_spawner{plugins::spawn_builtin},
                redis_link_factory{});
    run();
  }
};

} // namespace

TEST_CASE_METHOD(plugin_supervisor_fixture, "PLUGINs are spawned per entry, "
                                            "in order, with their settings") {
  auto gen = current();
  REQUIRE(gen->plugins);
  REQUIRE(gen->plugins->pre.size() == 2);
  CHECK(gen->plugins->post.empty());
  const auto& pii = gen->plugins->pre[1];
  CHECK(gen->plugins->pre[0].name == "regex");
  CHECK(pii.name == "pii");
  CHECK(pii.path == "middleware.pre_request[1]");
  // Each entry carries its own settings: the second entry's, and the
  // first entry's defaults beside them.
  CHECK(pii.timeout == std::chrono::milliseconds{50});
  CHECK(pii.fail_open);
  CHECK(gen->plugins->pre[0].timeout == plugin_entry{}.timeout);
  CHECK(gen->plugins->pre[0].timeout != pii.timeout);
  CHECK_FALSE(gen->plugins->pre[0].fail_open);
  CHECK(gen->plugins->pre[0].actor);
  CHECK(pii.actor);
}

TEST_CASE_METHOD(plugin_supervisor_fixture, "a PLUGIN that dies is restarted "
                                            "and the new one published") {
  auto before = current()->plugins;
  self->send_exit(before->pre[0].actor, caf::exit_reason::kill);
  run();
  REQUIRE_FALSE(published.empty());
  auto after = published.back()->plugins;
  REQUIRE(after);
  CHECK(after->pre[0].actor);
  CHECK(after->pre[0].actor != before->pre[0].actor);
  CHECK(after->pre[1].actor == before->pre[1].actor);
  CHECK(current()->plugins->pre[0].actor == after->pre[0].actor);
}

TEST_CASE_METHOD(plugin_supervisor_fixture, "a reload keeps PLUGINs whose "
                                            "entry did not change") {
  auto before = current()->plugins;
  auto next = std::make_shared<gateway_config>(*config);
  next->middleware.pre_request[1]
    = plugin_entry_of("pii", "action: redact", "middleware.pre_request[1]");
  self->send(aut, atom::reload_v, gateway_config_ptr{next});
  run();
  auto after = current()->plugins;
  CHECK(after->pre[0].actor == before->pre[0].actor);
  CHECK(after->pre[1].actor != before->pre[1].actor);
  CHECK_FALSE(after->pre[1].fail_open);
}

TEST_CASE("a PLUGIN that ends again within a minute waits before its "
          "restart: 1 s, doubling, at most 30 s") {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  auto never = std::chrono::steady_clock::duration::max();
  CHECK(next_plugin_backoff(never, milliseconds{0}) == milliseconds{0});
  CHECK(next_plugin_backoff(seconds{5}, milliseconds{0}) == seconds{1});
  CHECK(next_plugin_backoff(seconds{5}, seconds{1}) == seconds{2});
  CHECK(next_plugin_backoff(seconds{5}, seconds{16}) == seconds{30});
  CHECK(next_plugin_backoff(seconds{5}, seconds{30}) == seconds{30});
  // Quiet for a minute: at once again.
  CHECK(next_plugin_backoff(seconds{60}, seconds{30}) == milliseconds{0});
}

TEST_CASE_METHOD(plugin_supervisor_fixture, "health shows each PLUGIN, its "
                                            "restarts and its backoff, and "
                                            "the restart budget") {
  auto start = health();
  REQUIRE(start.plugins.size() == 2);
  CHECK(start.plugins[1].stage == "pre");
  CHECK(start.plugins[1].index == 1);
  CHECK(start.plugins[1].name == "pii");
  CHECK(start.plugins[1].entry == "middleware.pre_request[1]");
  CHECK(start.plugins[0].running);
  CHECK(start.generation == 1);
  CHECK(start.restart_budget_left == max_restarts_per_minute);
  CHECK(start.router_answered);
  CHECK(start.partial.empty());
  // Ended once: restarted at once.
  self->send_exit(current()->plugins->pre[0].actor, caf::exit_reason::kill);
  run();
  auto once = health();
  CHECK(once.plugins[0].running);
  CHECK(once.plugins[0].restarts == 1);
  CHECK(once.restarts_last_minute == 1);
  // Ended again: down until its backoff is over.
  self->send_exit(current()->plugins->pre[0].actor, caf::exit_reason::kill);
  run();
  auto twice = health();
  CHECK_FALSE(twice.plugins[0].running);
  CHECK(twice.plugins[0].restarts == 1);
  CHECK_FALSE(twice.plugins[0].down_since.empty());
  CHECK_FALSE(twice.plugins[0].restart_at.empty());
  CHECK_FALSE(current()->plugins->pre[0].actor);
  CHECK(twice.given_up.empty());
  CHECK(twice.restart_budget_left == max_restarts_per_minute - 2);
  // A restart scheduled by another generation is ignored.
  self->send(aut, atom::restart_v, uint64_t{7}, uint64_t{0}, uint64_t{0});
  run();
  CHECK_FALSE(health().plugins[0].running);
  sched.trigger_timeouts();
  run();
  auto back = health();
  CHECK(back.plugins[0].running);
  CHECK(back.plugins[0].restarts == 2);
  CHECK(back.plugins[0].down_since.empty());
  CHECK(back.plugins[0].restart_at.empty());
  CHECK(current()->plugins->pre[0].actor);
}

TEST_CASE_METHOD(supervisor_fixture, "health carries the ROUTER's counts and "
                                     "a reload's generation") {
  resolve("first");
  resolve("second");
  auto h = health();
  CHECK(h.router.resolved == 2);
  CHECK(h.router.refused == 0);
  CHECK(h.router.mailbox == 0);
  self->send(aut, atom::reload_v, gateway_config_ptr{config});
  run();
  auto after = health();
  CHECK(after.generation == 2);
  CHECK(after.router.resolved == 0); // a reload starts a new ROUTER
}
