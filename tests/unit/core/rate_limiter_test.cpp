#include "core/policy/rate_limiter.hpp"

#include <catch2/catch.hpp>

using pw::sliding_window_limiter;
using namespace std::chrono_literals;

TEST_CASE("at most max_requests in any window") {
  sliding_window_limiter lim{3, 10s};
  sliding_window_limiter::clock::time_point t{100s};
  CHECK_FALSE(lim.try_acquire(t));
  CHECK_FALSE(lim.try_acquire(t + 1s));
  CHECK_FALSE(lim.try_acquire(t + 2s));
  auto wait = lim.try_acquire(t + 3s);
  REQUIRE(wait);
  CHECK(*wait == 7s); // the first request leaves the window at t + 10s
  CHECK(lim.try_acquire(t + 9s));
  CHECK_FALSE(lim.try_acquire(t + 10s)); // the first one left
  CHECK(lim.try_acquire(t + 10s));
  CHECK(lim.in_window(t + 10s) == 3);
}

TEST_CASE("a refused request does not count") {
  sliding_window_limiter lim{1, 1s};
  sliding_window_limiter::clock::time_point t{10s};
  CHECK_FALSE(lim.try_acquire(t));
  for (int i = 0; i < 100; ++i)
    CHECK(lim.try_acquire(t + 500ms));
  CHECK_FALSE(lim.try_acquire(t + 1s));
}

TEST_CASE("a huge maximum keeps memory proportional to the real rate") {
  sliding_window_limiter lim{1'000'000'000, 1s};
  sliding_window_limiter::clock::time_point t{1s};
  for (int i = 0; i < 10'000; ++i)
    REQUIRE_FALSE(lim.try_acquire(t + std::chrono::microseconds{i}));
  CHECK(lim.in_window(t + 10ms) == 10'000);
  // A second later the window is empty again.
  CHECK_FALSE(lim.try_acquire(t + 2s));
  CHECK(lim.in_window(t + 2s) == 1);
}

TEST_CASE("a limiter adopts an older one's window and keeps the newest") {
  sliding_window_limiter older{3, 10s};
  sliding_window_limiter::clock::time_point t{100s};
  REQUIRE_FALSE(older.try_acquire(t));
  REQUIRE_FALSE(older.try_acquire(t + 1s));
  sliding_window_limiter newer{3, 10s};
  REQUIRE_FALSE(newer.try_acquire(t + 2s));
  newer.adopt(older.times());
  CHECK(newer.in_window(t + 2s) == 3);
  // Full: the oldest adopted request leaves the window first.
  auto wait = newer.try_acquire(t + 3s);
  REQUIRE(wait);
  CHECK(*wait == 7s);
  // A smaller new maximum keeps only the newest times.
  sliding_window_limiter tighter{1, 10s};
  tighter.adopt(older.times());
  CHECK(tighter.times() == std::vector{t + 1s});
}
