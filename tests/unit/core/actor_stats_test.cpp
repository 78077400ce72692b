// The counters /health reads of the PLUGINs and SESSIONs
// (core/observe/actor_stats.hpp): buckets, percentiles, per-thread cells
// summed, the last failure kept.

#include "core/observe/actor_stats.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <thread>
#include <vector>

using namespace pw::actor_stats;
using std::chrono::microseconds;

TEST_CASE("latency buckets are exact below 16 us, then within 25%") {
  for (int64_t us = 0; us < 16; ++us) {
    CHECK(bucket_of(us) == static_cast<size_t>(us));
    CHECK(bucket_ceiling(bucket_of(us)) == us);
  }
  CHECK(bucket_of(-5) == 0);
  int64_t previous_ceiling = 15;
  for (size_t i = 16; i < latency_buckets; ++i) {
    auto ceiling = bucket_ceiling(i);
    auto floor = previous_ceiling + 1;
    // Contiguous, each value in its own bucket, at most 25% wide.
    CHECK(bucket_of(floor) == i);
    CHECK(bucket_of(ceiling) == i);
    CHECK(static_cast<double>(ceiling - floor + 1)
          <= 0.25 * static_cast<double>(floor) + 1);
    previous_ceiling = ceiling;
  }
  // Beyond the last bucket (~71 min): the last bucket.
  CHECK(bucket_of(int64_t{1} << 40) == latency_buckets - 1);
}

TEST_CASE("a PLUGIN entry's counters: calls by result, percentiles, the last "
          "failure") {
  plugin_counters c;
  auto empty = c.read();
  CHECK(empty.calls == 0);
  CHECK(empty.p50_us == 0);
  CHECK(empty.last_error.empty());
  for (int i = 0; i < 98; ++i)
    c.record(plugin_result::passed, microseconds{100});
  c.record(plugin_result::blocked, microseconds{100});
  c.record(plugin_result::timed_out, microseconds{500'000},
           "did not answer within 500 ms");
  auto s = c.read();
  CHECK(s.calls == 100);
  CHECK(s.blocks == 1);
  CHECK(s.timeouts == 1);
  CHECK(s.failures == 0);
  CHECK(s.p50_us >= 100);
  CHECK(s.p50_us <= 125);
  CHECK(s.p99_us <= 125); // 99 of 100 calls took 100 us
  CHECK(s.last_error == "did not answer within 500 ms");
  CHECK(s.last_error_at.size() == 24); // RFC 3339 with milliseconds
  c.record(plugin_result::failed, microseconds{20}, "is not running");
  c.record(plugin_result::passed, microseconds{20}, "ignored");
  s = c.read();
  CHECK(s.failures == 1);
  CHECK(s.last_error == "is not running");
}

TEST_CASE("counts from many threads add up, each thread in its own cell") {
  plugin_counters c;
  auto before = read_sessions();
  std::vector<std::thread> threads;
  std::vector<size_t> cells_used(8);
  for (size_t t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      cells_used[t] = my_cell();
      for (int i = 0; i < 1000; ++i) {
        session_started();
        c.record(plugin_result::passed, microseconds{i});
        session_ended(i % 10 == 0 ? session_end::deadline
                                  : session_end::answered);
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(c.read().calls == 8000);
  auto after = read_sessions();
  CHECK(after.started - before.started == 8000);
  CHECK(after.deadline - before.deadline == 800);
  CHECK(after.answered - before.answered == 7200);
  CHECK(after.alive() == before.alive());
  // Fewer threads than cells: no two shared one.
  CHECK(std::set<size_t>(cells_used.begin(), cells_used.end()).size() == 8);
}
