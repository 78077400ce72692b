#include "core/policy/circuit_breaker.hpp"

#include <catch2/catch.hpp>

using namespace pw;
using namespace std::chrono_literals;
using clock_type = circuit_breaker::clock;

namespace {

const clock_type::time_point t0{1000s};

circuit_breaker make(uint32_t unhealthy = 3, uint32_t healthy = 1) {
  return circuit_breaker{breaker_settings{unhealthy, healthy, 30s}};
}

bool admit(circuit_breaker& b, clock_type::time_point now) {
  bool probe = false;
  return b.try_admit(now, probe);
}

} // namespace

TEST_CASE("a breaker opens after unhealthy_threshold consecutive failures") {
  auto b = make();
  b.record_failure(t0, false);
  b.record_failure(t0, false);
  CHECK(b.state(t0) == circuit_state::closed);
  CHECK(b.consecutive_failures() == 2);
  b.record_success(false); // a success breaks the run
  b.record_failure(t0, false);
  b.record_failure(t0, false);
  CHECK(b.state(t0) == circuit_state::closed);
  b.record_failure(t0, false);
  CHECK(b.state(t0) == circuit_state::open);
  CHECK(b.changed());
  CHECK_FALSE(admit(b, t0 + 29s));
  CHECK(b.retry_at() == t0 + 30s);
}

TEST_CASE("after the cooldown exactly one probe is admitted") {
  auto b = make();
  for (int i = 0; i < 3; ++i)
    b.record_failure(t0, false);
  CHECK(b.state(t0 + 30s) == circuit_state::half_open);
  bool probe = false;
  REQUIRE(b.try_admit(t0 + 30s, probe));
  CHECK(probe);
  CHECK(b.changed());
  bool second = false;
  CHECK_FALSE(b.try_admit(t0 + 31s, second));
  CHECK_FALSE(b.try_admit(t0 + 40s, second));
}

TEST_CASE("a successful probe closes, a failed probe reopens with a fresh "
          "cooldown") {
  auto b = make();
  for (int i = 0; i < 3; ++i)
    b.record_failure(t0, false);
  bool probe = false;
  REQUIRE(b.try_admit(t0 + 30s, probe));
  SECTION("success") {
    b.record_success(true);
    CHECK(b.state(t0 + 30s) == circuit_state::closed);
    CHECK(admit(b, t0 + 30s));
    CHECK(admit(b, t0 + 30s));
  }
  SECTION("failure") {
    b.record_failure(t0 + 31s, true);
    CHECK(b.state(t0 + 31s) == circuit_state::open);
    CHECK(b.retry_at() == t0 + 61s);
    CHECK_FALSE(admit(b, t0 + 60s));
    CHECK(admit(b, t0 + 61s));
  }
  SECTION("no verdict frees the probe slot") {
    b.record_cancelled(true);
    CHECK(b.state(t0 + 30s) == circuit_state::half_open);
    CHECK(admit(b, t0 + 32s));
  }
}

TEST_CASE("healthy_threshold successes are needed to close") {
  auto b = make(1, 2);
  b.record_failure(t0, false);
  bool probe = false;
  REQUIRE(b.try_admit(t0 + 30s, probe));
  b.record_success(true);
  CHECK(b.state(t0 + 30s) == circuit_state::half_open);
  REQUIRE(b.try_admit(t0 + 30s, probe));
  b.record_success(true);
  CHECK(b.state(t0 + 30s) == circuit_state::closed);
}

TEST_CASE("a health success closes an open breaker, health failures count") {
  auto b = make(2);
  b.health_failure(t0);
  CHECK(b.state(t0) == circuit_state::closed);
  b.health_failure(t0);
  CHECK(b.state(t0) == circuit_state::open);
  b.health_success();
  CHECK(b.state(t0) == circuit_state::closed);
  CHECK(b.changed());
  CHECK(admit(b, t0));
  CHECK(b.consecutive_failures() == 0);
}

TEST_CASE("late outcomes of calls admitted before opening change nothing") {
  auto b = make(1);
  b.record_failure(t0, false);
  REQUIRE(b.state(t0) == circuit_state::open);
  b.record_failure(t0 + 10s, false);
  CHECK(b.retry_at() == t0 + 30s);
  b.record_success(false);
  CHECK(b.state(t0 + 10s) == circuit_state::open);
}
