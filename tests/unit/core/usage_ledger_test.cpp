// The usage ledger and the worst-case estimate, on fixed UTC instants: no
// real clock anywhere.

#include "core/policy/usage_estimate.hpp"
#include "core/policy/usage_ledger.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

using namespace pw;

namespace {

/// The periods of a UTC instant.
ledger_periods at(int y, unsigned mo, unsigned d, int h = 0, int mi = 0,
                  int s = 0, int ms = 0) {
  using namespace std::chrono;
  sys_days date{year{y} / month{mo} / day{d}};
  return periods_at(date + hours{h} + minutes{mi} + seconds{s}
                    + milliseconds{ms});
}

/// 2026-03-10T10:20:45.500Z: 14.5 s left in the minute, 49154.5 s in the
/// day, 21 days and 49154.5 s in the month.
ledger_periods tuesday() {
  return at(2026, 3, 10, 10, 20, 45, 500);
}

constexpr uint64_t usd = 1'000'000'000'000; // pico-USD

usage_amount tokens(uint64_t n) {
  return {n, 0};
}

/// The counters of `scope`, which must exist.
const scope_counters& counters(const usage_ledger& book,
                               const std::string& scope) {
  const auto* c = book.find(scope);
  REQUIRE(c != nullptr);
  return *c;
}

/// Every count of a scope, to compare before and after.
auto counts(const scope_counters& c) {
  return std::make_tuple(c.minute_requests, c.minute_tokens, c.day_tokens,
                         c.month_tokens, c.month_cost, c.in_flight);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// -- periods ------------------------------------------------------------------

TEST_CASE("periods_at: the UTC minute, day and month and what is left of "
          "them",
          "[ledger]") {
  SECTION("the last seconds of a year") {
    auto p = at(2026, 12, 31, 23, 59, 30);
    CHECK(p.minute_left_ms == 30'000);
    CHECK(p.day_left_s == 30);
    CHECK(p.month_left_s == 30);
    CHECK(p.month == 2026 * 12 + 11);
    auto next = at(2027, 1, 1);
    CHECK(next.month == p.month + 1);
    CHECK(next.month == 2027 * 12);
    CHECK(next.day == p.day + 1);
    CHECK(next.minute == p.minute + 1);
    // The first instant of a period has all of it left.
    CHECK(next.minute_left_ms == 60'000);
    CHECK(next.day_left_s == 86'400);
    CHECK(next.month_left_s == 31 * 86'400);
  }
  SECTION("an instant inside a minute, a day and a month") {
    auto p = tuesday();
    CHECK(p.minute_left_ms == 14'500);
    CHECK(p.day_left_s == 49'155); // 49154.5 s, rounded up
    CHECK(p.month_left_s == 21 * 86'400 + 49'155);
    CHECK(p.month == 2026 * 12 + 2);
    auto later = at(2026, 3, 10, 10, 20, 59, 999);
    CHECK(later.minute == p.minute);
    CHECK(later.minute_left_ms == 1);
    CHECK(at(2026, 3, 10, 10, 21).minute == p.minute + 1);
  }
  SECTION("February 29 of a leap year") {
    auto p = at(2028, 2, 29, 12);
    CHECK(p.month == 2028 * 12 + 1);
    CHECK(p.day_left_s == 43'200);
    CHECK(p.month_left_s == 43'200);
    CHECK(at(2028, 2, 28).month == p.month);
    CHECK(at(2028, 2, 28).day + 1 == p.day);
    auto march = at(2028, 3, 1);
    CHECK(march.day == p.day + 1);
    CHECK(march.month == p.month + 1);
    // The whole month: 29 days in 2028, 28 in 2027.
    CHECK(at(2028, 2, 1).month_left_s == 29 * 86'400);
    CHECK(at(2027, 2, 1).month_left_s == 28 * 86'400);
  }
  SECTION("the epoch") {
    auto p = periods_at(std::chrono::system_clock::time_point{});
    CHECK(p.minute == 0);
    CHECK(p.day == 0);
    CHECK(p.month == 1970 * 12);
    CHECK(p.minute_left_ms == 60'000);
    CHECK(p.day_left_s == 86'400);
    CHECK(p.month_left_s == 31 * 86'400);
  }
}

// -- reserve ------------------------------------------------------------------

TEST_CASE("a reservation within the limits charges every scope and returns "
          "a hold",
          "[ledger]") {
  usage_limits key;
  key.requests_per_minute = 10;
  usage_limits team;
  team.tokens_per_day = 10'000;
  usage_ledger book;
  auto now = tuesday();
  auto a
    = book.reserve({{"key:alice", &key}, {"team:red", &team}}, {100, 5}, now);
  CHECK_FALSE(a.refusal);
  REQUIRE(a.hold);
  CHECK(a.hold->scopes == std::vector<std::string>{"key:alice", "team:red"});
  CHECK(a.hold->reserved == usage_amount{100, 5});
  CHECK(a.hold->at.minute == now.minute);
  CHECK(a.hold->at.day == now.day);
  CHECK(a.hold->at.month == now.month);
  for (const auto* scope : {"key:alice", "team:red"}) {
    INFO(scope);
    const auto& c = counters(book, scope);
    CHECK(c.minute == now.minute);
    CHECK(c.day == now.day);
    CHECK(c.month == now.month);
    CHECK(c.minute_requests == 1);
    CHECK(c.minute_tokens == 100);
    CHECK(c.day_tokens == 100);
    CHECK(c.month_tokens == 100);
    CHECK(c.month_cost == 5);
    CHECK(c.in_flight == 1);
  }
  // A scope without limits is neither charged nor held.
  auto b
    = book.reserve({{"key:alice", &key}, {"team:none", nullptr}}, {10, 0}, now);
  REQUIRE(b.hold);
  CHECK(b.hold->scopes == std::vector<std::string>{"key:alice"});
  CHECK(book.find("team:none") == nullptr);
  CHECK(counters(book, "key:alice").in_flight == 2);
  CHECK(counters(book, "team:red").in_flight == 1);
}

TEST_CASE("each limit refuses with its kind, its scope and when to retry",
          "[ledger]") {
  usage_ledger book;
  usage_limits lim;
  std::vector<ledger_scope> scopes{{"key:alice", &lim}};
  auto now = tuesday();
  auto refusal_of = [&](usage_amount worst) {
    auto a = book.reserve(scopes, worst, now);
    CHECK_FALSE(a.hold);
    REQUIRE(a.refusal);
    CHECK(a.refusal->scope == "key:alice");
    return *a.refusal;
  };
  auto admitted = [&](usage_amount worst) {
    auto a = book.reserve(scopes, worst, now);
    CHECK_FALSE(a.refusal);
    REQUIRE(a.hold);
    return *a.hold;
  };
  SECTION("requests_per_minute: until the minute ends") {
    lim.requests_per_minute = 2;
    admitted(tokens(1));
    admitted(tokens(1));
    auto r = refusal_of(tokens(1));
    CHECK(r.kind == limit_kind::requests_per_minute);
    CHECK(r.limit == 2);
    CHECK(r.wanted == 1);
    CHECK(r.left == 0);
    CHECK_FALSE(r.never);
    CHECK(r.retry_after_s == 15); // 14.5 s, rounded up
    CHECK_FALSE(is_quota(r.kind));
    INFO(r.message());
    CHECK(contains(r.message(), "client 'alice'"));
    CHECK(contains(r.message(), "2 requests per minute"));
    CHECK(contains(r.message(), "Retry after 15 s"));
    // The next minute starts again.
    now = at(2026, 3, 10, 10, 21);
    admitted(tokens(1));
  }
  SECTION("tokens_per_minute: until the minute ends") {
    lim.tokens_per_minute = 100;
    admitted(tokens(60));
    auto r = refusal_of(tokens(50));
    CHECK(r.kind == limit_kind::tokens_per_minute);
    CHECK(r.limit == 100);
    CHECK(r.wanted == 50);
    CHECK(r.left == 40);
    CHECK_FALSE(r.never);
    CHECK(r.retry_after_s == 15);
    CHECK_FALSE(is_quota(r.kind));
    CHECK(contains(r.message(), "Token rate limit reached"));
    CHECK(contains(r.message(), "100 tokens per minute"));
    // What is left still fits exactly.
    admitted(tokens(40));
    auto never = refusal_of(tokens(101));
    CHECK(never.kind == limit_kind::tokens_per_minute);
    CHECK(never.never);
    INFO(never.message());
    CHECK(contains(never.message(), "lower max_tokens"));
    CHECK(contains(never.message(), "100 tokens per minute"));
  }
  SECTION("max_concurrent: retry in a second") {
    lim.max_concurrent = 1;
    auto first = admitted(tokens(10));
    auto r = refusal_of(tokens(10));
    CHECK(r.kind == limit_kind::max_concurrent);
    CHECK(r.limit == 1);
    CHECK(r.left == 0);
    CHECK_FALSE(r.never);
    CHECK(r.retry_after_s == 1);
    CHECK_FALSE(is_quota(r.kind));
    CHECK(contains(r.message(), "at most 1 at once"));
    // A finished request frees its place.
    book.settle(first, tokens(10), now);
    admitted(tokens(10));
  }
  SECTION("tokens_per_day: until the day ends") {
    lim.tokens_per_day = 1000;
    admitted(tokens(900));
    auto r = refusal_of(tokens(200));
    CHECK(r.kind == limit_kind::tokens_per_day);
    CHECK(r.limit == 1000);
    CHECK(r.wanted == 200);
    CHECK(r.left == 100);
    CHECK_FALSE(r.never);
    CHECK(r.retry_after_s == now.day_left_s);
    CHECK(r.retry_after_s == 49'155);
    CHECK(is_quota(r.kind));
    INFO(r.message());
    CHECK(contains(r.message(), "Token quota reached"));
    CHECK(contains(r.message(), "1000 tokens per day"));
    auto never = refusal_of(tokens(1001));
    CHECK(never.never);
    CHECK(contains(never.message(), "lower max_tokens"));
    // The next day starts again.
    now = at(2026, 3, 11);
    admitted(tokens(1000));
  }
  SECTION("tokens_per_month: until the month ends") {
    lim.tokens_per_month = 1000;
    admitted(tokens(999));
    auto r = refusal_of(tokens(2));
    CHECK(r.kind == limit_kind::tokens_per_month);
    CHECK(r.left == 1);
    CHECK_FALSE(r.never);
    CHECK(r.retry_after_s == now.month_left_s);
    CHECK(r.retry_after_s == 21 * 86'400 + 49'155);
    CHECK(is_quota(r.kind));
    CHECK(contains(r.message(), "1000 tokens per month"));
    auto never = refusal_of(tokens(1001));
    CHECK(never.never);
    CHECK(contains(never.message(), "lower max_tokens"));
    // Another day of the same month does not start it again.
    now = at(2026, 3, 31, 23, 59);
    CHECK(refusal_of(tokens(2)).kind == limit_kind::tokens_per_month);
    now = at(2026, 4, 1);
    admitted(tokens(1000));
  }
  SECTION("budget_usd_per_month: until the month ends") {
    lim.budget_per_month = 10 * usd;
    admitted({0, 9 * usd});
    auto r = refusal_of({0, 2 * usd});
    CHECK(r.kind == limit_kind::budget_per_month);
    CHECK(r.limit == 10 * usd);
    CHECK(r.wanted == 2 * usd);
    CHECK(r.left == 1 * usd);
    CHECK_FALSE(r.never);
    CHECK(r.retry_after_s == now.month_left_s);
    CHECK(is_quota(r.kind));
    INFO(r.message());
    CHECK(contains(r.message(), "(USD 10.00) has USD 1.00 left"));
    CHECK(contains(r.message(), "may cost up to USD 2.00"));
    auto never = refusal_of({0, 11 * usd});
    CHECK(never.never);
    INFO(never.message());
    CHECK(contains(never.message(), "lower max_tokens"));
    CHECK(contains(never.message(), "client 'alice' (USD 10.00)"));
    // Tokens alone cost nothing against a budget.
    admitted(tokens(1'000'000));
  }
}

TEST_CASE("the names of the limits and which ones are quotas", "[ledger]") {
  CHECK(to_string(limit_kind::requests_per_minute) == "requests_per_minute");
  CHECK(to_string(limit_kind::tokens_per_minute) == "tokens_per_minute");
  CHECK(to_string(limit_kind::max_concurrent) == "max_concurrent");
  CHECK(to_string(limit_kind::tokens_per_day) == "tokens_per_day");
  CHECK(to_string(limit_kind::tokens_per_month) == "tokens_per_month");
  CHECK(to_string(limit_kind::budget_per_month) == "budget_usd_per_month");
  CHECK(is_quota(limit_kind::tokens_per_day));
  CHECK(is_quota(limit_kind::tokens_per_month));
  CHECK(is_quota(limit_kind::budget_per_month));
  CHECK_FALSE(is_quota(limit_kind::requests_per_minute));
  CHECK_FALSE(is_quota(limit_kind::tokens_per_minute));
  CHECK_FALSE(is_quota(limit_kind::max_concurrent));
}

TEST_CASE("a refusal charges nothing, in no scope", "[ledger]") {
  usage_limits key;
  key.requests_per_minute = 10;
  usage_limits team;
  team.tokens_per_day = 100;
  team.budget_per_month = 1 * usd;
  usage_ledger book;
  auto now = tuesday();
  std::vector<ledger_scope> scopes{{"key:alice", &key}, {"team:red", &team}};
  REQUIRE(book.reserve(scopes, {50, 1000}, now).hold);
  auto key_before = counts(counters(book, "key:alice"));
  auto team_before = counts(counters(book, "team:red"));
  SECTION("the team refuses: the key, which passed, is not charged") {
    auto a = book.reserve(scopes, {60, 1000}, now);
    REQUIRE(a.refusal);
    CHECK_FALSE(a.hold);
    CHECK(a.refusal->scope == "team:red");
    CHECK(a.refusal->kind == limit_kind::tokens_per_day);
    CHECK(contains(a.refusal->message(), "team 'red'"));
  }
  SECTION("the key refuses: the team is not charged") {
    key.requests_per_minute = 1;
    auto a = book.reserve(scopes, {10, 1000}, now);
    REQUIRE(a.refusal);
    CHECK(a.refusal->scope == "key:alice");
    CHECK(a.refusal->kind == limit_kind::requests_per_minute);
  }
  CHECK(counts(counters(book, "key:alice")) == key_before);
  CHECK(counts(counters(book, "team:red")) == team_before);
  CHECK(counters(book, "key:alice").minute_requests == 1);
  CHECK(counters(book, "team:red").day_tokens == 50);
}

TEST_CASE("an absurd worst case fails every limit it meets instead of "
          "wrapping round under it, and charges the most",
          "[ledger]") {
  usage_limits team;
  team.tokens_per_day = 1000;
  team.budget_per_month = 5 * usd;
  usage_limits key;
  key.requests_per_minute = 100;
  usage_ledger book;
  auto now = tuesday();
  std::vector<ledger_scope> both{{"key:alice", &key}, {"team:red", &team}};
  REQUIRE(book.reserve(both, {10, 1 * usd}, now).hold);
  // 10 tokens used: 10 + (2^64 - 1) would wrap round to 9, under 1000.
  auto tokens_refused = book.reserve(both, {UINT64_MAX, 0}, now);
  REQUIRE(tokens_refused.refusal);
  CHECK(tokens_refused.refusal->kind == limit_kind::tokens_per_day);
  CHECK(tokens_refused.refusal->never);
  auto cost_refused = book.reserve(both, {1, UINT64_MAX}, now);
  REQUIRE(cost_refused.refusal);
  CHECK(cost_refused.refusal->kind == limit_kind::budget_per_month);
  CHECK(cost_refused.refusal->never);
  // Where no limit counts tokens, they are charged and stay at the most.
  std::vector<ledger_scope> key_only{{"key:alice", &key}};
  REQUIRE(book.reserve(key_only, {UINT64_MAX, UINT64_MAX}, now).hold);
  REQUIRE(book.reserve(key_only, {5, 5}, now).hold);
  CHECK(counters(book, "key:alice").day_tokens == UINT64_MAX);
  CHECK(counters(book, "key:alice").month_cost == UINT64_MAX);
  CHECK(counters(book, "key:alice").minute_requests == 3);
}

// -- settle -------------------------------------------------------------------

TEST_CASE("settling replaces the reservation by the real usage and ends the "
          "request in flight",
          "[ledger]") {
  usage_limits lim;
  lim.tokens_per_minute = 10'000;
  lim.tokens_per_day = 100'000;
  lim.budget_per_month = 1 * usd;
  usage_ledger book;
  std::vector<ledger_scope> scopes{{"key:alice", &lim}};
  auto now = tuesday();
  SECTION("in the same minute") {
    auto a = book.reserve(scopes, {300, 5000}, now);
    REQUIRE(a.hold);
    book.settle(*a.hold, {120, 2000}, now);
    const auto& c = counters(book, "key:alice");
    CHECK(c.minute_requests == 1); // a request is a request
    CHECK(c.minute_tokens == 120);
    CHECK(c.day_tokens == 120);
    CHECK(c.month_tokens == 120);
    CHECK(c.month_cost == 2000);
    CHECK(c.in_flight == 0);
  }
  SECTION("nothing used: nothing charged but the request") {
    auto a = book.reserve(scopes, {300, 5000}, now);
    REQUIRE(a.hold);
    book.settle(*a.hold, {}, now);
    const auto& c = counters(book, "key:alice");
    CHECK(c.minute_requests == 1);
    CHECK(c.minute_tokens == 0);
    CHECK(c.day_tokens == 0);
    CHECK(c.month_cost == 0);
    CHECK(c.in_flight == 0);
  }
  SECTION("after the minute rolled over: the new minute is left alone") {
    auto a = book.reserve(scopes, {300, 5000}, now);
    REQUIRE(a.hold);
    auto later = at(2026, 3, 10, 10, 21, 15, 500);
    REQUIRE(later.minute == now.minute + 1);
    auto b = book.reserve(scopes, {200, 1000}, later);
    REQUIRE(b.hold);
    {
      const auto& c = counters(book, "key:alice");
      CHECK(c.minute_requests == 1);
      CHECK(c.minute_tokens == 200);
      CHECK(c.day_tokens == 500);
      CHECK(c.in_flight == 2);
    }
    book.settle(*a.hold, {100, 2000}, later);
    const auto& c = counters(book, "key:alice");
    CHECK(c.minute == later.minute);
    CHECK(c.minute_requests == 1);
    CHECK(c.minute_tokens == 200);
    CHECK(c.day_tokens == 300);
    CHECK(c.month_tokens == 300);
    CHECK(c.month_cost == 3000);
    CHECK(c.in_flight == 1);
  }
  SECTION("after the day rolled over: only the month is fixed") {
    auto evening = at(2026, 3, 10, 23, 59, 50);
    auto a = book.reserve(scopes, tokens(300), evening);
    REQUIRE(a.hold);
    book.settle(*a.hold, tokens(100), at(2026, 3, 11, 0, 0, 10));
    const auto& c = counters(book, "key:alice");
    CHECK(c.minute_tokens == 0);
    CHECK(c.day_tokens == 0);
    CHECK(c.month_tokens == 100);
    CHECK(c.in_flight == 0);
  }
  SECTION("after the month rolled over: only the request in flight ends") {
    auto a = book.reserve(scopes, {300, 5000}, at(2026, 3, 31, 23, 59, 59));
    REQUIRE(a.hold);
    book.settle(*a.hold, {100, 2000}, at(2026, 4, 1, 0, 0, 1));
    const auto& c = counters(book, "key:alice");
    CHECK(c.day_tokens == 0);
    CHECK(c.month_tokens == 0);
    CHECK(c.month_cost == 0);
    CHECK(c.in_flight == 0);
  }
}

TEST_CASE("requests in flight can never take a scope past a limit",
          "[ledger]") {
  usage_limits lim;
  lim.tokens_per_month = 1000;
  usage_ledger book;
  std::vector<ledger_scope> scopes{{"key:alice", &lim}};
  auto now = tuesday();
  SECTION("reserving until refused, then settling below the reservations") {
    std::vector<ledger_hold> holds;
    for (;;) {
      auto a = book.reserve(scopes, tokens(150), now);
      if (!a.hold) {
        REQUIRE(a.refusal);
        CHECK(a.refusal->kind == limit_kind::tokens_per_month);
        break;
      }
      holds.push_back(std::move(*a.hold));
      REQUIRE(counters(book, "key:alice").month_tokens <= 1000);
      REQUIRE(holds.size() < 100);
    }
    CHECK(holds.size() == 6);
    CHECK(counters(book, "key:alice").in_flight == 6);
    for (const auto& h : holds) {
      book.settle(h, tokens(100), now);
      CHECK(counters(book, "key:alice").month_tokens <= 1000);
    }
    CHECK(counters(book, "key:alice").month_tokens == 600);
    CHECK(counters(book, "key:alice").in_flight == 0);
    // What the settlements gave back can be reserved again, no more.
    CHECK(book.reserve(scopes, tokens(150), now).hold);
    CHECK(book.reserve(scopes, tokens(150), now).hold);
    CHECK(book.reserve(scopes, tokens(150), now).refusal);
    CHECK(counters(book, "key:alice").month_tokens == 900);
  }
  SECTION("reservations and settlements interleaved") {
    std::vector<ledger_hold> open;
    uint64_t expected = 0; // open reservations plus settled usage
    uint64_t seed = 42;
    auto next = [&](uint64_t n) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      return (seed >> 33) % n;
    };
    for (int i = 0; i < 500; ++i) {
      if (open.empty() || next(3) != 0) {
        auto worst = 1 + next(300);
        auto a = book.reserve(scopes, tokens(worst), now);
        if (a.hold) {
          expected += worst;
          open.push_back(std::move(*a.hold));
        } else {
          REQUIRE(a.refusal);
          REQUIRE(counters(book, "key:alice").month_tokens + worst > 1000);
        }
      } else {
        auto pick = next(open.size());
        auto reserved = open[pick].reserved.tokens;
        auto actual = next(reserved + 1);
        book.settle(open[pick], tokens(actual), now);
        expected = expected - reserved + actual;
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(pick));
      }
      const auto& c = counters(book, "key:alice");
      REQUIRE(c.month_tokens <= 1000);
      REQUIRE(c.month_tokens == expected);
      REQUIRE(c.in_flight == open.size());
    }
  }
}

// -- headers ------------------------------------------------------------------

TEST_CASE("the rate view shows the tightest per-minute limit of the scopes",
          "[ledger]") {
  usage_limits a_lim;
  a_lim.requests_per_minute = 3;
  a_lim.tokens_per_minute = 1000;
  usage_limits b_lim;
  b_lim.requests_per_minute = 3;
  usage_limits team;
  team.requests_per_minute = 4;
  usage_ledger book;
  auto now = tuesday();
  std::vector<ledger_scope> a{{"key:a", &a_lim}, {"team:red", &team}};
  std::vector<ledger_scope> b{{"key:b", &b_lim}, {"team:red", &team}};
  auto v = book.reserve(a, tokens(100), now).view;
  CHECK(v.limit_requests == 3u);
  CHECK(v.remaining_requests == 2u);
  CHECK(v.limit_tokens == 1000u);
  CHECK(v.remaining_tokens == 900u);
  CHECK(v.reset_ms == now.minute_left_ms);
  v = book.reserve(a, tokens(100), now).view;
  CHECK(v.limit_requests == 3u); // the key: 1 left, the team 2
  CHECK(v.remaining_requests == 1u);
  CHECK(v.remaining_tokens == 800u);
  v = book.reserve(b, tokens(100), now).view;
  CHECK(v.limit_requests == 4u); // the team: 1 left, key b 2
  CHECK(v.remaining_requests == 1u);
  CHECK_FALSE(v.limit_tokens); // no scope of b limits tokens per minute
  CHECK_FALSE(v.remaining_tokens);
  v = book.reserve(a, tokens(100), now).view;
  CHECK(v.limit_requests == 3u);
  CHECK(v.remaining_requests == 0u);
  // A refusal shows the same view: nothing was charged.
  auto refused = book.reserve(a, tokens(100), now);
  REQUIRE(refused.refusal);
  CHECK(refused.view.limit_requests == 3u);
  CHECK(refused.view.remaining_requests == 0u);
  CHECK(refused.view.remaining_tokens == 700u);
  // Scopes without per-minute limits show none.
  usage_limits daily;
  daily.tokens_per_day = 1000;
  auto quiet = book.reserve({{"key:c", &daily}}, tokens(1), now).view;
  CHECK_FALSE(quiet.limit_requests);
  CHECK_FALSE(quiet.remaining_requests);
  CHECK_FALSE(quiet.limit_tokens);
  CHECK(quiet.reset_ms == now.minute_left_ms);
}

TEST_CASE("reset_text writes OpenAI's durations", "[ledger]") {
  CHECK(reset_text(0) == "0ms");
  CHECK(reset_text(120) == "120ms");
  CHECK(reset_text(999) == "999ms");
  CHECK(reset_text(1000) == "1s");
  CHECK(reset_text(1001) == "2s"); // rounded up
  CHECK(reset_text(59'000) == "59s");
  CHECK(reset_text(60'000) == "1m0s");
  CHECK(reset_text(360'000) == "6m0s");
  CHECK(reset_text(90'500) == "1m31s");
}

// -- journal ------------------------------------------------------------------

TEST_CASE("the journal keeps the day and month totals that are still "
          "current",
          "[ledger]") {
  usage_limits lim;
  lim.tokens_per_day = 10'000;
  usage_ledger book;
  auto now = tuesday();
  std::vector<ledger_scope> alice{{"key:alice", &lim}, {"team:red", &lim}};
  REQUIRE(book.reserve(alice, {100, 7}, now).hold);
  REQUIRE(book.reserve({{"key:bob", &lim}}, {50, 3}, now).hold);
  auto text = book.journal();
  INFO(text);
  SECTION("the same day: every total") {
    usage_ledger fresh;
    REQUIRE(fresh.restore(text, now));
    CHECK(fresh.scopes().size() == 3);
    for (const auto* scope : {"key:alice", "team:red"}) {
      INFO(scope);
      const auto& c = counters(fresh, scope);
      CHECK(c.day_tokens == 100);
      CHECK(c.month_tokens == 100);
      CHECK(c.month_cost == 7);
      // Neither the minute nor the requests in flight are journalled.
      CHECK(c.minute_requests == 0);
      CHECK(c.minute_tokens == 0);
      CHECK(c.in_flight == 0);
    }
    CHECK(counters(fresh, "key:bob").day_tokens == 50);
    CHECK(counters(fresh, "key:bob").month_cost == 3);
    // The restored totals count against the limits.
    CHECK(fresh.reserve(alice, tokens(9'901), now).refusal);
    CHECK(fresh.reserve(alice, tokens(9'900), now).hold);
  }
  SECTION("a later day of the same month: the month's totals only") {
    usage_ledger fresh;
    REQUIRE(fresh.restore(text, at(2026, 3, 11, 8)));
    const auto& c = counters(fresh, "key:alice");
    CHECK(c.day_tokens == 0);
    CHECK(c.month_tokens == 100);
    CHECK(c.month_cost == 7);
  }
  SECTION("another month: nothing") {
    usage_ledger fresh;
    REQUIRE(fresh.restore(text, at(2026, 4, 1)));
    const auto& c = counters(fresh, "key:alice");
    CHECK(c.day_tokens == 0);
    CHECK(c.month_tokens == 0);
    CHECK(c.month_cost == 0);
  }
  SECTION("into a ledger with counters of its own: added") {
    usage_ledger busy;
    REQUIRE(busy.reserve({{"key:alice", &lim}}, {20, 1}, now).hold);
    REQUIRE(busy.restore(text, now));
    const auto& c = counters(busy, "key:alice");
    CHECK(c.day_tokens == 120);
    CHECK(c.month_tokens == 120);
    CHECK(c.month_cost == 8);
    CHECK(c.in_flight == 1);
    CHECK(c.minute_requests == 1);
  }
}

TEST_CASE("a text that is not a journal restores nothing", "[ledger]") {
  auto now = tuesday();
  auto day = std::to_string(now.day);
  auto month = std::to_string(now.month);
  auto entry = R"({"scope":"key:a","day":)" + day
               + R"(,"day_tokens":5,"month":)" + month
               + R"(,"month_tokens":5,"month_cost":1})";
  for (const std::string& text : {
         std::string{""},
         std::string{"not json"},
         std::string{"[1,2,3]"},
         std::string{R"({"scopes":[]})"},
         std::string{R"({"version":2,"scopes":[]})"},
         R"({"version":2,"scopes":[)" + entry + "]}",
         std::string{R"({"version":"1","scopes":[]})"},
         std::string{R"({"version":1})"},
         std::string{R"({"version":1,"scopes":{}})"},
         // One bad entry spoils the whole journal.
         R"({"version":1,"scopes":[)" + entry + R"(,{"day":1}]})",
         R"({"version":1,"scopes":[)" + entry + R"(,{"scope":""}]})",
       }) {
    INFO(text);
    usage_ledger book;
    CHECK_FALSE(book.restore(text, now));
    CHECK(book.scopes().empty());
  }
  // A ledger in use keeps its own counters.
  usage_limits lim;
  lim.max_concurrent = 5;
  usage_ledger book;
  REQUIRE(book.reserve({{"key:a", &lim}}, tokens(10), now).hold);
  auto before = counts(counters(book, "key:a"));
  CHECK_FALSE(book.restore(
    R"({"version":1,"scopes":[)" + entry + R"(,{"day":1}]})", now));
  CHECK(counts(counters(book, "key:a")) == before);
  // The well-formed version of the same text is a journal.
  usage_ledger good;
  CHECK(good.restore(R"({"version":1,"scopes":[)" + entry + "]}", now));
  CHECK(counters(good, "key:a").day_tokens == 5);
  CHECK(good.restore(R"({"version":1,"scopes":[]})", now));
}

// -- estimate -----------------------------------------------------------------

TEST_CASE("the prompt estimate is a token per 3 bytes, rounded up",
          "[ledger]") {
  CHECK(estimate_prompt_tokens(0) == 0);
  CHECK(estimate_prompt_tokens(1) == 1);
  CHECK(estimate_prompt_tokens(2) == 1);
  CHECK(estimate_prompt_tokens(3) == 1);
  CHECK(estimate_prompt_tokens(4) == 2);
  CHECK(estimate_prompt_tokens(3000) == 1000);
}

TEST_CASE("requested_output: the most output tokens a request allows",
          "[ledger]") {
  struct example {
    const char* body;
    uint64_t expected;
  };
  const example examples[] = {
    {R"({"max_tokens":100})", 100},
    {R"({"max_completion_tokens":50})", 50},
    {R"({"max_tokens":100,"max_completion_tokens":50})", 50},
    {R"({"max_completion_tokens":50,"max_tokens":100})", 50},
    {R"({"max_tokens":100,"n":3})", 300},
    {R"({"max_completion_tokens":7,"max_tokens":100,"n":2})", 14},
    {R"({"max_tokens":100,"n":1})", 100},
    {R"({"max_tokens":100,"n":0})", 100},
    {R"({"max_tokens":100,"n":-2})", 100},
    {R"({"max_tokens":100,"n":2.5})", 100},
    {R"({})", 0},
    {R"({"n":4})", 0},
    {R"({"model":"gpt","messages":[]})", 0},
    {R"({"max_tokens":-5})", 0},
    {R"({"max_tokens":10.5})", 0},
    {R"({"max_tokens":"100"})", 0},
    {R"({"max_tokens":null})", 0},
    {R"({"max_tokens":0})", 0},
    {R"({"max_completion_tokens":-1,"max_tokens":40})", 40},
    {R"({"max_completion_tokens":1.5,"max_tokens":40})", 40},
    {R"({"max_completion_tokens":0,"max_tokens":40})", 40},
    {R"([{"max_tokens":100}])", 0},
    {R"("max_tokens")", 0},
  };
  for (const auto& x : examples) {
    INFO(x.body);
    CHECK(requested_output(std::string_view{x.body}) == x.expected);
    // A document a plugin changed says the same.
    auto doc = nlohmann::ordered_json::parse(x.body);
    CHECK(requested_output(doc) == x.expected);
  }
  // Not JSON: nothing known.
  CHECK(requested_output(std::string_view{"not json"}) == 0);
  CHECK(requested_output(std::string_view{R"({"max_tokens":100)"}) == 0);
  CHECK(requested_output(std::string_view{}) == 0);
  // Large values saturate instead of wrapping around.
  CHECK(requested_output(
          std::string_view{R"({"max_tokens":9223372036854775807,"n":4})"})
        == UINT64_MAX);
  nlohmann::ordered_json doc
    = {{"max_tokens", int64_t{9'223'372'036'854'775'807}}, {"n", 4}};
  CHECK(requested_output(doc) == UINT64_MAX);
}
