#include "core/observe/metrics.hpp"
#include "tests/support/exposition.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pw;
using pw::test::parse_exposition;
using std::chrono::microseconds;

namespace {

http_reply reply_of(std::string model, unsigned status,
                    std::vector<attempt_fact> attempts = {},
                    uint64_t prompt = 0, uint64_t completion = 0) {
  http_reply r;
  r.model = std::move(model);
  r.status = status;
  r.attempts = std::move(attempts);
  r.prompt_tokens = prompt;
  r.completion_tokens = completion;
  return r;
}

metrics_snapshot snapshot_of(metrics_shard shard, bool process = true) {
  metrics_snapshot snap;
  snap.merged = std::move(shard);
  snap.models = {{"gpt", 2, 0}, {"local", 0, 3}};
  snap.config_sha256 = "abc123";
  snap.uptime_seconds = 42;
  if (process)
    snap.process = read_process_stats();
  return snap;
}

/// Two tenants, a fallback, a block.
metrics_shard sample_shard() {
  metrics_shard m;
  m.record(
    "alice",
    reply_of("local", 200, {{"gpt", "failure"}, {"local", "success"}}, 10, 5),
    microseconds{250'000}, microseconds{300});
  m.record("alice", reply_of("local", 200, {{"local", "success"}}, 7, 3),
           microseconds{1'000}, microseconds{80});
  auto blocked = reply_of("", 400);
  blocked.blocked_by = "regex";
  m.record("bob", blocked, microseconds{90}, microseconds{90});
  m.record("", reply_of("", 401), microseconds{20}, microseconds{20});
  return m;
}

} // namespace

TEST_CASE("a histogram counts each observation once, in its bucket") {
  histogram h{duration_buckets()};
  h.observe(0.004);  // <= 0.005
  h.observe(0.005);  // le is inclusive
  h.observe(0.3);    // <= 0.5
  h.observe(1000.0); // +Inf
  CHECK(h.count() == 4);
  CHECK(h.sum() == Approx(1000.309));
  CHECK(h.counts().front() == 2);
  CHECK(h.counts().back() == 1);
  histogram other{duration_buckets()};
  other.observe(0.004);
  h.merge(other);
  CHECK(h.count() == 5);
  CHECK(h.counts().front() == 3);
}

TEST_CASE("the Prometheus text of a scrape parses strictly") {
  auto text = render_prometheus(snapshot_of(sample_shard()), {true, ""});
  auto prom = parse_exposition(text);
  CHECK(prom.value("pw_router_requests_total", {{"endpoint", "chat"},
                                                {"model", "local"},
                                                {"client", "alice"},
                                                {"status", "200"}})
        == 2);
  CHECK(
    prom.value(
      "pw_router_requests_total",
      {{"endpoint", "chat"}, {"model", ""}, {"client", ""}, {"status", "401"}})
    == 1);
  CHECK(
    prom.value("pw_router_tokens_total",
               {{"model", "local"}, {"client", "alice"}, {"kind", "prompt"}})
    == 17);
  CHECK(prom.value(
          "pw_router_tokens_total",
          {{"model", "local"}, {"client", "alice"}, {"kind", "completion"}})
        == 8);
  CHECK(prom.value("pw_router_upstream_attempts_total",
                   {{"model", "gpt"}, {"outcome", "failure"}})
        == 1);
  CHECK(prom.value("pw_router_upstream_attempts_total",
                   {{"model", "local"}, {"outcome", "success"}})
        == 2);
  CHECK(
    prom.value("pw_router_fallbacks_total", {{"from", "gpt"}, {"to", "local"}})
    == 1);
  CHECK(prom.value("pw_router_plugin_blocks_total", {{"plugin", "regex"}})
        == 1);
  CHECK(prom.value("pw_router_circuit_state", {{"model", "gpt"}}) == 2);
  CHECK(prom.value("pw_router_in_flight", {{"model", "local"}}) == 3);
  CHECK(prom.value("pw_router_config_info", {{"sha256", "abc123"}}) == 1);
  CHECK(
    prom.value("pw_router_request_duration_seconds_count", {{"model", "local"}})
    == 2);
  CHECK(prom.value("pw_router_request_duration_seconds_bucket",
                   {{"model", "local"}, {"le", "0.005"}})
        == 1);
  CHECK(prom.value("pw_router_gateway_overhead_seconds_count") == 4);
  CHECK(
    prom.value("pw_router_gateway_overhead_seconds_bucket", {{"le", "0.0001"}})
    == 3);
  CHECK(prom.family("pw_router_gateway_overhead_seconds").type == "histogram");
  CHECK(prom.value("process_resident_memory_bytes") > 0);
  CHECK(prom.value("process_open_fds") > 0);
  CHECK(prom.value("process_start_time_seconds") > 1.6e9);
  CHECK(prom.has("pw_router_build_info"));
  // Counters end in _total (Prometheus naming).
  for (const auto& [name, fam] : prom.families)
    if (fam.type == "counter")
      CHECK(name.ends_with("_total"));
}

TEST_CASE("a client's scrape holds only its own series") {
  auto snap = snapshot_of(sample_shard());
  auto prom = parse_exposition(render_prometheus(snap, {false, "bob"}));
  for (const auto& s : prom.all()) {
    if (s.labels.count("client"))
      CHECK(s.labels.at("client") == "bob");
  }
  CHECK(prom.value("pw_router_requests_total", {{"endpoint", "chat"},
                                                {"model", ""},
                                                {"client", "bob"},
                                                {"status", "400"}})
        == 1);
  // Aggregates over every tenant are for admins only.
  CHECK_FALSE(prom.has("pw_router_request_duration_seconds"));
  CHECK_FALSE(prom.has("pw_router_fallbacks_total"));
  CHECK_FALSE(prom.has("pw_router_plugin_blocks_total"));
  CHECK_FALSE(prom.has("process_resident_memory_bytes"));
  CHECK(prom.has("pw_router_build_info"));
  // A client with no traffic sees empty families, still well formed.
  auto none = parse_exposition(render_prometheus(snap, {false, "carol"}));
  CHECK(none.family("pw_router_requests_total").samples.empty());
}

TEST_CASE("the JSON usage shape is scoped like the text") {
  auto snap = snapshot_of(sample_shard());
  auto all = nlohmann::json::parse(render_usage_json(snap, {true, ""}));
  CHECK(all["uptime_seconds"] == 42);
  // The 401 has no client: it is in the text, not in the usage shape.
  CHECK(all["totals"]["requests"] == 3);
  CHECK(all["totals"]["errors"] == 1);
  CHECK_FALSE(all["by_client"].contains(""));
  CHECK(all["totals"]["prompt_tokens"] == 17);
  CHECK(all["totals"]["total_tokens"] == 25);
  auto alice = all["by_client"]["alice"]["local"];
  CHECK(alice["requests"] == 2);
  CHECK(alice["errors"] == 0);
  CHECK(alice["completion_tokens"] == 8);
  CHECK(alice["avg_latency_ms"].get<double>() == Approx(125.5));
  auto mine = nlohmann::json::parse(render_usage_json(snap, {false, "alice"}));
  CHECK(mine["by_client"].size() == 1);
  CHECK(mine["by_client"].contains("alice"));
  CHECK(mine["totals"]["requests"] == 2);
  CHECK(mine["totals"]["errors"] == 0);
}

TEST_CASE("label values are escaped and read back unchanged") {
  metrics_shard m;
  std::string odd = "we\"ird\\name\nx";
  m.record(odd, reply_of("m", 200), microseconds{10}, microseconds{5});
  auto prom = parse_exposition(render_prometheus(snapshot_of(m), {true, ""}));
  CHECK(prom.value("pw_router_requests_total", {{"endpoint", "chat"},
                                                {"model", "m"},
                                                {"client", odd},
                                                {"status", "200"}})
        == 1);
}

TEST_CASE("merged shards equal one shard that saw everything") {
  metrics_shard a;
  metrics_shard b;
  metrics_shard one;
  auto r1 = reply_of("x", 200, {{"x", "success"}}, 1, 2);
  auto r2 = reply_of("y", 502, {{"x", "failure"}, {"y", "failure"}});
  a.record("c", r1, microseconds{100}, microseconds{10});
  b.record("c", r2, microseconds{2'000}, microseconds{20});
  one.record("c", r1, microseconds{100}, microseconds{10});
  one.record("c", r2, microseconds{2'000}, microseconds{20});
  a.merge(b);
  CHECK(render_prometheus(snapshot_of(a, false), {true, ""})
        == render_prometheus(snapshot_of(one, false), {true, ""}));
  CHECK(render_usage_json(snapshot_of(a), {true, ""})
        == render_usage_json(snapshot_of(one), {true, ""}));
  CHECK(a.requests == one.requests);
  CHECK(a.attempts == one.attempts);
  CHECK(a.fallbacks == one.fallbacks);
  CHECK(a.overhead.counts() == one.overhead.counts());
}

TEST_CASE("the overhead excludes upstream time and is never negative") {
  http_reply r;
  r.upstream_total = microseconds{900};
  CHECK(overhead_of(r, microseconds{1'000}) == microseconds{100});
  CHECK(overhead_of(r, microseconds{500}) == microseconds{0});
}

TEST_CASE("the test parser refuses what a scraper could misread") {
  using pw::test::parse_exposition;
  auto refuses = [](std::string text) { CHECK_THROWS(parse_exposition(text)); };
  refuses("x_total 1\n");                          // no TYPE
  refuses("# TYPE x_total counter\nx_total 1");    // no newline
  refuses("# TYPE x_total counter\nx_total -1\n"); // negative
  refuses("# TYPE x counter\nx 1\nx 2\n");         // duplicate
  refuses("# TYPE x counter\nx{a=\"1\\q\"} 1\n");  // bad escape
  refuses("# TYPE x counter\nx{a=1} 1\n");         // unquoted
  refuses("# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# TYPE x gauge\n");
  refuses("# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
          "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"); // not cumulative
  refuses("# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
          "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n"); // +Inf != count
  refuses("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n");
  CHECK_NOTHROW(parse_exposition("# HELP x_total Help.\n# TYPE x_total "
                                 "counter\nx_total{a=\"q\\\"\"} 1\n"));
}
