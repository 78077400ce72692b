// The MODEL on the deterministic scheduler: breaker transitions through
// real admissions and outcomes, the single half-open probe, the health loop
// on the simulated clock, and the admission limit.

#include "actors/model.hpp"
#include "adapters/azure/provider.hpp"
#include "tests/support/actor_fixture.hpp"

#include <catch2/catch.hpp>

#include <deque>

using namespace pw;
using namespace pw::actors;
using namespace pw::test;
using namespace std::chrono_literals;

namespace {

struct model_fixture : actor_fixture {
  health_config health;
  model_config_ptr settings = test_model("gpt");
  /// Health checks the MODEL asked the io thread for, and how to answer.
  std::vector<upstream_request> checks;
  upstream_done answer_check;
  model_actor aut;

  model_fixture() {
    health.unhealthy_threshold = 2;
    health.healthy_threshold = 1;
    health.cooldown = seconds_d{30};
    health.check_interval = seconds_d{0};
  }

  ~model_fixture() override {
    // Stop the MODEL before the members its check function writes to go.
    self->send_exit(aut, caf::exit_reason::kill);
    run();
  }

  /// Moves the simulated clock and runs what became due.
  void advance(caf::timespan d) {
    sched.advance_time(d);
    run();
  }

  void start(model_config_ptr cfg = nullptr) {
    upstream_fn check = [this](upstream_request r, upstream_done done) {
      checks.push_back(std::move(r));
      answer_check = std::move(done);
    };
    aut = spawn(model, cfg ? cfg : settings, health, check);
    run();
  }

  /// Asks for admission for a request with `ttl_ms` left; an admitted
  /// call's lease waits in `open` for its outcome.
  admission admit(int64_t ttl_ms = 60'000) {
    admission out;
    auto h
      = self->request(aut, caf::infinite, atom::admit_v, admit_request{ttl_ms});
    run();
    h.receive([&](admission& a) { out = std::move(a); },
              [&](caf::error& err) { FAIL(caf::to_string(err)); });
    if (out.admitted)
      open.push_back(out.lease);
    return out;
  }

  /// Reports the outcome of the oldest admitted call.
  void outcome(call_result r) {
    REQUIRE_FALSE(open.empty());
    outcome_for(open.front(), r);
    open.pop_front();
  }

  void outcome_for(uint64_t lease, call_result r) {
    self->send(aut, atom::outcome_v, call_outcome{r, 500, 1000, "x", lease});
    run();
  }

  std::deque<uint64_t> open;

  model_status status() {
    model_status out;
    auto h = self->request(aut, caf::infinite, atom::status_v);
    run();
    h.receive([&](model_status& s) { out = std::move(s); },
              [&](caf::error& err) { FAIL(caf::to_string(err)); });
    return out;
  }

  void answer(unsigned status) {
    REQUIRE(answer_check);
    upstream_result r;
    r.status = status;
    answer_check(std::move(r));
    run();
  }
};

} // namespace

TEST_CASE_METHOD(model_fixture, "failures open the breaker, open refuses "
                                "with the time to retry") {
  start();
  CHECK(admit().admitted);
  outcome(call_result::failure);
  CHECK(admit().admitted);
  outcome(call_result::failure);
  CHECK(status().circuit == "open");
  auto refused = admit();
  CHECK_FALSE(refused.admitted);
  CHECK(refused.reason == "circuit open");
  CHECK(refused.retry_after_ms == 30'000);
  advance(10s);
  CHECK(admit().retry_after_ms == 20'000);
}

TEST_CASE_METHOD(model_fixture, "client errors and cancellations never open "
                                "the breaker") {
  start();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(admit().admitted);
    outcome(i % 2 == 0 ? call_result::rejected : call_result::cancelled);
  }
  auto s = status();
  CHECK(s.circuit == "closed");
  CHECK(s.rejected == 3);
  CHECK(s.cancelled == 2);
  CHECK(s.in_flight == 0);
}

TEST_CASE_METHOD(model_fixture, "half-open admits exactly one probe, its "
                                "outcome decides") {
  start();
  for (int i = 0; i < 2; ++i) {
    admit();
    outcome(call_result::failure);
  }
  advance(30s);
  CHECK(status().circuit == "half_open");
  auto probe = admit();
  REQUIRE(probe.admitted);
  CHECK(probe.probe);
  CHECK_FALSE(admit().admitted); // the single probe slot is taken
  SECTION("the probe succeeds") {
    outcome(call_result::success);
    CHECK(status().circuit == "closed");
    CHECK(admit().admitted);
    CHECK(admit().admitted);
  }
  SECTION("the probe fails: a fresh cooldown") {
    outcome(call_result::failure);
    CHECK(status().circuit == "open");
    advance(29s);
    CHECK_FALSE(admit().admitted);
    advance(1s);
    CHECK(admit().admitted);
  }
}

TEST_CASE_METHOD(model_fixture, "the health loop checks on the clock and a "
                                "success closes an open breaker") {
  health.check_interval = seconds_d{10};
  start();
  REQUIRE(checks.size() == 1); // the first check runs at start
  CHECK(checks[0].method == "GET");
  CHECK(checks[0].path == "/v1/models");
  answer(503);
  CHECK(status().last_check_ok == false);
  CHECK(status().last_check_error == "HTTP 503");
  advance(10s);
  REQUIRE(checks.size() == 2);
  answer(503);
  CHECK(status().circuit == "open");
  advance(10s);
  REQUIRE(checks.size() == 3);
  answer(200);
  auto s = status();
  CHECK(s.circuit == "closed");
  CHECK(s.last_check_ok);
  CHECK_FALSE(s.last_check.empty());
  CHECK(admit().admitted);
  // A check still running when the timer fires is not doubled.
  advance(10s);
  advance(10s);
  CHECK(checks.size() == 4);
}

TEST_CASE_METHOD(model_fixture, "max_concurrent bounds the calls in flight") {
  auto limited = std::make_shared<model_config>(*settings);
  limited->max_concurrent = 2;
  start(limited);
  CHECK(admit().admitted);
  CHECK(admit().admitted);
  auto full = admit();
  CHECK_FALSE(full.admitted);
  CHECK(full.reason == "at max_concurrent");
  outcome(call_result::success);
  CHECK(admit().admitted);
  CHECK(status().in_flight == 2);
}

TEST_CASE_METHOD(model_fixture, "an admission whose outcome never comes is "
                                "taken back after its request's deadline") {
  start();
  REQUIRE(admit(1000).admitted);
  CHECK(status().in_flight == 1);
  // The request had 1 s; the lease waits 10 s more for a late outcome.
  advance(10s);
  CHECK(status().in_flight == 1);
  advance(2s);
  auto s = status();
  CHECK(s.in_flight == 0);
  CHECK(s.cancelled == 1);
  // An outcome for the lease taken back changes nothing.
  outcome_for(open.front(), call_result::failure);
  CHECK(status().failures == 0);
  CHECK(status().circuit == "closed");
}

TEST_CASE_METHOD(model_fixture, "a lost half-open probe is taken back: the "
                                "model probes again") {
  start();
  for (int i = 0; i < 2; ++i) {
    admit();
    outcome(call_result::failure);
  }
  advance(30s);
  auto probe = admit(500);
  REQUIRE(probe.admitted);
  CHECK(probe.probe);
  // Its holder is gone: no outcome ever comes.
  CHECK_FALSE(admit().admitted);
  advance(11s);
  auto again = admit();
  CHECK(again.admitted);
  CHECK(again.probe);
}

namespace {

/// An Azure model that authenticates with Entra ID client credentials.
model_config_ptr entra_model() {
  auto m = std::make_shared<model_config>(*test_model("az"));
  m->provider = "azure";
  auto o = std::make_shared<adapters::azure::azure_options>();
  o->deployment = "gpt4o";
  o->entra = true;
  o->tenant_id = "t1";
  o->client_id = "c1";
  o->client_secret = redacted_string{"client-secret-1"};
  std::string why;
  o->authority = *parse_base_url("http://127.0.0.1:9", why);
  m->options = o;
  return m;
}

upstream_result token_answer(unsigned status, std::string body) {
  upstream_result r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

/// The value of header `name` in `r`, or "".
std::string header_of(const upstream_request& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (h.name == name)
      return h.value;
  return {};
}

} // namespace

TEST_CASE_METHOD(model_fixture, "a MODEL fetches its token before its first "
                                "health check, hands it out, renews it ahead "
                                "of its expiry and retries a failed fetch") {
  health.check_interval = seconds_d{100'000};
  start(entra_model());
  // atom::renew first: the token request, and no health check before it.
  REQUIRE(checks.size() == 1);
  CHECK(checks[0].path == "/t1/oauth2/v2.0/token");
  CHECK(checks[0].body.find("client_secret=client-secret-1")
        != std::string::npos);
  auto before = admit();
  CHECK(before.admitted);
  CHECK(before.credential_error == "not fetched yet");
  outcome(call_result::cancelled);
  // atom::renewed with a token: handed out, and the health loop starts.
  answer_check(
    token_answer(200, R"({"access_token":"tok-1","expires_in":3600})"));
  run();
  REQUIRE(checks.size() == 2);
  CHECK(checks[1].method == "GET");
  CHECK(header_of(checks[1], "Authorization") == "Bearer tok-1");
  answer_check(token_answer(200, "{}"));
  run();
  auto with = admit();
  CHECK(with.credential_error.empty());
  CHECK(with.settings->access_token.reveal() == "tok-1");
  outcome(call_result::success);
  // Renewed 5 minutes before it ends; a refusal keeps the valid token.
  advance(3299s);
  CHECK(checks.size() == 2);
  advance(1s);
  REQUIRE(checks.size() == 3);
  CHECK(checks[2].path == "/t1/oauth2/v2.0/token");
  answer_check(token_answer(
    401, R"({"error":"invalid_client","error_description":"AADSTS7000215"})"));
  run();
  auto still = admit();
  CHECK(still.credential_error.empty());
  outcome(call_result::success);
  // The retry comes after 1 s, then 2 s.
  advance(1s);
  REQUIRE(checks.size() == 4);
  answer_check(token_answer(401, R"({"error":"invalid_client"})"));
  run();
  advance(1s);
  CHECK(checks.size() == 4);
  advance(1s);
  REQUIRE(checks.size() == 5);
  answer_check(token_answer(401, R"({"error":"invalid_client"})"));
  run();
  // Past the token's end, admissions say why there is none.
  advance(300s);
  auto after = admit();
  CHECK(after.credential_error.find("HTTP 401") != std::string::npos);
  CHECK(after.credential_error.find("invalid_client") != std::string::npos);
  CHECK(after.credential_error.find("client-secret-1") == std::string::npos);
}
