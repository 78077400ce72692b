#include "adapters/echo/echo_adapter.hpp"

#include <catch2/catch.hpp>

using namespace pw;

TEST_CASE("echo answers with the text of the last user message") {
  const auto& adapter = adapters::adapter_for(provider_kind::echo);
  REQUIRE(adapter.local());
  model_config m;
  m.alias = "echo";
  m.provider = provider_kind::echo;
  chat_payload in{R"({"messages":[
    {"role":"system","content":"sys"},
    {"role":"user","content":"one"},
    {"role":"assistant","content":"reply"},
    {"role":"user","content":[{"type":"text","text":"two"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"three"}]}
  ]})"};
  auto out = adapter.respond_locally(in, m, "req-1");
  REQUIRE(out);
  auto body = nlohmann::json::parse(out->body);
  CHECK(body["id"] == "chatcmpl-echo-req-1");
  CHECK(body["object"] == "chat.completion");
  CHECK(body["model"] == "echo");
  CHECK(body["choices"][0]["message"]["content"] == "two\nthree");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["usage"]["total_tokens"]
        == out->prompt_tokens + out->completion_tokens);
  CHECK(out->completion_tokens
        == adapters::echo::estimate_tokens("two\nthree"));
}

TEST_CASE("echo with no user message answers an empty string") {
  const auto& adapter = adapters::adapter_for(provider_kind::echo);
  model_config m;
  m.alias = "e";
  chat_payload in{R"({"messages":[{"role":"system","content":"only"}]})"};
  auto out = adapter.respond_locally(in, m, "r");
  REQUIRE(out);
  CHECK(nlohmann::json::parse(out->body)["choices"][0]["message"]["content"]
        == "");
}
