// POST /v1/chat/completions end to end: the real binary, a fake upstream.

#include "tests/integration/common.hpp"

using namespace pw::test;

TEST_CASE("a chat request reaches the upstream with every field and comes "
          "back under the alias") {
  fake_upstream upstream{answer_ok("hi from upstream")};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url() + "/v1"), "gpt")};
  nlohmann::json sent = {
    {"model", "gpt"},
    {"messages",
     {{{"role", "system"}, {"content", "be brief"}},
      {{"role", "user"}, {"content", "what is the weather?"}}}},
    {"temperature", 0.25},
    {"top_p", 0.9},
    {"n", 1},
    {"seed", 42},
    {"logprobs", true},
    {"top_logprobs", 2},
    {"user", "user-1234"},
    {"max_completion_tokens", 77},
    {"response_format", {{"type", "json_object"}}},
    {"stream_options", {{"include_usage", true}}},
    {"tool_choice", "auto"},
    {"parallel_tool_calls", false},
    {"metadata", {{"ticket", "T-1"}}},
    {"tools",
     {{{"type", "function"},
       {"function",
        {{"name", "get_weather"},
         {"description", "Weather for a city"},
         {"parameters",
          {{"type", "object"},
           {"properties", {{"city", {{"type", "string"}}}}}}}}}}}},
  };
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          sent.dump(), auth_json(full_key));
  REQUIRE(res.status == 200);
  auto body = res.json();
  CHECK(body["model"] == "gpt");
  CHECK(body["choices"][0]["message"]["content"] == "hi from upstream");
  CHECK(body["usage"]["total_tokens"] == 17);
  REQUIRE(upstream.requests().size() == 1);
  auto got = upstream.requests().front();
  CHECK(got.method == "POST");
  CHECK(got.target == "/v1/chat/completions");
  CHECK(got.headers["authorization"] == "Bearer " + upstream_key);
  CHECK(got.headers["content-type"] == "application/json");
  auto forwarded = nlohmann::json::parse(got.body);
  CHECK(forwarded["model"] == "upstream-gpt");
  for (auto& [key, value] : sent.items()) {
    if (key == "model")
      continue;
    INFO("field " << key);
    CHECK(forwarded[key] == value);
  }
  CHECK(forwarded.size() == sent.size());
}

TEST_CASE("a model without api_key sends no Authorization header") {
  fake_upstream upstream{answer_ok()};
  auto model = "  local:\n    provider: vllm\n    model: \"llama\"\n"
               "    base_url: \""
               + upstream.base_url() + "/v1\"\n";
  gateway_process gw{make_config(model, "local")};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("local"), auth_json(full_key));
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "local");
  REQUIRE(upstream.requests().size() == 1);
  CHECK_FALSE(upstream.requests().front().has_header("authorization"));
}

TEST_CASE("ollama and vllm models use the OpenAI-compatible path of their "
          "base_url") {
  fake_upstream upstream{answer_ok()};
  auto models
    = openai_model("olla", upstream.base_url() + "/v1/", "", "ollama")
      + openai_model("vl", upstream.base_url() + "/prefix/v1", "", "vllm");
  gateway_process gw{make_config(models, "olla")};
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("olla"), auth_json(full_key))
            .status
          == 200);
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("vl"), auth_json(full_key))
            .status
          == 200);
  auto got = upstream.requests();
  REQUIRE(got.size() == 2);
  CHECK(got[0].target == "/v1/chat/completions");
  CHECK(got[1].target == "/prefix/v1/chat/completions");
}

TEST_CASE("a request without a model goes to the default model") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{
    make_config(echo_model + openai_model("gpt", upstream.base_url()), "gpt")};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body(""), auth_json(full_key));
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "gpt");
  CHECK(upstream.requests().size() == 1);
}

TEST_CASE("a fallback chain named as the model routes to its first member") {
  fake_upstream upstream{answer_ok()};
  auto models = openai_model("primary", upstream.base_url())
                + openai_model("secondary", upstream.base_url());
  gateway_process gw{make_config(
    models, "primary", "",
    "  fallback_chains:\n    main: [\"secondary\", \"primary\"]\n")};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("main"), auth_json(full_key));
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "secondary");
  REQUIRE(upstream.requests().size() == 1);
  CHECK(nlohmann::json::parse(upstream.requests()[0].body)["model"]
        == "upstream-secondary");
}

TEST_CASE("the echo model answers locally with the last user message") {
  gateway_process gw{make_config(echo_model, "echo")};
  nlohmann::json body
    = {{"model", "echo"},
       {"messages",
        {{{"role", "user"}, {"content", "first"}},
         {{"role", "assistant"}, {"content", "ok"}},
         {{"role", "user"},
          {"content", {{{"type", "text"}, {"text", "second"}}}}}}}};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          body.dump(), auth_json(full_key));
  REQUIRE(res.status == 200);
  auto j = res.json();
  CHECK(j["object"] == "chat.completion");
  CHECK(j["model"] == "echo");
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  CHECK(j["choices"][0]["message"]["content"] == "second");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["usage"]["total_tokens"].get<int>() > 0);
}

TEST_CASE("an anthropic model answers through the Messages API") {
  fake_upstream upstream{[](const fake_request&) {
    fake_response r;
    r.body
      = R"({"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Salut"}],"stop_reason":"end_turn","usage":{"input_tokens":4,"output_tokens":2}})";
    return r;
  }};
  auto model = "  claude:\n    provider: anthropic\n    model: \"c\"\n"
               "    api_key: \""
               + upstream_key + "\"\n    base_url: \"" + upstream.base_url()
               + "\"\n";
  gateway_process gw{make_config(model, "claude")};
  auto body = nlohmann::json::parse(chat_body("claude"));
  nlohmann::json system = {{"role", "system"}, {"content", "be nice"}};
  body["messages"].insert(body["messages"].begin(), system);
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          body.dump(), auth_json(full_key));
  INFO(res.body);
  REQUIRE(res.status == 200);
  auto j = res.json();
  CHECK(j["model"] == "claude");
  CHECK(j["choices"][0]["message"]["content"] == "Salut");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["usage"]["total_tokens"] == 6);
  REQUIRE(upstream.requests().size() == 1);
  auto sent = nlohmann::json::parse(upstream.requests()[0].body);
  CHECK(sent["model"] == "c");
  CHECK(sent["system"] == "be nice");
  CHECK(sent["max_tokens"] == 4096);
  CHECK(upstream.requests()[0].headers["x-api-key"] == upstream_key);
}

TEST_CASE("logs carry one line per request and never a key") {
  fake_upstream upstream{[](const fake_request&) {
    fake_response r;
    r.status = 401;
    r.body = R"({"error":{"message":"Incorrect API key provided: )"
             + upstream_key + R"("}})";
    return r;
  }};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  http_request(gw.port(), "POST", "/v1/chat/completions", chat_body("gpt"),
               auth_json(full_key));
  http_request(gw.port(), "POST", "/v1/chat/completions", chat_body("gpt"),
               auth_json("sk-wrong-key-123"));
  http_request(gw.port(), "GET", "/v1/models", "", auth_json(full_key));
  REQUIRE(gw.wait_for_output("\"path\":\"/v1/models\""));
  gw.stop();
  auto out = gw.output() + gw.errors();
  CHECK(out.find(full_key) == std::string::npos);
  CHECK(out.find(upstream_key) == std::string::npos);
  CHECK(out.find("sk-wrong-key-123") == std::string::npos);
  // One line per request with its facts.
  CHECK(out.find("\"status\":401,\"client\":\"full\"") != std::string::npos);
  CHECK(out.find("\"upstream_status\":401") != std::string::npos);
}
