#include "adapters/echo/echo_adapter.hpp"

#include <catch2/catch.hpp>

using namespace pw;

TEST_CASE("echo answers with the text of the last user message") {
  const auto& adapter = adapters::adapter_for("echo");
  REQUIRE(adapter.local());
  model_config m;
  m.alias = "echo";
  m.provider = "echo";
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
  const auto& adapter = adapters::adapter_for("echo");
  model_config m;
  m.alias = "e";
  chat_payload in{R"({"messages":[{"role":"system","content":"only"}]})"};
  auto out = adapter.respond_locally(in, m, "r");
  REQUIRE(out);
  CHECK(nlohmann::json::parse(out->body)["choices"][0]["message"]["content"]
        == "");
}

TEST_CASE("echo embeddings: one unit vector per input, the same for the same "
          "input") {
  const auto& adapter = adapters::adapter_for("echo", api_endpoint::embeddings);
  REQUIRE(adapter.local());
  model_config m;
  m.alias = "echo";
  m.provider = "echo";
  auto answer = [&](const std::string& body) {
    auto out = adapter.respond_locally(chat_payload{body}, m, "req-1");
    REQUIRE(out);
    return nlohmann::json::parse(out->body);
  };
  auto norm = [](const nlohmann::json& v) {
    double sum = 0;
    for (const auto& x : v)
      sum += x.get<double>() * x.get<double>();
    return sum;
  };
  auto body = answer(R"({"input":["alpha","beta","alpha"]})");
  CHECK(body["object"] == "list");
  CHECK(body["model"] == "echo");
  REQUIRE(body["data"].size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const auto& item = body["data"][i];
    CHECK(item["object"] == "embedding");
    CHECK(item["index"] == i);
    REQUIRE(item["embedding"].size() == 16);
    CHECK(norm(item["embedding"]) == Approx(1.0).epsilon(1e-5));
  }
  CHECK(body["data"][0]["embedding"] == body["data"][2]["embedding"]);
  CHECK(body["data"][0]["embedding"] != body["data"][1]["embedding"]);
  CHECK(body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"]);
  CHECK(body["usage"]["prompt_tokens"].get<int>() > 0);
  SECTION("dimensions sets the length") {
    auto one = answer(R"({"input":"alpha","dimensions":300})");
    REQUIRE(one["data"].size() == 1);
    CHECK(one["data"][0]["embedding"].size() == 300);
  }
  SECTION("token ids: one input per list, counted as tokens") {
    auto one = answer(R"({"input":[1,2,3]})");
    CHECK(one["data"].size() == 1);
    CHECK(one["usage"]["prompt_tokens"] == 3);
    auto two = answer(R"({"input":[[1,2,3],[4]]})");
    CHECK(two["data"].size() == 2);
    CHECK(two["data"][0]["embedding"] == one["data"][0]["embedding"]);
  }
  SECTION("base64 is the same numbers as little-endian float32") {
    auto b64 = answer(R"({"input":"alpha","encoding_format":"base64"})");
    auto expected = adapters::echo::echo_vector("alpha", 16);
    CHECK(b64["data"][0]["embedding"]
          == adapters::echo::base64_floats(expected));
    auto floats = answer(R"({"input":"alpha"})");
    for (size_t i = 0; i < expected.size(); ++i)
      CHECK(floats["data"][0]["embedding"][i].get<double>()
            == Approx(expected[i]).epsilon(1e-6));
  }
}

TEST_CASE("echo embeddings: base64 of known floats") {
  // 1.0f is 00 00 80 3f little-endian; -2.0f is 00 00 00 c0.
  CHECK(adapters::echo::base64_floats({1.0f}) == "AACAPw==");
  CHECK(adapters::echo::base64_floats({1.0f, -2.0f}) == "AACAPwAAAMA=");
  CHECK(adapters::echo::base64_floats({}).empty());
}

TEST_CASE("echo completions repeat each prompt as its choice") {
  const auto& adapter
    = adapters::adapter_for("echo", api_endpoint::completions);
  REQUIRE(adapter.local());
  model_config m;
  m.alias = "echo";
  m.provider = "echo";
  auto answer = [&](const std::string& body) {
    auto out = adapter.respond_locally(chat_payload{body}, m, "req-7");
    REQUIRE(out);
    return nlohmann::json::parse(out->body);
  };
  auto one = answer(R"({"prompt":"Say this"})");
  CHECK(one["object"] == "text_completion");
  CHECK(one["id"] == "cmpl-echo-req-7");
  CHECK(one["model"] == "echo");
  REQUIRE(one["choices"].size() == 1);
  CHECK(one["choices"][0]["text"] == "Say this");
  CHECK(one["choices"][0]["finish_reason"] == "stop");
  CHECK(one["usage"]["total_tokens"]
        == one["usage"]["prompt_tokens"].get<int>()
             + one["usage"]["completion_tokens"].get<int>());
  auto many = answer(R"({"prompt":["a","b"]})");
  REQUIRE(many["choices"].size() == 2);
  CHECK(many["choices"][1]["text"] == "b");
  CHECK(many["choices"][1]["index"] == 1);
  auto tokens = answer(R"({"prompt":[1,2,3]})");
  CHECK(tokens["choices"][0]["text"] == "[1,2,3]");
  auto events = adapter.whole_to_sse(
    adapter.respond_locally(chat_payload{R"({"prompt":"hi"})"}, m, "r")->body,
    {"echo", false, "r", 0});
  CHECK(events.find("\"object\":\"text_completion\"") != std::string::npos);
  CHECK(events.find("\"text\":\"hi\"") != std::string::npos);
  CHECK(events.ends_with("data: [DONE]\n\n"));
}
