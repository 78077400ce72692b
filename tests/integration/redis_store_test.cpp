// The Redis backend against the embedded ledger: the same batches of
// settlements and reservations, at the same simulated times, go to a real
// redis-server (through actors/redis_store.hpp and its Lua script) and to
// core/policy/usage_ledger.hpp; every answer and every counter must agree.

#include "actors/redis_store.hpp"
#include "core/policy/usage_ledger.hpp"
#include "tests/support/service_process.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace pw;
using namespace pw::actors;
using namespace std::chrono;

namespace {

struct open_hold {
  ledger_hold embedded;
  ledger_hold shared;
  std::string id;
};

void check_same(const ledger_answer& want, const ledger_answer& got) {
  REQUIRE(want.hold.has_value() == got.hold.has_value());
  REQUIRE(want.refusal.has_value() == got.refusal.has_value());
  if (want.refusal) {
    const auto& w = *want.refusal;
    const auto& g = *got.refusal;
    CHECK(to_string(w.kind) == to_string(g.kind));
    CHECK(w.scope == g.scope);
    CHECK(w.limit == g.limit);
    CHECK(w.wanted == g.wanted);
    CHECK(w.left == g.left);
    CHECK(w.never == g.never);
    CHECK(w.retry_after_s == g.retry_after_s);
    CHECK(w.message() == g.message());
    return;
  }
  CHECK(want.hold->scopes == got.hold->scopes);
  CHECK(want.hold->reserved == got.hold->reserved);
  CHECK(want.view.limit_requests == got.view.limit_requests);
  CHECK(want.view.remaining_requests == got.view.remaining_requests);
  CHECK(want.view.limit_tokens == got.view.limit_tokens);
  CHECK(want.view.remaining_tokens == got.view.remaining_tokens);
  CHECK(want.view.reset_ms == got.view.reset_ms);
}

} // namespace

TEST_CASE("the Redis backend answers every reservation and keeps every "
          "counter as the embedded ledger does, across minutes, a day and "
          "a month",
          "[integration][governance][redis]") {
  auto redis = pw::test::start_redis();
  redis_config cfg;
  cfg.port = redis.port();
  cfg.key_prefix = "differential";
  cfg.timeout = 2000ms;
  redis_store shared{cfg};
  usage_ledger book;

  usage_limits a;
  a.max_concurrent = 4;
  a.requests_per_minute = 7;
  a.tokens_per_minute = 1500;
  a.tokens_per_day = 9000;
  usage_limits b;
  b.tokens_per_minute = 900;
  b.budget_per_month = 150000;
  usage_limits team;
  team.requests_per_minute = 11;
  team.max_concurrent = 6;
  team.tokens_per_month = 5000;
  const std::vector<std::vector<ledger_scope>> routes = {
    {{"key:a", &a}},
    {{"key:a", &a}, {"team:t", &team}},
    {{"key:b", &b}, {"team:t", &team}},
    {{"key:b", &b}},
  };

  std::mt19937 rng{20261206};
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(rng);
  };
  // 2027-01-31 23:40:00 UTC: the run crosses minutes, then midnight, which
  // starts a day and a month at once.
  auto t = system_clock::time_point{seconds{1801438800}};
  std::vector<open_hold> open;
  uint64_t ids = 0;
  std::map<std::string, int> refused_by;
  int granted = 0;
  for (int round = 0; round < 400; ++round) {
    auto now = periods_at(t);
    std::vector<redis_settlement> settlements;
    for (int n = pick(0, std::min<int>(3, static_cast<int>(open.size())));
         n > 0; --n) {
      auto i = static_cast<size_t>(pick(0, static_cast<int>(open.size()) - 1));
      usage_amount actual{static_cast<uint64_t>(pick(0, 400)),
                          static_cast<uint64_t>(pick(0, 4000))};
      book.settle(open[i].embedded, actual, now);
      settlements.push_back({open[i].shared, open[i].id, actual});
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
    }
    std::vector<redis_reservation> reservations;
    std::vector<ledger_answer> expected;
    for (int n = pick(0, 4); n > 0; --n) {
      const auto& route = routes[static_cast<size_t>(pick(0, 3))];
      usage_amount worst{static_cast<uint64_t>(pick(1, 300)),
                         static_cast<uint64_t>(pick(0, 3000))};
      expected.push_back(book.reserve(route, worst, now));
      auto id = "h" + std::to_string(++ids);
      auto expires
        = duration_cast<milliseconds>((t + hours{24}).time_since_epoch())
            .count();
      reservations.push_back({route, worst, id, expires});
    }
    auto got = shared.exchange(settlements, reservations, t);
    INFO("round " << round);
    REQUIRE(got.why.empty());
    REQUIRE(got.settlements_failed == 0);
    for (size_t i = 0; i < expected.size(); ++i) {
      REQUIRE(got.answers[i].has_value());
      check_same(expected[i], *got.answers[i]);
      if (expected[i].refusal) {
        ++refused_by[std::string{to_string(expected[i].refusal->kind)}];
      } else {
        ++granted;
        open.push_back(
          {*expected[i].hold, *got.answers[i]->hold, reservations[i].hold_id});
      }
    }
    for (const auto* scope : {"key:a", "key:b", "team:t"}) {
      INFO(scope);
      std::string why;
      auto read = shared.read(scope, now, why);
      REQUIRE(read.has_value());
      scope_counters want;
      if (const auto* c = book.find(scope))
        want = *c;
      want.roll(now);
      CHECK(read->in_flight == want.in_flight);
      CHECK(read->minute_requests == want.minute_requests);
      CHECK(read->minute_tokens == want.minute_tokens);
      CHECK(read->day_tokens == want.day_tokens);
      CHECK(read->month_tokens == want.month_tokens);
      CHECK(read->month_cost == want.month_cost);
    }
    t += seconds{pick(0, 12)};
  }
  // The run went through every kind of refusal, and past midnight.
  INFO(granted << " granted");
  CHECK(granted > 100);
  for (const auto* kind :
       {"max_concurrent", "requests_per_minute", "tokens_per_minute",
        "tokens_per_day", "tokens_per_month", "budget_usd_per_month"}) {
    INFO(kind << ": " << refused_by[kind]);
    CHECK(refused_by[kind] > 0);
  }
  CHECK(periods_at(t).month
        != periods_at(system_clock::time_point{seconds{1801438800}}).month);
}
