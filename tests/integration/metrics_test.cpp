// GET /metrics through the real binary: the Prometheus text parsed by a
// strict parser, counters that only grow, histograms that add up, tenant
// scoping, pw-router's JSON shape, and X-Gateway-Overhead-Us on every chat
// answer.

#include "tests/integration/common.hpp"
#include "tests/support/exposition.hpp"

#include <cmath>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

fake_handler always_503() {
  return [](const fake_request&) {
    fake_response r;
    r.status = 503;
    r.body = R"({"error":{"message":"overloaded"}})";
    return r;
  };
}

std::string metrics_config(const std::string& primary,
                           const std::string& backup,
                           const std::string& server_extra = "") {
  return make_config(echo_model + openai_model("primary", primary)
                       + openai_model("backup", backup),
                     "echo", "  io_threads: 2\n" + server_extra,
                     "  fallback_chains:\n    main: [\"primary\", "
                     "\"backup\"]\n"
                     "health:\n  check_interval_seconds: 0\n"
                     "  unhealthy_threshold: 2\n"
                     "  cooldown_seconds: 600\n");
}

prom_text scrape(const gateway_process& gw, const std::string& key) {
  auto res = http_request(gw.port(), "GET", "/metrics", "",
                          {{"Authorization", "Bearer " + key}});
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type")
        == "text/plain; version=0.0.4; charset=utf-8");
  return parse_exposition(res.body);
}

http_response chat(const gateway_process& gw, const std::string& key,
                   const std::string& model) {
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body(model), auth_json(key));
  // Every answer to a chat request says how long the gateway took.
  auto overhead = res.header("x-gateway-overhead-us");
  CHECK_FALSE(overhead.empty());
  CHECK(overhead.find_first_not_of("0123456789") == std::string::npos);
  return res;
}

/// The chat requests counted for `model`, `client` and `status`.
double requests(const prom_text& p, const std::string& model,
                const std::string& client, const std::string& status) {
  return requests_total(p, "chat", status, model, client);
}

/// Every counter series of `before` is present in `after` and not smaller;
/// so are histogram buckets and counts.
void check_monotonic(const prom_text& before, const prom_text& after) {
  for (const auto& [name, fam] : before.families) {
    if (fam.type != "counter" && fam.type != "histogram")
      continue;
    for (const auto& s : fam.samples) {
      if (s.name.ends_with("_sum"))
        continue;
      auto now = after.value(s.name, s.labels);
      INFO(s.name);
      REQUIRE_FALSE(std::isnan(now));
      CHECK(now >= s.value);
    }
  }
}

} // namespace

TEST_CASE("/metrics: every family for an admin, counters that only grow") {
  fake_upstream primary{always_503()};
  fake_upstream backup{answer_ok()};
  gateway_process gw{
    metrics_config(primary.base_url() + "/v1", backup.base_url() + "/v1")};
  // Three requests to the failing primary: two fail and fall back to the
  // backup, and open the primary's circuit; the ROUTER then leaves the
  // primary out of the third request's route.
  for (int i = 0; i < 3; ++i)
    CHECK(chat(gw, full_key, "primary").status == 200);
  for (int i = 0; i < 2; ++i)
    CHECK(chat(gw, limited_key, "echo").status == 200);
  CHECK(chat(gw, limited_key, "backup").status == 403);
  CHECK(chat(gw, "sk-nobody", "echo").status == 401);
  // A stream carries the header too, with its first bytes.
  {
    raw_connection conn{gw.port()};
    auto body = R"({"model":"echo","stream":true,"messages":[{"role":"user",)"
                R"("content":"hi"}]})";
    REQUIRE(conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer "
                      + full_key
                      + "\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\nContent-Length: "
                      + std::to_string(std::string_view{body}.size())
                      + "\r\n\r\n" + body));
    bool closed = false;
    auto raw = conn.read_until_close(10s, closed);
    CHECK(raw.starts_with("HTTP/1.1 200"));
    CHECK(raw.find("X-Gateway-Overhead-Us: ") != std::string::npos);
    CHECK(raw.find("data: [DONE]") != std::string::npos);
  }
  auto first = scrape(gw, admin_key);
  CHECK(requests(first, "backup", "full", "200") == 3);
  CHECK(requests(first, "echo", "limited", "200") == 2);
  CHECK(requests(first, "echo", "full", "200") == 1);
  CHECK(requests(first, "", "limited", "403") == 1);
  CHECK(requests(first, "", "", "401") == 1);
  CHECK(first.value("pw_router_fallbacks_total",
                    {{"from", "primary"}, {"to", "backup"}})
        == 2);
  CHECK(first.value("pw_router_upstream_attempts_total",
                    {{"model", "primary"}, {"outcome", "failure"}})
        == 2);
  CHECK(first.value("pw_router_upstream_attempts_total",
                    {{"model", "backup"}, {"outcome", "success"}})
        == 3);
  CHECK(first.value("pw_router_circuit_state", {{"model", "primary"}}) == 2);
  CHECK(first.value("pw_router_circuit_state", {{"model", "backup"}}) == 0);
  CHECK(first.value("pw_router_in_flight", {{"model", "backup"}}) == 0);
  CHECK(first.value("pw_router_request_duration_seconds_count",
                    {{"model", "backup"}})
        == 3);
  CHECK(first.value("pw_router_gateway_overhead_seconds_count") == 8);
  CHECK(
    first.value("pw_router_tokens_total",
                {{"model", "backup"}, {"client", "full"}, {"kind", "prompt"}})
    > 0);
  // One series per failure boundary, all zero on a healthy run, and no
  // log line dropped.
  CHECK(first.family("pw_router_internal_errors_total").samples.size() == 7);
  CHECK(
    first.value("pw_router_internal_errors_total", {{"boundary", "session"}})
    == 0);
  CHECK(first.value("pw_router_log_lines_dropped_total") == 0);
  CHECK(first.family("pw_router_config_info").samples.size() == 1);
  CHECK(first.family("pw_router_config_info").samples[0].labels.at("sha256")
        == health_of(gw.port())["config_sha256"]);
  CHECK(first.value("process_resident_memory_bytes") > 1e6);
  CHECK(first.value("process_open_fds") > 0);
  // More traffic: nothing goes down, the request counters go up.
  for (int i = 0; i < 4; ++i)
    CHECK(chat(gw, limited_key, "echo").status == 200);
  CHECK(chat(gw, full_key, "backup").status == 200);
  auto second = scrape(gw, admin_key);
  check_monotonic(first, second);
  CHECK(requests(second, "echo", "limited", "200") == 6);
  CHECK(requests(second, "backup", "full", "200") == 4);
  CHECK(second.value("pw_router_gateway_overhead_seconds_count") == 13);
  CHECK(second.value("process_cpu_seconds_total")
        >= first.value("process_cpu_seconds_total"));
}

TEST_CASE("/metrics: a client key sees only its own client's series") {
  fake_upstream primary{always_503()};
  fake_upstream backup{answer_ok()};
  gateway_process gw{
    metrics_config(primary.base_url() + "/v1", backup.base_url() + "/v1")};
  CHECK(chat(gw, full_key, "backup").status == 200);
  CHECK(chat(gw, full_key, "primary").status == 200);
  CHECK(chat(gw, limited_key, "echo").status == 200);
  auto mine = scrape(gw, limited_key);
  size_t own = 0;
  for (const auto& s : mine.all()) {
    if (s.labels.count("client")) {
      CHECK(s.labels.at("client") == "limited");
      ++own;
    }
    // No series names another client's model traffic either.
    CHECK((s.labels.count("model") == 0 || s.labels.at("model") == "echo"));
  }
  CHECK(own >= 3); // requests_total and two tokens_total series
  CHECK_FALSE(mine.has("pw_router_fallbacks_total"));
  CHECK_FALSE(mine.has("pw_router_request_duration_seconds"));
  CHECK_FALSE(mine.has("pw_router_circuit_state"));
  CHECK_FALSE(mine.has("pw_router_internal_errors_total"));
  // The same for pw-router's JSON shape.
  auto json = http_request(gw.port(), "GET", "/metrics", "",
                           {{"Authorization", "Bearer " + limited_key},
                            {"Accept", "application/json"}});
  REQUIRE(json.status == 200);
  CHECK(json.header("content-type") == "application/json");
  auto body = json.json();
  CHECK(body["by_client"].size() == 1);
  CHECK(body["by_client"]["limited"]["echo"]["requests"] == 1);
  CHECK(body["totals"]["requests"] == 1);
  CHECK(body["uptime_seconds"].is_number_integer());
  // An admin sees both tenants in JSON.
  auto all = http_request(gw.port(), "GET", "/metrics", "",
                          {{"Authorization", "Bearer " + admin_key},
                           {"Accept", "application/json"}})
               .json();
  CHECK(all["totals"]["requests"] == 3);
  CHECK(all["by_client"]["full"]["backup"]["requests"] == 2);
  // Without a key: 401, nothing shown.
  auto anonymous = http_request(gw.port(), "GET", "/metrics");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.body.find("pw_router") == std::string::npos);
  CHECK(http_request(gw.port(), "POST", "/metrics", "",
                     {{"Authorization", "Bearer " + admin_key}})
          .status
        == 405);
}

TEST_CASE("/metrics with server.metrics_public needs no key") {
  fake_upstream primary{always_503()};
  fake_upstream backup{answer_ok()};
  gateway_process gw{metrics_config(primary.base_url() + "/v1",
                                    backup.base_url() + "/v1",
                                    "  metrics_public: true\n")};
  CHECK(chat(gw, limited_key, "echo").status == 200);
  auto res = http_request(gw.port(), "GET", "/metrics");
  REQUIRE(res.status == 200);
  auto prom = parse_exposition(res.body);
  CHECK(requests(prom, "echo", "limited", "200") == 1);
  CHECK(prom.has("pw_router_circuit_state"));
}

TEST_CASE("a 504 at the request deadline claims no gateway overhead") {
  // The upstream answers after the deadline: the 504 comes from the
  // bridge's timer, which cannot know where the time went.
  fake_upstream slow{[](const fake_request&) {
    fake_response r;
    r.delay = 2s;
    r.body = openai_completion("m", "late");
    return r;
  }};
  gateway_process gw{make_config(openai_model("m", slow.base_url()), "m",
                                 "  request_deadline_seconds: 0.3\n")};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("m"), auth_json(full_key));
  CHECK(res.status == 504);
  CHECK(res.header("x-gateway-overhead-us").empty());
  auto prom = scrape(gw, admin_key);
  // Counted as a request, with its duration, but not as overhead.
  CHECK(requests(prom, "", "full", "504") == 1);
  CHECK(prom.value("pw_router_request_duration_seconds_count", {{"model", ""}})
        == 1);
  CHECK(prom.value("pw_router_gateway_overhead_seconds_count") == 0);
}
