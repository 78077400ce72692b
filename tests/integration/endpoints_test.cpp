// /health, /v1/models, unknown paths and methods, headers on every response,
// request ids and malformed bodies.

#include "tests/integration/common.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sys/wait.h>

using namespace pw::test;

TEST_CASE("/health shows every model's actor state without calling an "
          "upstream") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{
    make_config(echo_model + openai_model("gpt", upstream.base_url()), "echo")};
  auto j = health_of(gw.port());
  CHECK(j["status"] == "healthy");
  CHECK(j["version"].is_string());
  REQUIRE(j["models"].size() == 2);
  for (const auto* alias : {"echo", "gpt"}) {
    auto m = j["models"][alias];
    CHECK(m["status"] == "healthy");
    CHECK(m["circuit"] == "closed");
    CHECK(m["in_flight"] == 0);
    CHECK(m["requests"] == 0);
    CHECK(m["last_error"].is_null());
  }
  CHECK(j["models"]["gpt"]["provider"] == "openai");
  CHECK(upstream.requests().empty());
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("gpt"), auth_json(full_key))
            .status
          == 200);
  auto after = health_of(gw.port());
  CHECK(after["models"]["gpt"]["requests"] == 1);
  CHECK(after["models"]["gpt"]["successes"] == 1);
  CHECK(after["models"]["gpt"]["last_status"] == 200);
  // HEAD answers with headers only.
  http_client client{gw.port()};
  auto head = client.request("HEAD", "/health");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(std::stoul(head.header("content-length")) > 0);
}

TEST_CASE("/health's latency percentiles come from the model's calls") {
  // Nine quick answers and one that waits 400 ms: the p99 of ten calls is
  // the slow one, the p50 a quick one.
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto ok = answer_ok();
  fake_upstream upstream{[calls, ok](const fake_request& req) {
    auto r = ok(req);
    if (++*calls == 5)
      r.delay = std::chrono::milliseconds{400};
    return r;
  }};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  for (int i = 0; i < 10; ++i)
    REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                         chat_body("gpt"), auth_json(full_key))
              .status
            == 200);
  auto m = health_of(gw.port())["models"]["gpt"];
  CHECK(m["requests"] == 10);
  CHECK(m["p99_latency_ms"].get<double>() >= 400.0);
  CHECK(m["p50_latency_ms"].get<double>() < 400.0);
  CHECK(m["p50_latency_ms"].get<double>() > 0.0);
  CHECK(m["p50_latency_ms"].get<double>() <= m["p99_latency_ms"].get<double>());
}

TEST_CASE("unknown paths and wrong methods get 404 and 405 envelopes") {
  gateway_process gw{make_config(echo_model, "echo")};
  auto res = http_request(gw.port(), "POST", "/v1/images/generations", "{}",
                          auth_json(full_key));
  CHECK(res.status == 404);
  CHECK(error_of(res)["type"] == "not_found_error");
  res = http_request(gw.port(), "GET", "/v1/chat/completions", "",
                     auth_json(full_key));
  CHECK(res.status == 405);
  CHECK(res.header("allow") == "POST");
  CHECK(error_of(res)["code"] == "method_not_allowed");
  res = http_request(gw.port(), "DELETE", "/health");
  CHECK(res.status == 405);
  CHECK(res.header("allow") == "GET");
}

TEST_CASE("every response carries the request id and the security headers") {
  gateway_process gw{make_config(echo_model, "echo")};
  SECTION("a sane client request id is echoed") {
    auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                            chat_body("echo"),
                            with_request_id("client-id-123.abc_XYZ"));
    CHECK(res.header("x-request-id") == "client-id-123.abc_XYZ");
  }
  SECTION("a missing, too long or odd request id is replaced") {
    auto res = http_request(gw.port(), "GET", "/health");
    auto generated = res.header("x-request-id");
    CHECK(generated.size() == 32);
    auto headers = with_request_id(std::string(129, 'a'));
    res = http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("echo"), headers);
    CHECK(res.header("x-request-id").size() == 32);
    headers.back().second = "has space";
    res = http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("echo"), headers);
    CHECK(res.header("x-request-id") != "has space");
  }
  SECTION("security headers on success and error; no-store on /v1") {
    for (auto res : {http_request(gw.port(), "POST", "/v1/chat/completions",
                                  chat_body("echo"), auth_json(full_key)),
                     http_request(gw.port(), "GET", "/v1/models"),
                     http_request(gw.port(), "GET", "/nowhere")}) {
      CHECK(res.header("x-content-type-options") == "nosniff");
      CHECK(res.header("x-frame-options") == "DENY");
      CHECK(res.header("referrer-policy") == "no-referrer");
      CHECK_FALSE(res.header("x-request-id").empty());
    }
    CHECK(http_request(gw.port(), "GET", "/v1/models").header("cache-control")
          == "no-store");
    CHECK(http_request(gw.port(), "GET", "/health").header("cache-control")
          == "");
  }
}

TEST_CASE("malformed chat bodies get 400 with the field at fault") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  auto post = [&](const std::string& body) {
    return http_request(gw.port(), "POST", "/v1/chat/completions", body,
                        auth_json(full_key));
  };
  struct bad_case {
    std::string body;
    std::string param;
  };
  std::vector<bad_case> cases = {
    {"{not json", ""},
    {"[1,2,3]", ""},
    {"\"just a string\"", ""},
    {R"({"model":"gpt"})", "messages"},
    {R"({"model":"gpt","messages":[]})", "messages"},
    {R"({"model":"gpt","messages":"hi"})", "messages"},
    {R"({"model":"gpt","messages":[42]})", "messages[0]"},
    {R"({"model":"gpt","messages":[{"content":"x"}]})", "messages[0].role"},
    {R"({"model":7,"messages":[{"role":"user","content":"x"}]})", "model"},
    {R"({"model":"gpt","stream":"yes","messages":[{"role":"user","content":"x"}]})",
     "stream"},
    {"{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":"
     "\"\xff\"}]}",
     ""},
    {std::string(100, '[') + std::string(100, ']'), ""},
  };
  for (const auto& c : cases) {
    INFO(c.body.substr(0, 80));
    auto res = post(c.body);
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["type"] == "invalid_request_error");
    if (c.param.empty())
      CHECK(e["param"].is_null());
    else
      CHECK(e["param"] == c.param);
  }
  CHECK(upstream.requests().empty());
  CHECK(gw.running());
}

TEST_CASE("/health/live and /health/ready answer probes without a key") {
  auto url = "http://127.0.0.1:" + std::to_string(closed_port());
  gateway_process gw{make_config(echo_model + openai_model("down", url), "echo",
                                 "",
                                 "health:\n  check_interval_seconds: 0\n"
                                 "  unhealthy_threshold: 1\n"
                                 "  cooldown_seconds: 600\n")};
  auto live = http_request(gw.port(), "GET", "/health/live");
  CHECK(live.status == 200);
  CHECK(live.json()["status"] == "alive");
  auto ready = http_request(gw.port(), "GET", "/health/ready");
  CHECK(ready.status == 200);
  CHECK(ready.json()["models_admitting"] == 2);
  // One model's breaker opens: still ready, one admits.
  auto failed = http_request(gw.port(), "POST", "/v1/chat/completions",
                             chat_body("down"), auth_json(full_key));
  CHECK(failed.status == 502);
  ready = http_request(gw.port(), "GET", "/health/ready");
  CHECK(ready.status == 200);
  CHECK(ready.json()["models_admitting"] == 1);
  CHECK(http_request(gw.port(), "POST", "/health/live").status == 405);
}

TEST_CASE("/health/ready is 503 when no model admits traffic") {
  auto url = "http://127.0.0.1:" + std::to_string(closed_port());
  gateway_process gw{make_config(openai_model("down", url), "down", "",
                                 "health:\n  check_interval_seconds: 0\n"
                                 "  unhealthy_threshold: 1\n"
                                 "  cooldown_seconds: 600\n")};
  CHECK(http_request(gw.port(), "GET", "/health/ready").status == 200);
  http_request(gw.port(), "POST", "/v1/chat/completions", chat_body("down"),
               auth_json(full_key));
  auto ready = http_request(gw.port(), "GET", "/health/ready");
  CHECK(ready.status == 503);
  CHECK(ready.json()["error"]["code"] == "no_model_available");
  CHECK(http_request(gw.port(), "GET", "/health/live").status == 200);
}

namespace {

/// The Dockerfile's HEALTHCHECK command (its exec-form JSON array).
std::vector<std::string> docker_healthcheck() {
  std::ifstream in{std::string{PW_SOURCE_DIR} + "/Dockerfile"};
  std::string line;
  bool in_healthcheck = false;
  while (std::getline(in, line)) {
    if (line.starts_with("HEALTHCHECK"))
      in_healthcheck = true;
    auto cmd = line.find("CMD [");
    if (in_healthcheck && cmd != std::string::npos)
      return nlohmann::json::parse(line.substr(cmd + 4))
        .get<std::vector<std::string>>();
  }
  return {};
}

/// Runs the health check as Docker would, against `port`; its exit code.
int run_healthcheck(const std::vector<std::string>& argv, uint16_t port) {
  REQUIRE(argv.size() == 3);
  REQUIRE(argv[0] == "bash");
  REQUIRE(argv[1] == "-c");
  auto script = write_temp_file(argv[2], ".sh");
  auto command = "PW_ROUTER_PORT=" + std::to_string(port) + " timeout 5 bash "
                 + script + " </dev/null >/dev/null 2>&1";
  auto status = std::system(command.c_str());
  std::filesystem::remove(script);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

TEST_CASE("the Dockerfile's HEALTHCHECK passes on a live gateway and fails "
          "without one") {
  auto argv = docker_healthcheck();
  REQUIRE_FALSE(argv.empty());
  CHECK(argv[2].find("/health/live") != std::string::npos);
  gateway_process gw{make_config(echo_model, "echo")};
  CHECK(run_healthcheck(argv, gw.port()) == 0);
  CHECK(run_healthcheck(argv, closed_port()) != 0);
}
