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

  /// Resolves and returns the decision, or fails the test.
  route_decision resolve_ok(const std::string& model, uint64_t key_index = 0) {
    std::optional<route_decision> out;
    auto h
      = self->request(aut, caf::infinite, atom::resolve_v,
                      resolve_request{"r",
                                      60000,
                                      config->server.api_keys[key_index].name,
                                      key_index,
                                      model,
                                      {}});
    run();
    h.receive(
      [&](route_decision& d) { out = std::move(d); },
      [&](caf::error& err) { FAIL("resolve failed: " << message_of(err)); });
    REQUIRE(out);
    return std::move(*out);
  }

  /// Resolves and returns the error, or fails the test.
  caf::error resolve_err(const std::string& model, uint64_t key_index = 0) {
    caf::error out;
    auto h
      = self->request(aut, caf::infinite, atom::resolve_v,
                      resolve_request{"r",
                                      60000,
                                      config->server.api_keys[key_index].name,
                                      key_index,
                                      model,
                                      {}});
    run();
    h.receive([&](route_decision& d) { FAIL("resolved to " << d.alias); },
              [&](caf::error& err) { out = std::move(err); });
    REQUIRE(out);
    return out;
  }
};

} // namespace

TEST_CASE_METHOD(router_fixture, "an explicit model resolves to itself with "
                                 "the rest of its chain") {
  start();
  auto d = resolve_ok("gpt");
  CHECK(d.alias == "gpt");
  CHECK(d.settings->model == "upstream-gpt");
  REQUIRE(d.remaining.size() == 1);
  CHECK(d.remaining[0].alias == "llama");
  CHECK(logs["gpt"]->admits == 1);
  CHECK(logs["claude"]->admits == 0);
}

TEST_CASE_METHOD(router_fixture, "no model resolves to the default model") {
  start();
  auto d = resolve_ok("");
  CHECK(d.alias == "claude");
  CHECK(d.remaining.size() == 2);
}

TEST_CASE_METHOD(router_fixture, "a chain name resolves to its first member") {
  start();
  CHECK(resolve_ok("main").alias == "claude");
}

TEST_CASE_METHOD(router_fixture, "a refusing MODEL is skipped for the next "
                                 "candidate") {
  start();
  logs["claude"]->admit = false;
  auto d = resolve_ok("claude");
  CHECK(d.alias == "gpt");
  CHECK(logs["claude"]->admits == 1);
  logs["gpt"]->admit = false;
  logs["llama"]->admit = false;
  auto err = resolve_err("claude");
  CHECK(code_of(err) == errc::no_model_available);
  CHECK(retry_after_of(err) >= 1);
}

TEST_CASE_METHOD(router_fixture, "the key's allowlist applies") {
  start();
  CHECK(code_of(resolve_err("gpt", 1)) == errc::model_not_allowed);
  auto d = resolve_ok("", 1);
  CHECK(d.alias == "llama");
  CHECK(logs["claude"]->admits == 0);
  CHECK(code_of(resolve_err("nonexistent", 1)) == errc::model_not_found);
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
  CHECK(logs["gpt"]->admits == 2);
  // Another client has its own window.
  CHECK(resolve_ok("llama", 1).alias == "llama");
  sched.advance_time(std::chrono::seconds{10});
  CHECK(resolve_ok("gpt").alias == "gpt");
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
  CHECK(resolve_ok("llama", 1).alias == "llama");
}

TEST_CASE_METHOD(router_fixture, "an update replaces a MODEL's handle") {
  start();
  auto log = std::make_shared<mock_model_log>();
  auto replacement = spawn(mock_model, config->models[1], log);
  self->send(aut, atom::update_v, std::string{"gpt"}, replacement);
  run();
  resolve_ok("gpt");
  CHECK(log->admits == 1);
  CHECK(logs["gpt"]->admits == 0);
}
