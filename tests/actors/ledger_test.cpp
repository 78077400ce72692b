// The LEDGER on the deterministic scheduler. It reads the system clock for
// its UTC periods, so the tests assert per-minute counts only where a new
// minute cannot change them; the refusals come from max_concurrent and the
// budget, which no period resets.

#include "actors/ledger.hpp"
#include "core/errc.hpp"
#include "core/policy/usage_ledger.hpp"
#include "core/sha256.hpp"
#include "tests/support/actor_fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <hiredis/hiredis.h>
#include <optional>
#include <string>
#include <vector>

using namespace pw;
using namespace pw::actors;
using namespace pw::test;

namespace {

api_key_config key(const std::string& name, const std::string& team,
                   usage_limits limits) {
  api_key_config k;
  k.key = redacted_string{"sk-" + name};
  k.key_digest = sha256("sk-" + name);
  k.name = name;
  k.allowed_models = {"*"};
  k.team = team;
  k.limits = limits;
  return k;
}

/// gpt's prices: USD 2.50 / 10 / 1.25 per million tokens, in pico-USD per
/// token.
constexpr model_pricing gpt_pricing{2'500'000, 10'000'000, 1'250'000};

model_config_ptr priced(const std::string& alias) {
  auto m = std::make_shared<model_config>(*test_model(alias));
  m->pricing = gpt_pricing;
  return m;
}

/// A request of `client`: 10 prompt tokens and at most 5 output tokens,
/// on the route `models`.
usage_request ask(const std::string& client, const std::string& team = "",
                  std::vector<std::string> models = {"gpt"}) {
  usage_request r;
  r.request_id = "req-" + client;
  r.client = client;
  r.team = team;
  r.models = std::move(models);
  r.prompt_tokens = 10;
  r.max_output = 5;
  return r;
}

/// What 10 prompt and 5 output tokens cost on gpt.
constexpr uint64_t gpt_worst = 10 * 2'500'000 + 5 * 10'000'000;

/// A header's value, "" when absent.
std::string header_of(const usage_grant& g, const std::string& name) {
  for (const auto& h : g.headers)
    if (h.name == name)
      return h.value;
  return {};
}

bool has_header(const usage_grant& g, const std::string& name) {
  return std::any_of(g.headers.begin(), g.headers.end(),
                     [&](const header_field& h) { return h.name == name; });
}

/// A scope of a report, or null.
const scope_usage* scope_in(const usage_report& r, const std::string& name) {
  for (const auto& s : r.scopes)
    if (s.scope == name)
      return &s;
  return nullptr;
}

/// A Redis link that keeps each command for the test to answer.
struct fake_link : redis_link {
  struct sent {
    std::vector<std::string> argv;
    done_fn done;
  };
  std::vector<sent> calls;
  std::vector<std::vector<std::string>> greeting;

  void call(const std::vector<std::string>& argv, done_fn done) override {
    calls.push_back({argv, std::move(done)});
  }

  void close() override { closed = true; }
  bool closed = false;
};

/// The reply Redis would send as `resp` (its wire format).
redis_link::reply_ptr reply_of(const std::string& resp) {
  auto* reader = redisReaderCreate();
  redisReaderFeed(reader, resp.data(), resp.size());
  void* out = nullptr;
  redisReaderGetReply(reader, &out);
  redisReaderFree(reader);
  REQUIRE(out != nullptr);
  return redis_link::reply_ptr{static_cast<redisReply*>(out)};
}

/// How many reservations a batch script call makes.
size_t reservations_in(const std::vector<std::string>& argv) {
  return static_cast<size_t>(std::count(argv.begin(), argv.end(), "r"));
}

struct ledger_fixture : actor_fixture {
  std::shared_ptr<gateway_config> config = std::make_shared<gateway_config>();
  ledger_actor aut;

  ledger_fixture() {
    usage_limits alice;
    alice.requests_per_minute = 2;
    alice.max_concurrent = 2;
    usage_limits dave;
    dave.budget_per_month = 1'000'000; // a millionth of a dollar
    usage_limits erin;
    erin.requests_per_minute = 2;
    config->server.api_keys
      = {key("alice", "red", alice), key("bob", "", {}),
         key("carol", "red", {}), key("dave", "", dave), key("erin", "", erin)};
    usage_limits red;
    red.tokens_per_day = 1'000'000'000;
    config->teams = {team_config{"red", red}};
    config->models = {priced("gpt"), test_model("free")};
    config->routing.default_model = "gpt";
  }

  void start() {
    aut = spawn(ledger, gateway_config_ptr{config}, redis_link_factory{});
    run();
  }

  /// Reserves and returns the grant, or fails the test.
  usage_grant reserve(const usage_request& req) {
    std::optional<usage_grant> out;
    auto h = self->request(aut, caf::infinite, atom::reserve_v, req);
    run();
    h.receive(
      [&](usage_grant& g) { out = std::move(g); },
      [&](caf::error& err) { FAIL("reserve failed: " << message_of(err)); });
    REQUIRE(out);
    return std::move(*out);
  }

  /// Reserves and returns the grant, which must hold.
  usage_grant reserve_ok(const usage_request& req) {
    auto g = reserve(req);
    if (g.refusal)
      FAIL("refused: " << g.refusal->message);
    CHECK(g.hold != 0);
    return g;
  }

  /// Reserves and returns the refusal, which there must be.
  api_error reserve_refused(const usage_request& req) {
    auto g = reserve(req);
    CHECK(g.hold == 0);
    REQUIRE(g.refusal);
    return *g.refusal;
  }

  void settle(uint64_t hold, const std::string& model, token_usage usage,
              bool charge_reservation = false) {
    usage_settlement x;
    x.hold = hold;
    x.model = model;
    x.usage = usage;
    x.charge_reservation = charge_reservation;
    self->send(aut, atom::settle_v, x);
    run();
  }

  usage_report report() {
    std::optional<usage_report> out;
    auto h = self->request(aut, caf::infinite, atom::get_v);
    run();
    h.receive(
      [&](usage_report& r) { out = std::move(r); },
      [&](caf::error& err) { FAIL("get failed: " << message_of(err)); });
    REQUIRE(out);
    return std::move(*out);
  }

  /// The scope's requests in flight, per the LEDGER's report.
  uint64_t in_flight(const std::string& scope) {
    auto r = report();
    const auto* s = scope_in(r, scope);
    REQUIRE(s != nullptr);
    return s->in_flight;
  }
};

} // namespace

TEST_CASE_METHOD(ledger_fixture, "a governed key gets a hold and the "
                                 "x-ratelimit headers, until a limit "
                                 "refuses it") {
  start();
  auto first = reserve_ok(ask("alice", "red"));
  CHECK(header_of(first, "x-ratelimit-limit-requests") == "2");
  CHECK(header_of(first, "x-ratelimit-remaining-requests") == "1");
  CHECK_FALSE(header_of(first, "x-ratelimit-reset-requests").empty());
  // Neither the key nor its team limits tokens per minute.
  CHECK_FALSE(has_header(first, "x-ratelimit-limit-tokens"));
  auto second = reserve_ok(ask("alice", "red"));
  CHECK(second.hold != first.hold);
  CHECK(header_of(second, "x-ratelimit-limit-requests") == "2");
  // "0", or "1" if a new minute started in between.
  auto left = header_of(second, "x-ratelimit-remaining-requests");
  CHECK((left == "0" || left == "1"));
  // Two in flight: max_concurrent refuses the third, whatever the minute.
  auto third = reserve(ask("alice", "red"));
  CHECK(third.hold == 0);
  REQUIRE(third.refusal);
  CHECK(third.refusal->code == errc::rate_limited);
  CHECK(third.refusal->retry_after > 0);
  CHECK(third.refusal->retry_after == 1);
  INFO(third.refusal->message);
  CHECK(third.refusal->message.find("at most 2 at once") != std::string::npos);
  // A refusal carries the headers too.
  CHECK(header_of(third, "x-ratelimit-limit-requests") == "2");
  auto r = report();
  CHECK(r.backend == "embedded");
  CHECK(r.available);
  CHECK(r.reserved == 2);
  CHECK(r.refused == 1);
  CHECK(r.settled == 0);
  const auto* alice = scope_in(r, "key:alice");
  REQUIRE(alice != nullptr);
  CHECK(alice->in_flight == 2);
  CHECK(alice->limits.max_concurrent == 2u);
  const auto* red = scope_in(r, "team:red");
  REQUIRE(red != nullptr);
  CHECK(red->in_flight == 2);
  CHECK(std::is_sorted(r.scopes.begin(), r.scopes.end(),
                       [](const scope_usage& x, const scope_usage& y) {
                         return x.scope < y.scope;
                       }));
}

TEST_CASE_METHOD(ledger_fixture, "requests_per_minute refuses the third "
                                 "request of a minute") {
  start();
  using std::chrono::system_clock;
  auto before = periods_at(system_clock::now()).minute;
  reserve_ok(ask("erin"));
  reserve_ok(ask("erin"));
  auto third = reserve(ask("erin"));
  auto after = periods_at(system_clock::now()).minute;
  if (before != after) {
    WARN("a new minute started during the test: nothing to assert");
    return;
  }
  CHECK(third.hold == 0);
  REQUIRE(third.refusal);
  CHECK(third.refusal->code == errc::rate_limited);
  CHECK(third.refusal->retry_after >= 1);
  CHECK(third.refusal->retry_after <= 60);
  CHECK(third.refusal->message.find("2 requests per minute")
        != std::string::npos);
  CHECK(header_of(third, "x-ratelimit-remaining-requests") == "0");
}

TEST_CASE_METHOD(ledger_fixture, "settling charges the real usage and ends "
                                 "the request in flight") {
  start();
  auto g1 = reserve_ok(ask("alice", "red"));
  auto g2 = reserve_ok(ask("alice", "red"));
  CHECK(in_flight("key:alice") == 2);
  CHECK(in_flight("team:red") == 2);
  // 6 uncached and 4 cached prompt tokens, 5 output tokens.
  settle(g1.hold, "gpt", token_usage{10, 5, 4, true});
  auto r = report();
  CHECK(r.settled == 1);
  CHECK(r.settled_tokens == 15);
  CHECK(r.settled_cost == 6 * 2'500'000 + 4 * 1'250'000 + 5 * 10'000'000);
  REQUIRE(scope_in(r, "key:alice") != nullptr);
  CHECK(scope_in(r, "key:alice")->in_flight == 1);
  REQUIRE(scope_in(r, "team:red") != nullptr);
  CHECK(scope_in(r, "team:red")->in_flight == 1);
  // An answer without usage is charged its whole reservation.
  settle(g2.hold, "gpt", token_usage{}, true);
  r = report();
  CHECK(r.settled == 2);
  CHECK(r.settled_tokens == 15 + 15);
  CHECK(r.settled_cost == 70'000'000 + gpt_worst);
  CHECK(scope_in(r, "key:alice")->in_flight == 0);
  CHECK(scope_in(r, "team:red")->in_flight == 0);
  // A hold settles once; an unknown one not at all.
  settle(g1.hold, "gpt", token_usage{10, 5, 0, true});
  settle(12345, "gpt", token_usage{10, 5, 0, true});
  r = report();
  CHECK(r.settled == 2);
  CHECK(r.settled_tokens == 30);
  CHECK(scope_in(r, "key:alice")->in_flight == 0);
}

TEST_CASE_METHOD(ledger_fixture, "a hold whose settlement never comes ends "
                                 "after its request's deadline, charged "
                                 "whole") {
  start();
  // The SESSION died before the grant reached it: no settlement comes.
  auto g = reserve_ok(ask("alice", "red"));
  CHECK(in_flight("key:alice") == 1);
  // Deadline (0 here) plus a minute of grace; the sweep runs every 10 s.
  for (int i = 0; i < 5; ++i) {
    sched.advance_time(std::chrono::seconds{10});
    run();
  }
  CHECK(in_flight("key:alice") == 1);
  for (int i = 0; i < 3; ++i) {
    sched.advance_time(std::chrono::seconds{10});
    run();
  }
  auto r = report();
  REQUIRE(scope_in(r, "key:alice") != nullptr);
  CHECK(scope_in(r, "key:alice")->in_flight == 0);
  CHECK(scope_in(r, "team:red")->in_flight == 0);
  CHECK(scope_in(r, "key:alice")->day_tokens == 15);
  // A settlement that comes after all finds nothing to settle.
  settle(g.hold, "gpt", token_usage{1, 1, 0, true});
  CHECK(report().settled == 0);
}

TEST_CASE_METHOD(ledger_fixture, "a request no model answered is charged "
                                 "nothing") {
  start();
  // carol has no limits of her own: only her team's apply.
  auto g = reserve_ok(ask("carol", "red"));
  CHECK(g.headers.empty()); // the team has no per-minute limit
  CHECK(in_flight("team:red") == 1);
  settle(g.hold, "", token_usage{100, 100, 0, true});
  auto r = report();
  CHECK(r.settled == 1);
  CHECK(r.settled_tokens == 0);
  CHECK(r.settled_cost == 0);
  CHECK(scope_in(r, "key:carol") == nullptr);
  REQUIRE(scope_in(r, "team:red") != nullptr);
  CHECK(scope_in(r, "team:red")->in_flight == 0);
}

TEST_CASE_METHOD(ledger_fixture, "a key without limits gets no hold and no "
                                 "headers") {
  start();
  auto g = reserve(ask("bob"));
  CHECK(g.hold == 0);
  CHECK_FALSE(g.refusal);
  CHECK(g.headers.empty());
  // Nor does a client the config does not know.
  auto ghost = reserve(ask("ghost", "nowhere"));
  CHECK(ghost.hold == 0);
  CHECK_FALSE(ghost.refusal);
  auto r = report();
  CHECK(r.reserved == 0);
  CHECK(r.refused == 0);
  CHECK(scope_in(r, "key:bob") == nullptr);
  CHECK(scope_in(r, "key:ghost") == nullptr);
}

TEST_CASE_METHOD(ledger_fixture, "an update changes the limits and keeps the "
                                 "counters") {
  start();
  auto g1 = reserve_ok(ask("alice", "red"));
  reserve_ok(ask("alice", "red"));
  CHECK(reserve_refused(ask("alice", "red")).code == errc::rate_limited);
  auto next = std::make_shared<gateway_config>(*config);
  next->server.api_keys[0].limits.requests_per_minute = 100;
  next->server.api_keys[0].limits.max_concurrent = 3;
  self->send(aut, atom::update_v, gateway_config_ptr{next});
  run();
  auto r = report();
  const auto* alice = scope_in(r, "key:alice");
  REQUIRE(alice != nullptr);
  CHECK(alice->limits.max_concurrent == 3u);
  CHECK(alice->limits.requests_per_minute == 100u);
  CHECK(alice->in_flight == 2); // the counters stayed
  CHECK(r.reserved == 2);
  CHECK(r.refused == 1);
  auto third = reserve_ok(ask("alice", "red"));
  CHECK(header_of(third, "x-ratelimit-limit-requests") == "100");
  CHECK(in_flight("key:alice") == 3);
  CHECK(reserve_refused(ask("alice", "red")).code == errc::rate_limited);
  // A hold made under the old config settles under the new one.
  settle(g1.hold, "gpt", token_usage{10, 5, 0, true});
  CHECK(in_flight("key:alice") == 2);
  CHECK(report().settled == 1);
}

TEST_CASE_METHOD(ledger_fixture, "a budget refusal is a quota, priced at the "
                                 "dearest model of the route") {
  start();
  auto err = reserve_refused(ask("dave", "", {"gpt"}));
  CHECK(err.code == errc::quota_exceeded);
  CHECK(err.retry_after > 0);
  INFO(err.message);
  // Its worst case alone exceeds the budget.
  CHECK(err.message.find("lower max_tokens") != std::string::npos);
  // A model without pricing costs nothing against the budget.
  auto unpriced = reserve_ok(ask("dave", "", {"free"}));
  CHECK(unpriced.headers.empty()); // no per-minute limit
  CHECK(reserve_refused(ask("dave", "", {"free", "gpt"})).code
        == errc::quota_exceeded);
  auto r = report();
  CHECK(r.reserved == 1);
  CHECK(r.refused == 2);
  REQUIRE(scope_in(r, "key:dave") != nullptr);
  CHECK(scope_in(r, "key:dave")->in_flight == 1);
  CHECK(scope_in(r, "key:dave")->limits.budget_per_month == 1'000'000u);
}

TEST_CASE_METHOD(ledger_fixture, "with Redis, reservations that come while "
                                 "a batch is out go as the next batch, and "
                                 "a batch without an answer is refused as "
                                 "on_unavailable says") {
  config->state.backend = state_backend::redis;
  auto link = std::make_shared<fake_link>();
  aut = spawn(ledger, gateway_config_ptr{config},
              redis_link_factory{[link](const redis_config&, auto greeting) {
                link->greeting = std::move(greeting);
                return link;
              }});
  run();
  // Each new connection loads both scripts before any call.
  REQUIRE(link->greeting.size() == 2);
  CHECK(link->greeting[0][0] == "SCRIPT");
  CHECK(link->calls.empty());
  auto first
    = self->request(aut, caf::infinite, atom::reserve_v, ask("alice", "red"));
  run();
  REQUIRE(link->calls.size() == 1);
  CHECK(link->calls[0].argv[0] == "EVALSHA");
  CHECK(reservations_in(link->calls[0].argv) == 1);
  // Three more while the first batch is out: they wait for its answer.
  std::vector<decltype(first)> more;
  for (const auto* client : {"alice", "erin", "dave"})
    more.push_back(
      self->request(aut, caf::infinite, atom::reserve_v, ask(client, "red")));
  run();
  CHECK(link->calls.size() == 1);
  // Granted: alice's key and her team (two scopes), one request and 15
  // tokens this minute in each.
  link->calls[0].done(reply_of("*5\r\n:1\r\n:1\r\n:15\r\n:1\r\n:15\r\n"), "");
  run();
  first.receive(
    [&](usage_grant& g) {
      CHECK(g.hold != 0);
      CHECK_FALSE(g.refusal);
      CHECK(header_of(g, "x-ratelimit-limit-requests") == "2");
      CHECK(header_of(g, "x-ratelimit-remaining-requests") == "1");
    },
    [&](caf::error& err) { FAIL(message_of(err)); });
  // The answer sent the three as one batch.
  REQUIRE(link->calls.size() == 2);
  CHECK(reservations_in(link->calls[1].argv) == 3);
  // Redis does not answer it: each is refused (deny, the default).
  link->calls[1].done(nullptr, "Redis did not answer within 250 ms");
  run();
  for (auto& h : more)
    h.receive(
      [&](usage_grant& g) {
        CHECK(g.hold == 0);
        REQUIRE(g.refusal);
        CHECK(g.refusal->code == errc::usage_unavailable);
        CHECK(g.refusal->retry_after == 1);
      },
      [&](caf::error& err) { FAIL(message_of(err)); });
  // The LEDGER's status says so, for /health/ready.
  auto status = self->request(aut, caf::infinite, atom::status_v);
  run();
  status.receive(
    [&](usage_report& r) {
      CHECK(r.backend == "redis");
      CHECK_FALSE(r.available);
      CHECK(r.unavailable == 3);
      CHECK(r.reserved == 1);
    },
    [&](caf::error& err) { FAIL(message_of(err)); });
  // An answer to a batch the LEDGER does not wait for changes nothing:
  // the next reservation still goes out at once.
  auto stray = std::make_shared<redis_batch>();
  stray->id = 999;
  self->send(aut, atom::exchanged_v, stray);
  run();
  CHECK(link->calls.size() == 2);
  self->request(aut, caf::infinite, atom::reserve_v, ask("erin"));
  run();
  CHECK(link->calls.size() == 3);
  // The answered calls hold the LEDGER's handle: let them go.
  link->calls.clear();
  // A LEDGER that ends closes its link.
  CHECK_FALSE(link->closed);
  self->send_exit(aut, caf::exit_reason::user_shutdown);
  run();
  CHECK(link->closed);
}
