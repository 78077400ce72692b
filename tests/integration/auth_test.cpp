// Keys, allowlists and the per-key rate limit.

#include "tests/integration/common.hpp"

using namespace pw::test;

namespace {

std::string chat_with_auth(const std::string& authorization) {
  auto body = chat_body("echo");
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
         + authorization + "\r\nContent-Type: application/json\r\n"
         + "Content-Length: " + std::to_string(body.size())
         + "\r\nConnection: close\r\n\r\n" + body;
}

} // namespace

TEST_CASE("requests without a valid key get 401 in the OpenAI envelope") {
  gateway_process gw{make_config(echo_model, "echo")};
  auto post = [&](const header_list& headers) {
    return http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_body("echo"), headers);
  };
  SECTION("no Authorization header") {
    auto res = post({});
    CHECK(res.status == 401);
    CHECK(error_of(res)["type"] == "authentication_error");
    CHECK(res.header("www-authenticate") == "Bearer");
  }
  SECTION("another scheme") {
    auto res = post({{"Authorization", "Basic " + full_key}});
    CHECK(res.status == 401);
  }
  SECTION("an unknown key") {
    auto res = post({{"Authorization", "Bearer sk-not-a-key"}});
    CHECK(res.status == 401);
    CHECK(error_of(res)["code"] == "invalid_api_key");
  }
  SECTION("the scheme is case-insensitive") {
    CHECK(post({{"Authorization", "bearer " + full_key}}).status == 200);
    CHECK(post({{"Authorization", "BEARER " + full_key}}).status == 200);
  }
  SECTION("a non-ASCII token is a 401, never a 500") {
    for (const auto& token :
         {std::string{"sk-\xc3\xa9t\xc3\xa9"}, std::string{"\xff\xfe"}}) {
      raw_connection conn{gw.port()};
      REQUIRE(conn.send(chat_with_auth("Bearer " + token)));
      bool closed = false;
      auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
      INFO(reply);
      CHECK(reply.starts_with("HTTP/1.1 401"));
    }
    CHECK(gw.running());
  }
  SECTION("control characters in a header are malformed HTTP: 400") {
    raw_connection conn{gw.port()};
    REQUIRE(conn.send(chat_with_auth("Bearer sk-\x01\x02")));
    bool closed = false;
    auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
    INFO(reply);
    CHECK(reply.starts_with("HTTP/1.1 400"));
    CHECK(closed);
    CHECK(gw.running());
  }
  SECTION("/v1/models needs a key too; /health does not") {
    CHECK(http_request(gw.port(), "GET", "/v1/models").status == 401);
    CHECK(http_request(gw.port(), "GET", "/health").status == 200);
  }
}

TEST_CASE("a key's allowlist limits the models it may use") {
  fake_upstream upstream{answer_ok()};
  auto models = echo_model + openai_model("gpt", upstream.base_url())
                + openai_model("safe-local", upstream.base_url());
  gateway_process gw{make_config(models, "gpt")};
  auto post = [&](const std::string& model) {
    return http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_body(model), auth_json(limited_key));
  };
  SECTION("a model outside the allowlist is 403 and never called") {
    auto res = post("gpt");
    CHECK(res.status == 403);
    CHECK(error_of(res)["code"] == "model_not_allowed");
    CHECK(upstream.requests().empty());
  }
  SECTION("a default model outside the allowlist is 403") {
    auto res = post("");
    CHECK(res.status == 403);
    CHECK(error_of(res)["type"] == "permission_error");
  }
  SECTION("globs allow matching models") {
    CHECK(post("echo").status == 200);
    CHECK(post("safe-local").status == 200);
    CHECK(upstream.requests().size() == 1);
  }
  SECTION("/v1/models lists only the allowed models") {
    auto res = http_request(gw.port(), "GET", "/v1/models", "",
                            auth_json(limited_key));
    REQUIRE(res.status == 200);
    auto j = res.json();
    CHECK(j["object"] == "list");
    std::vector<std::string> ids;
    for (auto& m : j["data"]) {
      CHECK(m["object"] == "model");
      ids.push_back(m["id"]);
    }
    CHECK(ids == std::vector<std::string>{"echo", "safe-local"});
    auto all
      = http_request(gw.port(), "GET", "/v1/models", "", auth_json(full_key))
          .json();
    CHECK(all["data"].size() == 3);
    CHECK(all["data"][1]["owned_by"] == "openai");
  }
}

TEST_CASE("the per-key rate limit answers 429 with Retry-After and keeps the "
          "request away from the upstream") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{make_config(
    openai_model("gpt", upstream.base_url()) + echo_model, "gpt", "",
    "rate_limit:\n  max_requests: 2\n"
    "  window_seconds: 60\n")};
  auto post = [&](const std::string& key) {
    return http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_body("gpt"), auth_json(key));
  };
  CHECK(post(full_key).status == 200);
  CHECK(post(full_key).status == 200);
  auto limited = post(full_key);
  CHECK(limited.status == 429);
  CHECK(error_of(limited)["code"] == "rate_limit_exceeded");
  auto retry = std::stoi(limited.header("retry-after"));
  CHECK(retry >= 1);
  CHECK(retry <= 60);
  CHECK(upstream.requests().size() == 2);
  // Another key has its own budget.
  auto other = http_request(gw.port(), "POST", "/v1/chat/completions",
                            chat_body("echo"), auth_json(limited_key));
  CHECK(other.status == 200);
}
