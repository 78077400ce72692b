#include "core/errc.hpp"
#include "core/request/chat_request.hpp"

#include <catch2/catch.hpp>

using namespace pw;

namespace {

std::string param_for(std::string_view body) {
  auto r = check_chat_request(body);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::invalid_request);
  return param_of(r.error());
}

std::string message_for(std::string_view body) {
  auto r = check_chat_request(body);
  REQUIRE_FALSE(r);
  return message_of(r.error());
}

} // namespace

TEST_CASE("a well-formed chat request passes and yields model and stream") {
  auto r = check_chat_request(
    R"({"model":"m","messages":[{"role":"user","content":"hi"}],"zeta":1})");
  REQUIRE(r);
  CHECK(r->model == "m");
  CHECK_FALSE(r->stream);
  auto s = check_chat_request(
    R"({"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"x"}],"name":"n"}],"model":null})");
  REQUIRE(s);
  CHECK(s->model.empty());
  CHECK(s->stream);
  // Nested keys named like top-level ones do not count.
  auto n = check_chat_request(
    R"({"messages":[{"role":"user","content":"x","model":5,"stream":"no"}],"metadata":{"model":1,"messages":2}})");
  REQUIRE(n);
  CHECK(n->model.empty());
}

TEST_CASE("shape errors name the field") {
  CHECK(param_for("{").empty());
  CHECK(param_for("[]").empty());
  CHECK(param_for("42").empty());
  CHECK(param_for(R"({"model":1,"messages":[{"role":"user"}]})") == "model");
  CHECK(param_for(R"({})") == "messages");
  CHECK(param_for(R"({"messages":{}})") == "messages");
  CHECK(param_for(R"({"messages":[]})") == "messages");
  CHECK(param_for(R"({"messages":[{"role":"user"},"x"]})") == "messages[1]");
  CHECK(param_for(R"({"messages":[{"role":5}]})") == "messages[0].role");
  CHECK(param_for(R"({"messages":[{"content":"x"}]})") == "messages[0].role");
  CHECK(param_for(R"({"messages":[{"role":"user"}],"stream":1})") == "stream");
  CHECK(message_for(R"({"messages":[]})")
        == "'messages' must contain at least one message.");
}

TEST_CASE("invalid JSON wins over a shape problem") {
  CHECK(message_for(R"({"model":7,"messages":[)")
          .starts_with("We could not parse the JSON body"));
  CHECK(message_for(R"({"messages":[{"role":"user"}]} trailing)")
          .starts_with("We could not parse"));
}

TEST_CASE("invalid UTF-8 and lone surrogates are rejected") {
  CHECK_FALSE(check_chat_request(
    "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}"));
  CHECK_FALSE(
    check_chat_request(R"({"messages":[{"role":"user","content":"\ud800"}]})"));
}

TEST_CASE("nesting deeper than the limit is rejected without recursion") {
  auto nest = [](size_t n) {
    return "{\"messages\":[{\"role\":\"user\"}],\"x\":" + std::string(n, '[')
           + std::string(n, ']') + "}";
  };
  CHECK(check_chat_request(nest(json::client_limits.max_depth - 1)));
  CHECK(message_for(nest(json::client_limits.max_depth)).find("nests deeper")
        != std::string::npos);
  CHECK(message_for(nest(1'000'000)).find("nests deeper") != std::string::npos);
}

TEST_CASE("the payload keeps the received bytes and parses on demand") {
  chat_payload p{R"({"b":1,"a":2})"};
  CHECK(p.raw() == R"({"b":1,"a":2})");
  CHECK(p.json()["b"] == 1);
  CHECK(p.json().dump() == R"({"b":1,"a":2})");
  p.mutable_json()["c"] = 3;
  CHECK(p.raw().empty());
  CHECK(p.json()["c"] == 3);
}

TEST_CASE("roles are one of the five OpenAI roles") {
  for (const auto* role : {"system", "developer", "user", "assistant", "tool"})
    CHECK(check_chat_request(std::string{R"({"messages":[{"role":")"} + role
                             + R"(","content":"x"}]})"));
  CHECK(
    param_for(
      R"({"messages":[{"role":"user","content":"a"},{"role":"admin","content":"b"}]})")
    == "messages[1].role");
  CHECK(message_for(R"({"messages":[{"role":"root","content":"b"}]})")
        == "'messages[0].role' must be one of 'system', 'developer', 'user', "
           "'assistant' or 'tool'.");
}

TEST_CASE("content is a string, typed parts, or null for an assistant") {
  CHECK(check_chat_request(
    R"({"messages":[{"role":"assistant","content":null,"tool_calls":[]}]})"));
  CHECK(check_chat_request(
    R"({"messages":[{"content":null,"role":"assistant"}]})"));
  CHECK(param_for(R"({"messages":[{"role":"user","content":null}]})")
        == "messages[0].content");
  CHECK(param_for(R"({"messages":[{"role":"user","content":5}]})")
        == "messages[0].content");
  CHECK(param_for(R"({"messages":[{"role":"user","content":{"text":"x"}}]})")
        == "messages[0].content");
  CHECK(param_for(R"({"messages":[{"role":"user","content":["x"]}]})")
        == "messages[0].content[0]");
  CHECK(
    param_for(
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"text":"b"}]}]})")
    == "messages[0].content[1].type");
  CHECK(check_chat_request(
    R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x","detail":{"type":1}}}]}]})"));
}

TEST_CASE("sampling fields are numbers in range") {
  auto with = [](const std::string& field) {
    return R"({"messages":[{"role":"user","content":"x"}],)" + field + "}";
  };
  CHECK(check_chat_request(with(R"("temperature":0.7,"top_p":1,"n":1)")));
  CHECK(check_chat_request(with(R"("max_tokens":256,"temperature":null)")));
  CHECK(
    check_chat_request(with(R"("presence_penalty":-2,"frequency_penalty":2)")));
  CHECK(param_for(with(R"("temperature":2.5)")) == "temperature");
  CHECK(message_for(with(R"("temperature":-1)"))
        == "'temperature' must be between 0 and 2.");
  CHECK(param_for(with(R"("temperature":"hot")")) == "temperature");
  CHECK(param_for(with(R"("top_p":1.01)")) == "top_p");
  CHECK(param_for(with(R"("max_tokens":0)")) == "max_tokens");
  CHECK(message_for(with(R"("max_tokens":1.5)"))
        == "'max_tokens' must be an integer.");
  CHECK(param_for(with(R"("max_completion_tokens":-3)"))
        == "max_completion_tokens");
  CHECK(param_for(with(R"("n":0)")) == "n");
  CHECK(param_for(with(R"("n":true)")) == "n");
  // Nested fields of the same name are not sampling fields.
  CHECK(check_chat_request(
    R"({"messages":[{"role":"user","content":"x","temperature":9}],"metadata":{"n":-1}})"));
}

TEST_CASE("NaN, infinities and encoded surrogates never pass") {
  for (
    const auto* body :
    {R"({"messages":[{"role":"user","content":"x"}],"temperature":NaN})",
     R"({"messages":[{"role":"user","content":"x"}],"temperature":Infinity})",
     R"({"messages":[{"role":"user","content":"x"}],"temperature":1e999})",
     "{\"messages\":[{\"role\":\"user\",\"content\":\"\xed\xa0\x80\"}]}"}) {
    INFO(body);
    auto r = check_chat_request(body);
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::invalid_request);
  }
}
