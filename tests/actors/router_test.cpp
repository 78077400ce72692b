// The ROUTER on the deterministic scheduler, against mock MODELs.

#include "actors/router.hpp"
#include "core/errc.hpp"
#include "core/sha256.hpp"
#include "tests/actors/mock_model.hpp"
#include "tests/support/actor_fixture.hpp"

#include <catch2/catch.hpp>

using namespace pw;
using namespace pw::actors;
using namespace pw::test;

namespace {

api_key_config key(const std::string& name, std::vector<std::string> allowed) {
  api_key_config k;
  k.key = redacted_string{"sk-" + name};
  k.key_digest = sha256("sk-" + name);
  k.name = name;
  k.allowed_models = std::move(allowed);
  return k;
}

struct router_fixture : actor_fixture {
  std::shared_ptr<gateway_config> config = std::make_shared<gateway_config>();
  std::map<std::string, std::shared_ptr<mock_model_log>> logs;
  router_actor aut;

  router_fixture() {
    config->server.api_keys = {key("full", {"*"}), key("local", {"llama"})};
    for (const auto* alias : {"claude", "gpt", "llama"})
      config->models.push_back(test_model(alias));
    config->routing.default_model = "claude";
    config->routing.fallback_chains = {{"main", {"claude", "gpt", "llama"}}};
  }

  void start() {
    std::vector<std::pair<std::string, model_actor>> models;
    for (const auto& m : config->models) {
      auto log = std::make_shared<mock_model_log>();
      logs[m->alias] = log;
      models.emplace_back(m->alias, spawn(mock_model, m, log));
    }
    aut = spawn(router, gateway_config_ptr{config}, models, router_actor{});
    run();
  }

  resolve_request request(const std::string& model, uint64_t key_index) {
    return {"r", config->server.api_keys[key_index].name, key_index, model, {}};
  }

  /// Resolves and returns the plan, or fails the test.
  route_plan resolve_ok(const std::string& model, uint64_t key_index = 0) {
    std::optional<route_plan> out;
    auto h = self->request(aut, caf::infinite, atom::resolve_v,
                           request(model, key_index));
    run();
    h.receive(
      [&](route_plan& p) { out = std::move(p); },
      [&](caf::error& err) { FAIL("resolve failed: " << message_of(err)); });
    REQUIRE(out);
    return std::move(*out);
  }

  /// Resolves and returns the error, or fails the test.
  caf::error resolve_err(const std::string& model, uint64_t key_index = 0) {
    caf::error out;
    auto h = self->request(aut, caf::infinite, atom::resolve_v,
                           request(model, key_index));
    run();
    h.receive([&](route_plan& p) { FAIL("resolved to " << p.reason); },
              [&](caf::error& err) { out = std::move(err); });
    REQUIRE(out);
    return out;
  }

  /// The ROUTER asks no MODEL anything: admission is the SESSION's.
  size_t admissions_asked() {
    size_t n = 0;
    for (const auto& [alias, log] : logs)
      n += log->admits;
    return n;
  }
};

std::vector<std::string> aliases(const route_plan& p) {
  std::vector<std::string> out;
  for (const auto& c : p.candidates)
    out.push_back(c.alias);
  return out;
}

} // namespace

TEST_CASE_METHOD(router_fixture, "an explicit model resolves to itself and "
                                 "the rest of its chain, asking no MODEL") {
  start();
  auto p = resolve_ok("gpt");
  CHECK(aliases(p) == std::vector<std::string>{"gpt", "llama"});
  CHECK(p.reason == "model:gpt");
  CHECK(admissions_asked() == 0);
}

TEST_CASE_METHOD(router_fixture, "no model resolves to the default model's "
                                 "chain") {
  start();
  CHECK(aliases(resolve_ok(""))
        == std::vector<std::string>{"claude", "gpt", "llama"});
}

TEST_CASE_METHOD(router_fixture, "a chain name resolves to its members") {
  start();
  auto p = resolve_ok("main");
  CHECK(aliases(p) == std::vector<std::string>{"claude", "gpt", "llama"});
}

TEST_CASE_METHOD(router_fixture, "a refusing MODEL is still a candidate: "
                                 "the SESSION finds out") {
  start();
  logs["claude"]->admit = false;
  CHECK(aliases(resolve_ok("claude")).front() == "claude");
  CHECK(admissions_asked() == 0);
}

TEST_CASE_METHOD(router_fixture, "the key's allowlist applies") {
  start();
  CHECK(code_of(resolve_err("gpt", 1)) == errc::model_not_allowed);
  CHECK(aliases(resolve_ok("", 1)) == std::vector<std::string>{"llama"});
  CHECK(code_of(resolve_err("nonexistent", 1)) == errc::model_not_found);
}

TEST_CASE_METHOD(router_fixture, "a key index past the configured keys is "
                                 "refused") {
  start();
  auto h = self->request(aut, caf::infinite, atom::resolve_v,
                         resolve_request{"r", "ghost", 7, "gpt", {}});
  run();
  caf::error err;
  h.receive([&](route_plan&) { FAIL("resolved"); },
            [&](caf::error& e) { err = std::move(e); });
  CHECK(code_of(err) == errc::invalid_api_key);
}

TEST_CASE_METHOD(router_fixture, "the rate limit refuses with Retry-After and "
                                 "recovers when the window moves") {
  config->rate_limit.enabled = true;
  config->rate_limit.max_requests = 2;
  config->rate_limit.window = seconds_d{10};
  start();
  resolve_ok("gpt");
  resolve_ok("gpt");
  auto err = resolve_err("gpt");
  CHECK(code_of(err) == errc::rate_limited);
  CHECK(retry_after_of(err) == 10);
  // Another client has its own window.
  CHECK(aliases(resolve_ok("llama", 1)).front() == "llama");
  sched.advance_time(std::chrono::seconds{10});
  CHECK(aliases(resolve_ok("gpt")).front() == "gpt");
}

TEST_CASE_METHOD(router_fixture, "a ROUTER that replaces another takes over "
                                 "its rate-limit windows") {
  config->rate_limit.enabled = true;
  config->rate_limit.max_requests = 2;
  config->rate_limit.window = seconds_d{60};
  start();
  resolve_ok("gpt");
  resolve_ok("gpt");
  // A reload: the new ROUTER starts with the old one as its predecessor.
  std::vector<std::pair<std::string, model_actor>> models;
  for (const auto& m : config->models)
    models.emplace_back(
      m->alias, spawn(mock_model, m, std::make_shared<mock_model_log>()));
  aut = spawn(router, gateway_config_ptr{config}, models, aut);
  run();
  auto err = resolve_err("gpt");
  CHECK(code_of(err) == errc::rate_limited);
  CHECK(retry_after_of(err) == 60);
  // The other client never used its window.
  CHECK(aliases(resolve_ok("llama", 1)).front() == "llama");
}

TEST_CASE_METHOD(router_fixture, "an update replaces a MODEL's handle") {
  start();
  auto log = std::make_shared<mock_model_log>();
  auto replacement = spawn(mock_model, config->models[1], log);
  self->send(aut, atom::update_v, std::string{"gpt"}, replacement);
  run();
  auto p = resolve_ok("gpt");
  REQUIRE(p.candidates.size() == 2);
  CHECK(p.candidates[0].model == replacement);
  CHECK(p.candidates[1].model != replacement);
}
