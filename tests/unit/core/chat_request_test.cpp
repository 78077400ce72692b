#include "core/chat_request.hpp"
#include "core/errc.hpp"

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
  CHECK(check_chat_request(nest(max_json_depth - 1)));
  CHECK(message_for(nest(max_json_depth)).find("nests deeper")
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
