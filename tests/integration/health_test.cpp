// GET /health shows every actor (docs/operations.md): a PLUGIN that ends is
// restarted and shows it, a spent restart budget shows, a slow PLUGIN shows
// its timeouts, the SESSION count returns to zero, and only an admin key
// sees more than a load balancer needs. The dev build's PW_ROUTER_FAULTS
// `plugin_crash:N` ends a PLUGIN actor on each of its next N calls.

#include "tests/integration/common.hpp"

#include <set>
#include <thread>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

/// A pre stage of `n` regex entries that tag and never block.
std::string regex_stage(int n, bool fail_open = false) {
  std::string out = "middleware:\n  pre_request:\n";
  for (int i = 0; i < n; ++i)
    out += std::string{"    - plugin: regex\n"}
           + (fail_open ? "      on_error: continue\n" : "")
           + "      config: {rules: [{pattern: 'zzz', tag: t}]}\n";
  return out;
}

http_response chat(const gateway_process& gw, const std::string& model = "echo",
                   const std::string& key = full_key) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      chat_body(model), auth_json(key));
}

/// Polls the admin view until `done` holds, at most 100 times 50 ms apart
/// (for counts that settle just after the answer: a SESSION ends after it
/// answered).
template <class Pred>
nlohmann::json health_when(uint16_t port, Pred done) {
  auto h = health_of(port);
  for (int i = 0; i < 100 && !done(h); ++i) {
    std::this_thread::sleep_for(50ms);
    h = health_of(port);
  }
  return h;
}

bool has_reason(const nlohmann::json& h, const std::string& part) {
  for (const auto& r : h["reasons"])
    if (r.get<std::string>().find(part) != std::string::npos)
      return true;
  return false;
}

} // namespace

TEST_CASE("a PLUGIN ended twice shows its restarts and a degraded status, "
          "then recovers") {
  gateway_process gw{make_config(echo_model, "echo", "", regex_stage(1)),
                     {{"PW_ROUTER_FAULTS", "plugin_crash:2"}}};
  auto before = health_of(gw.port());
  REQUIRE(before["plugins"].size() == 1);
  CHECK(before["plugins"][0]["status"] == "running");
  CHECK(before["plugins"][0]["restarts"] == 0);
  CHECK(before["status"] == "healthy");
  CHECK(before["reasons"].empty());

  // The first end: restarted at once.
  auto first = chat(gw);
  CHECK(first.status == 503);
  CHECK(error_of(first)["message"].get<std::string>().find(
          "regex plugin is not running")
        != std::string::npos);
  REQUIRE(gw.wait_for_output("\"event\":\"plugin_restarted\""));
  // The second, within a minute of the first: restarted after 1 s.
  CHECK(chat(gw).status == 503);
  REQUIRE(gw.wait_for_output("\"event\":\"plugin_restart_delayed\""));
  auto down = health_of(gw.port());
  const auto& p = down["plugins"][0];
  CHECK(p["status"] == "down");
  CHECK(p["restarts"] == 1);
  CHECK(p["down_since"].is_string());
  CHECK(p["restart_at"].is_string());
  CHECK(p["calls"] == 2);
  CHECK(p["failures"] == 2);
  CHECK(p["last_error"] == "is not running");
  CHECK(p["plugin"] == "regex");
  CHECK(p["entry"] == "middleware.pre_request[0]");
  CHECK(down["status"] == "degraded");
  CHECK(has_reason(down, "plugin pre[0] (regex): down since"));
  CHECK(down["supervisor"]["restarts_last_minute"] == 2);
  CHECK(down["supervisor"]["restart_budget_left"] == 18);
  // The public view says degraded too, without the reasons.
  auto open = http_request(gw.port(), "GET", "/health").json();
  CHECK(open["status"] == "degraded");
  CHECK_FALSE(open.contains("reasons"));
  // Meanwhile its requests get its `on_error` (block): refused, not hung.
  CHECK(chat(gw).status == 503);

  REQUIRE(gw.wait_for_output("\"restarts\":2"));
  auto after = health_of(gw.port());
  CHECK(after["plugins"][0]["status"] == "running");
  CHECK(after["plugins"][0]["restarts"] == 2);
  CHECK(after["plugins"][0]["down_since"].is_null());
  CHECK(after["status"] == "healthy");
  CHECK(chat(gw).status == 200);
  CHECK(health_of(gw.port())["plugins"][0]["calls"] == 4);
}

TEST_CASE("a spent restart budget shows, and names what stays down until a "
          "reload") {
  // One request passes 21 entries that each end on their call: 20 are
  // restarted, the 21st is left down (`on_error: continue` lets the
  // request through every one).
  gateway_process gw{make_config(echo_model, "echo", "", regex_stage(21, true)),
                     {{"PW_ROUTER_FAULTS", "plugin_crash:21"}}};
  CHECK(chat(gw).status == 200);
  REQUIRE(gw.wait_for_output("\"event\":\"plugin_given_up\""));
  auto h = health_of(gw.port());
  CHECK(h["status"] == "degraded");
  CHECK(h["supervisor"]["restart_budget_left"] == 0);
  CHECK(h["supervisor"]["restarts_last_minute"] == 20);
  CHECK(h["supervisor"]["given_up"]
        == nlohmann::json::array({"plugin pre[20] (regex)"}));
  CHECK(has_reason(h, "restart budget spent"));
  CHECK(has_reason(h, "plugin pre[20] (regex): down until a reload"));
  CHECK(h["plugins"][20]["status"] == "down");
  CHECK(h["plugins"][20]["restart_at"].is_null());
  CHECK(h["plugins"][19]["status"] == "running");
  // A reload starts it again.
  gw.signal(SIGHUP);
  REQUIRE(gw.wait_for_output("\"event\":\"config_reloaded\""));
  auto reloaded = health_of(gw.port());
  CHECK(reloaded["plugins"][20]["status"] == "running");
  CHECK(reloaded["supervisor"]["given_up"].empty());
  CHECK(reloaded["supervisor"]["generation"] == 2);
}

TEST_CASE("a slow PLUGIN shows its timeouts and the last one's words") {
  fake_upstream decider{[](const fake_request&) {
    fake_response r;
    r.delay = 1500ms;
    r.body = R"({"action":"continue"})";
    return r;
  }};
  auto middleware = "middleware:\n"
                    "  pre_request:\n"
                    "    - plugin: http\n"
                    "      timeout_ms: 200\n"
                    "      on_error: continue\n"
                    "      config:\n"
                    "        url: \""
                    + decider.base_url() + "/decide\"\n";
  gateway_process gw{make_config(echo_model, "echo", "", middleware)};
  CHECK(chat(gw).status == 200);
  CHECK(chat(gw).status == 200);
  auto h = health_of(gw.port());
  const auto& p = h["plugins"][0];
  CHECK(p["plugin"] == "http");
  CHECK(p["status"] == "running");
  CHECK(p["calls"] == 2);
  CHECK(p["timeouts"] == 2);
  CHECK(p["failures"] == 0);
  CHECK(p["last_error"] == "did not answer within 200 ms");
  CHECK(p["last_error_at"].is_string());
  CHECK(p["p50_ms"].get<double>() >= 200.0);
  // Timeouts alone do not make the gateway degraded: the entry runs.
  CHECK(h["status"] == "healthy");
}

TEST_CASE("the SESSION count returns to zero after load, and says how each "
          "one ended") {
  fake_upstream slow{[](const fake_request&) {
    fake_response r;
    r.delay = 3000ms;
    r.body = openai_completion("upstream-slow", "late");
    return r;
  }};
  gateway_process gw{make_config(
    echo_model + openai_model("slow", slow.base_url()), "echo",
    "  io_threads: 2\n  request_deadline_seconds: 0.3\n", regex_stage(1))};
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        if (chat(gw).status == 200)
          ++ok;
    });
  for (auto& c : clients)
    c.join();
  CHECK(ok == 40);
  CHECK(chat(gw, "slow").status == 504);
  CHECK(chat(gw, "no-such-model").status == 404);
  // An io thread counts a request until its handler has finished, which
  // can be a moment after the client read the answer: wait for the
  // requests before this /health to drain too.
  auto in_flight_of = [](const nlohmann::json& j) {
    uint64_t n = 0;
    for (const auto& t : j["io_threads"])
      n += t["in_flight"].get<uint64_t>();
    return n;
  };
  auto h = health_when(gw.port(), [&](const nlohmann::json& j) {
    return j["sessions"]["alive"] == 0 && j["sessions"]["finished"] == 42
           && in_flight_of(j) == 1;
  });
  const auto& s = h["sessions"];
  CHECK(s["alive"] == 0);
  CHECK(s["started"] == 42);
  CHECK(s["finished"] == 42);
  CHECK(s["answered"] == 41);
  CHECK(s["deadline"] == 1);
  CHECK(s["cancelled"] == 0);
  CHECK(h["router"]["resolved"] == 41);
  CHECK(h["router"]["refused"] == 1);
  CHECK(h["router"]["mailbox"] == 0);
  CHECK(h["plugins"][0]["calls"] == 42);
  CHECK(h["plugins"][0]["blocks"] == 0);
  // Two io threads, each with its connections and requests in flight (this
  // /health request is one of them).
  REQUIRE(h["io_threads"].size() == 2);
  for (const auto& t : h["io_threads"])
    CHECK(t["connections"].is_number());
  CHECK(in_flight_of(h) == 1);
  CHECK(h["partial"].empty());
}

TEST_CASE("without an admin key /health shows the status and each model's "
          "circuit only") {
  fake_upstream failing{[](const fake_request&) {
    fake_response r;
    r.status = 500;
    r.body = R"({"error":{"message":"upstream detail 7c1e"}})";
    return r;
  }};
  auto config = make_config(echo_model + openai_model("m", failing.base_url()),
                            "echo", "", regex_stage(1));
  gateway_process gw{config};
  CHECK(chat(gw, "m").status >= 500);
  auto public_keys = std::set<std::string>{"status", "version", "models"};
  auto keys_of = [](const nlohmann::json& j) {
    std::set<std::string> out;
    for (const auto& [k, v] : j.items())
      out.insert(k);
    return out;
  };
  SECTION("no key, or a client key: the public part") {
    auto none = http_request(gw.port(), "GET", "/health");
    REQUIRE(none.status == 200);
    CHECK(none.body.find("7c1e") == std::string::npos);
    auto j = none.json();
    CHECK(keys_of(j) == public_keys);
    CHECK(keys_of(j["models"]["m"])
          == std::set<std::string>{"status", "circuit"});
    CHECK(j["models"]["m"]["circuit"].is_string());
    auto client = http_request(gw.port(), "GET", "/health", "",
                               {{"Authorization", "Bearer " + full_key}});
    CHECK(keys_of(client.json()) == public_keys);
  }
  SECTION("a key that fails is refused") {
    auto bad = http_request(gw.port(), "GET", "/health", "",
                            {{"Authorization", "Bearer sk-wrong"}});
    CHECK(bad.status == 401);
    CHECK(error_of(bad)["code"] == "invalid_api_key");
  }
  SECTION("the admin key sees every actor") {
    auto j = health_of(gw.port());
    for (const auto* part :
         {"reasons", "partial", "config_sha256", "models", "supervisor",
          "router", "plugins", "sessions", "io_threads"})
      CHECK(j.contains(part));
    CHECK(j["models"]["m"]["failures"] >= 1);
    CHECK(j["models"]["m"]["last_error"].is_string());
    CHECK(j["supervisor"]["generation"] == 1);
    CHECK(j["supervisor"]["restart_budget_per_minute"] == 20);
  }
}

TEST_CASE("server.health_details: public shows everything without a key") {
  gateway_process gw{
    make_config(echo_model, "echo", "  health_details: public\n")};
  auto j = http_request(gw.port(), "GET", "/health").json();
  CHECK(j.contains("supervisor"));
  CHECK(j.contains("sessions"));
  CHECK(j["models"]["echo"].contains("requests"));
}

TEST_CASE("the config check explains who sees /health's details") {
  auto check = [](const std::string& server_extra) {
    return run_pw_router(
      {"--check-config",
       write_temp_file(make_config(echo_model, "echo", server_extra))});
  };
  auto r = check("");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("counters, errors and actor state need an admin key "
                   "(server.health_details: admin, the default)")
        != std::string::npos);
  r = check("  health_details: public\n");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("to anyone who can connect (server.health_details: "
                   "public)")
        != std::string::npos);
  r = check("  health_details: everyone\n");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("server.health_details: must be \"admin\"")
        != std::string::npos);
}
