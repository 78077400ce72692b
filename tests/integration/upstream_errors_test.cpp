// How upstream failures reach the client: relayed 4xx, 429 with
// Retry-After, and 502 for everything that is the provider's fault.

#include "tests/integration/common.hpp"

using namespace pw::test;

namespace {

fake_handler answer(unsigned status, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers
                    = {}) {
  return [=](const fake_request&) {
    fake_response r;
    r.status = status;
    r.body = body;
    r.headers = headers;
    return r;
  };
}

http_response ask(const gateway_process& gw) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      chat_body("gpt"), auth_json(full_key));
}

} // namespace

TEST_CASE("upstream client errors are relayed with their status and message") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  SECTION("400 with an OpenAI envelope keeps message, type, param, code") {
    upstream.set_handler(answer(
      400,
      R"({"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})"));
    auto res = ask(gw);
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["message"] == "This model's maximum context length is 8192 tokens");
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["param"] == "messages");
    CHECK(e["code"] == "context_length_exceeded");
  }
  SECTION("404 and 422 keep their status") {
    upstream.set_handler(
      answer(404, R"({"error":{"message":"no such model"}})"));
    auto res = ask(gw);
    CHECK(res.status == 404);
    CHECK(error_of(res)["message"] == "no such model");
    upstream.set_handler(answer(422, "not json at all"));
    res = ask(gw);
    CHECK(res.status == 422);
    CHECK(error_of(res)["code"] == "upstream_rejected");
  }
  SECTION("401 from the provider is about the gateway's key and never "
          "echoes it") {
    upstream.set_handler(
      answer(401, R"({"error":{"message":"Incorrect API key provided: )"
                    + upstream_key + R"("}})"));
    auto res = ask(gw);
    CHECK(res.status == 401);
    auto e = error_of(res);
    CHECK(e["type"] == "upstream_auth_error");
    CHECK(res.body.find(upstream_key) == std::string::npos);
  }
  SECTION("a provider message that contains the key is scrubbed") {
    upstream.set_handler(
      answer(400, R"({"error":{"message":"bad request with key )" + upstream_key
                    + R"( inside"}})"));
    auto res = ask(gw);
    CHECK(res.status == 400);
    CHECK(res.body.find(upstream_key) == std::string::npos);
    CHECK(error_of(res)["message"] == "bad request with key *** inside");
  }
  SECTION("429 is relayed with the upstream's Retry-After") {
    upstream.set_handler(answer(429, R"({"error":{"message":"slow down"}})",
                                {{"Retry-After", "7"}}));
    auto res = ask(gw);
    CHECK(res.status == 429);
    CHECK(res.header("retry-after") == "7");
    CHECK(error_of(res)["type"] == "rate_limit_error");
  }
  SECTION("5xx becomes 502 without the provider's body") {
    upstream.set_handler(answer(503, "internal details that stay inside"));
    auto res = ask(gw);
    CHECK(res.status == 502);
    auto e = error_of(res);
    CHECK(e["type"] == "upstream_error");
    CHECK(res.body.find("internal details") == std::string::npos);
    upstream.set_handler(answer(500, "{}"));
    CHECK(ask(gw).status == 502);
  }
  SECTION("a 2xx that is not a chat completion becomes 502") {
    upstream.set_handler(answer(200, "<html>gateway page</html>"));
    auto res = ask(gw);
    CHECK(res.status == 502);
    CHECK(error_of(res)["message"].get<std::string>().find("malformed")
          != std::string::npos);
    upstream.set_handler(
      answer(200, R"({"id":"x","object":"chat.completion"})"));
    CHECK(ask(gw).status == 502);
  }
  SECTION("an upstream that closes without answering becomes 502") {
    upstream.set_handler([](const fake_request&) {
      fake_response r;
      r.drop = true;
      return r;
    });
    auto res = ask(gw);
    CHECK(res.status == 502);
    CHECK(error_of(res)["code"] == "upstream_failed");
  }
  // Failures are visible in /health, without secrets.
  auto health = health_of(gw.port());
  CHECK(health["models"]["gpt"]["requests"].get<int>() >= 1);
  CHECK(health.dump().find(upstream_key) == std::string::npos);
}

TEST_CASE("a slow upstream times out with 502 after timeout_seconds") {
  fake_upstream upstream{[](const fake_request& req) {
    auto r = answer_ok()(req);
    r.delay = std::chrono::seconds{5};
    return r;
  }};
  gateway_process gw{make_config(
    openai_model("gpt", upstream.base_url(), "    timeout_seconds: 0.3\n"),
    "gpt")};
  auto res = ask(gw);
  CHECK(res.status == 502);
  CHECK(error_of(res)["message"].get<std::string>().find("timed out")
        != std::string::npos);
  auto health = health_of(gw.port());
  CHECK(health["models"]["gpt"]["failures"] == 1);
  CHECK(health["models"]["gpt"]["in_flight"] == 0);
}

TEST_CASE("an unreachable upstream gives 502") {
  auto port = closed_port();
  gateway_process gw{make_config(
    openai_model("gpt", "http://127.0.0.1:" + std::to_string(port) + "/v1"),
    "gpt")};
  auto res = ask(gw);
  CHECK(res.status == 502);
  auto e = error_of(res);
  CHECK(e["code"] == "upstream_failed");
  CHECK(e["message"].get<std::string>().find("refused") != std::string::npos);
}

TEST_CASE("interim 1xx answers are skipped and never left in the pool") {
  fake_upstream upstream{[](const fake_request& req) {
    auto r = answer_ok("final answer")(req);
    r.interim = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n";
    return r;
  }};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  http_client client{gw.port()};
  for (int i = 0; i < 3; ++i) {
    auto res = client.request("POST", "/v1/chat/completions", chat_body("gpt"),
                              auth_json(full_key));
    REQUIRE(res.status == 200);
    CHECK(res.json()["choices"][0]["message"]["content"] == "final answer");
  }
  CHECK(upstream.requests().size() == 3);
}

TEST_CASE("an upstream that closes each connection after answering, without "
          "saying so, loses no request and runs none twice") {
  // The answer keeps the connection alive by HTTP/1.1's rules, then the
  // upstream closes it: the gateway pools it and, a moment later, takes it
  // without a look (docs/performance.md), finds it closed before any
  // answer, and sends the request once more on a new connection.
  fake_upstream upstream{[](const fake_request&) {
    auto body = openai_completion("gpt-4o", "once");
    fake_response r;
    r.raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "Content-Length: "
            + std::to_string(body.size()) + "\r\n\r\n" + body;
    return r;
  }};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  http_client client{gw.port()};
  for (int i = 0; i < 5; ++i) {
    auto res = client.request("POST", "/v1/chat/completions", chat_body("gpt"),
                              auth_json(full_key));
    REQUIRE(res.status == 200);
    CHECK(res.json()["choices"][0]["message"]["content"] == "once");
  }
  CHECK(upstream.requests().size() == 5);
  CHECK(upstream.connections_opened() == 5);
  CHECK(health_of(gw.port())["models"]["gpt"]["failures"] == 0);
}

TEST_CASE("the request deadline answers 504 while the upstream is still "
          "busy") {
  fake_upstream upstream{[](const fake_request& req) {
    auto r = answer_ok()(req);
    r.delay = std::chrono::seconds{5};
    return r;
  }};
  gateway_process gw{make_config(openai_model("gpt", upstream.base_url()),
                                 "gpt", "  request_deadline_seconds: 0.3\n")};
  auto res = ask(gw);
  CHECK(res.status == 504);
  CHECK(error_of(res)["type"] == "timeout_error");
  // The gateway keeps serving.
  CHECK(http_request(gw.port(), "GET", "/health").status == 200);
}
