#include "adapters/openai/openai_adapter.hpp"
#include "core/errc.hpp"
#include "tests/support/golden.hpp"

#include <catch2/catch.hpp>

using namespace pw;
using namespace pw::test;

namespace {

std::string golden(const std::string& name) {
  auto text = slurp(std::string{PW_TEST_DATA_DIR} + "/adapters/openai/" + name);
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  return text;
}

model_config gpt(std::string api_key = "sk-upstream-key") {
  model_config m;
  m.alias = "gpt";
  m.provider = "openai";
  m.model = "gpt-4o-2024-08-06";
  m.api_key = redacted_string{std::move(api_key)};
  std::string why;
  m.target = *parse_base_url("https://api.openai.com/v1", why);
  m.timeout = seconds_d{42};
  m.connect_timeout = seconds_d{3};
  return m;
}

std::string header(const upstream_request& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.name == name)
      return h.value;
  return {};
}

} // namespace

TEST_CASE("the OpenAI request passes through with only the model id "
          "replaced") {
  const auto& adapter = adapters::adapter_for("openai");
  chat_payload in{golden("chat_request.json")};
  auto req = adapter.to_provider_request(in, gpt());
  REQUIRE(req);
  CHECK(req->method == "POST");
  CHECK(req->path == "/v1/chat/completions");
  CHECK(req->target.host == "api.openai.com");
  CHECK(req->body == golden("chat_request.wire.json"));
  CHECK(header(*req, "Authorization") == "Bearer sk-upstream-key");
  CHECK(header(*req, "Content-Type") == "application/json");
  CHECK(req->timeout == std::chrono::milliseconds{42'000});
  CHECK(req->connect_timeout == std::chrono::milliseconds{3'000});
}

TEST_CASE("a model without a key sends no Authorization header") {
  const auto& adapter = adapters::adapter_for("vllm");
  chat_payload in{golden("chat_request.json")};
  auto req = adapter.to_provider_request(in, gpt(""));
  REQUIRE(req);
  CHECK(header(*req, "Authorization").empty());
}

TEST_CASE("a request without a model gets the provider's model id") {
  chat_payload in{R"({"messages":[{"role":"user","content":"x"}]})"};
  CHECK(adapters::body_with_model(in, "m1")
        == R"({"model":"m1","messages":[{"role":"user","content":"x"}]})");
}

TEST_CASE("a changed or ambiguous body is serialised from the document") {
  // An escaped key could spell "model": the bytes are not spliced.
  chat_payload escaped{R"({"mod\u0065l":"a","messages":[]})"};
  CHECK(adapters::body_with_model(escaped, "m1")
        == R"({"model":"m1","messages":[]})");
  chat_payload changed{R"({"model":"a","x":1})"};
  changed.mutable_json()["y"] = "\xc3\xa9";
  CHECK(adapters::body_with_model(changed, "m1")
        == "{\"model\":\"m1\",\"x\":1,\"y\":\"\xc3\xa9\"}");
}

TEST_CASE("the OpenAI response comes back under the alias, usage read") {
  const auto& adapter = adapters::adapter_for("openai");
  upstream_result r;
  r.status = 200;
  r.body = golden("chat_response.wire.json");
  auto out = adapter.from_provider_response(r, gpt());
  REQUIRE(out);
  CHECK(out->body == golden("chat_response.json"));
  CHECK(out->prompt_tokens == 31);
  CHECK(out->completion_tokens == 9);
}

TEST_CASE("usage is read from the top-level usage object only") {
  const auto& adapter = adapters::adapter_for("openai");
  upstream_result r;
  r.status = 200;
  r.body
    = R"({"choices":[{"usage":{"prompt_tokens":99}}],"usage":{"prompt_tokens":4,"completion_tokens":6,"details":{"prompt_tokens":7}}})";
  auto out = adapter.from_provider_response(r, gpt());
  REQUIRE(out);
  CHECK(out->prompt_tokens == 4);
  CHECK(out->completion_tokens == 6);
  CHECK(nlohmann::json::parse(out->body)["model"] == "gpt");
}

TEST_CASE("a malformed 2xx answer is an upstream failure") {
  const auto& adapter = adapters::adapter_for("openai");
  for (auto body : {"", "not json", "[]", R"({"object":"chat.completion"})",
                    R"({"choices":{}})", R"({"usage":{"choices":[]}})",
                    "{\"choices\":[],\"x\":\"\xff\"}"}) {
    upstream_result r;
    r.status = 200;
    r.body = body;
    auto out = adapter.from_provider_response(r, gpt());
    REQUIRE_FALSE(out);
    CHECK(code_of(out.error()) == errc::upstream_invalid);
  }
}

TEST_CASE("embeddings pass through to <base_url>/embeddings and come back "
          "under the alias") {
  const auto& adapter
    = adapters::adapter_for("openai", api_endpoint::embeddings);
  chat_payload in{R"({"model":"gpt","input":["a","b"],"dimensions":8})"};
  auto req = adapter.to_provider_request(in, gpt());
  REQUIRE(req);
  CHECK(req->path == "/v1/embeddings");
  CHECK(req->body
        == R"({"model":"gpt-4o-2024-08-06","input":["a","b"],"dimensions":8})");
  CHECK(header(*req, "Authorization") == "Bearer sk-upstream-key");
  upstream_result r;
  r.status = 200;
  r.body = R"({"object":"list","data":[{"object":"embedding","index":0,)"
           R"("embedding":[0.5,-0.5]}],"model":"text-embedding-3-small",)"
           R"("usage":{"prompt_tokens":4,"total_tokens":4}})";
  auto out = adapter.from_provider_response(r, gpt());
  REQUIRE(out);
  CHECK(out->body
        == R"({"object":"list","data":[{"object":"embedding","index":0,)"
           R"("embedding":[0.5,-0.5]}],"model":"gpt",)"
           R"("usage":{"prompt_tokens":4,"total_tokens":4}})");
  CHECK(out->prompt_tokens == 4);
  CHECK(out->completion_tokens == 0);
}

TEST_CASE("an embeddings answer that is not a list of objects is the "
          "provider's failure") {
  const auto& adapter = adapters::adapter_for("vllm", api_endpoint::embeddings);
  for (const auto* body : {"[]", "{}", R"({"data":{}})", R"({"data":[1]})",
                           R"({"data":[{}],"data":[]})", "not json"}) {
    INFO(body);
    upstream_result r;
    r.status = 200;
    r.body = body;
    auto out = adapter.from_provider_response(r, gpt());
    REQUIRE_FALSE(out);
    CHECK(code_of(out.error()) == errc::upstream_invalid);
  }
}

TEST_CASE("text completions pass through to <base_url>/completions and come "
          "back under the alias") {
  const auto& adapter
    = adapters::adapter_for("openai", api_endpoint::completions);
  chat_payload in{R"({"model":"gpt","prompt":"Once","max_tokens":5})"};
  auto req = adapter.to_provider_request(in, gpt());
  REQUIRE(req);
  CHECK(req->path == "/v1/completions");
  CHECK(req->body
        == R"({"model":"gpt-4o-2024-08-06","prompt":"Once","max_tokens":5})");
  upstream_result r;
  r.status = 200;
  r.body = R"({"id":"cmpl-1","object":"text_completion","model":"davinci",)"
           R"("choices":[{"text":" upon","index":0,"finish_reason":"length"}],)"
           R"("usage":{"prompt_tokens":1,"completion_tokens":2}})";
  auto out = adapter.from_provider_response(r, gpt());
  REQUIRE(out);
  CHECK(nlohmann::json::parse(out->body)["model"] == "gpt");
  CHECK(out->prompt_tokens == 1);
  CHECK(out->completion_tokens == 2);
  r.body = R"({"choices":{}})";
  auto bad = adapter.from_provider_response(r, gpt());
  REQUIRE_FALSE(bad);
  CHECK(code_of(bad.error()) == errc::upstream_invalid);
}
