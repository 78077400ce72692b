#include "adapters/adapter.hpp"

#include <catch2/catch.hpp>

using namespace pw;

namespace {

model_config model() {
  model_config m;
  m.alias = "gpt";
  m.api_key = redacted_string{"sk-secret-provider-key"};
  return m;
}

upstream_result status(unsigned s, std::string body = {}) {
  upstream_result r;
  r.status = s;
  r.body = std::move(body);
  return r;
}

} // namespace

TEST_CASE("what counts against a model") {
  CHECK_FALSE(adapters::is_model_failure(status(200)));
  for (unsigned s : {400u, 401u, 403u, 404u, 409u, 413u, 422u})
    CHECK_FALSE(adapters::is_model_failure(status(s)));
  for (unsigned s : {100u, 302u, 408u, 429u, 500u, 502u, 503u, 529u})
    CHECK(adapters::is_model_failure(status(s)));
  upstream_result t;
  t.failure = upstream_failure::timeout;
  CHECK(adapters::is_model_failure(t));
  t.failure = upstream_failure::cancelled;
  CHECK_FALSE(adapters::is_model_failure(t));
}

TEST_CASE("upstream errors map to client errors without secrets") {
  auto m = model();
  SECTION("transport failures are upstream_failed with the step") {
    upstream_result r;
    r.failure = upstream_failure::connect;
    r.detail = "connecting to host:1 failed: Connection refused";
    auto e = adapters::upstream_error(r, m);
    CHECK(e.code == errc::upstream_failed);
    CHECK(e.message.find("Connection refused") != std::string::npos);
  }
  SECTION("shutdown is overloaded, not a provider failure") {
    upstream_result r;
    r.failure = upstream_failure::cancelled;
    CHECK(adapters::upstream_error(r, m).code == errc::overloaded);
  }
  SECTION("429 carries Retry-After seconds; other forms are ignored") {
    auto r = status(429);
    r.retry_after = "12";
    auto e = adapters::upstream_error(r, m);
    CHECK(e.code == errc::upstream_rate_limited);
    CHECK(e.retry_after == 12);
    r.retry_after = "Wed, 21 Oct 2015 07:28:00 GMT";
    CHECK(adapters::upstream_error(r, m).retry_after == 0);
  }
  SECTION("4xx relays the provider's message with the key scrubbed") {
    auto e = adapters::upstream_error(
      status(
        400,
        R"({"error":{"message":"bad key sk-secret-provider-key here","type":"invalid_request_error","code":"x"}})"),
      m);
    CHECK(e.code == errc::upstream_rejected);
    CHECK(e.status == 400);
    CHECK(e.message == "bad key *** here");
    CHECK(e.code_text == "x");
  }
  SECTION("Anthropic's envelope is read the same way") {
    auto e = adapters::upstream_error(
      status(
        413,
        R"({"type":"error","error":{"type":"request_too_large","message":"too big"}})"),
      m);
    CHECK(e.status == 413);
    CHECK(e.message == "too big");
    CHECK(e.type == "request_too_large");
  }
  SECTION("AWS's envelope (Bedrock): a top-level message, the key scrubbed") {
    auto e = adapters::upstream_error(
      status(400, R"({"message":"Malformed input request: extraneous key )"
                  R"([sk-secret-provider-key] is not permitted"})"),
      m);
    CHECK(e.status == 400);
    CHECK(e.message
          == "Malformed input request: extraneous key [***] is not permitted");
    // An "error" field wins over a top-level message.
    auto both = adapters::upstream_error(
      status(404, R"({"message":"outer","error":{"message":"inner"}})"), m);
    CHECK(both.message == "inner");
    // A message that is not a string leaves the gateway's own text.
    auto odd = adapters::upstream_error(status(400, R"({"message":7})"), m);
    CHECK(odd.message.find("rejected the request") != std::string::npos);
  }
  SECTION("401 and 403 never relay the provider's text") {
    auto e = adapters::upstream_error(
      status(
        401,
        R"({"error":{"message":"Incorrect API key sk-secret-provider-key"}})"),
      m);
    CHECK(e.status == 401);
    CHECK(e.message.find("sk-secret") == std::string::npos);
    CHECK(e.type == "upstream_auth_error");
  }
  SECTION("5xx never relays the provider's body") {
    auto e = adapters::upstream_error(status(500, "stack trace here"), m);
    CHECK(e.code == errc::upstream_failed);
    CHECK(e.message.find("stack trace") == std::string::npos);
  }
}
