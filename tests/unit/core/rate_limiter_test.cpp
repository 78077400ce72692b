#include "core/rate_limiter.hpp"

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
