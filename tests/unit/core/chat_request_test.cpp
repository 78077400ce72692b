#include "core/chat_request.hpp"
#include "core/errc.hpp"

#include <catch2/catch.hpp>

using namespace pw;

namespace {

std::string param_for(std::string_view body) {
  auto r = parse_chat_request(body);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::invalid_request);
  return param_of(r.error());
}

} // namespace

TEST_CASE("a well-formed chat request parses and keeps field order") {
  auto r = parse_chat_request(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"zeta":1,"alpha":2})");
  REQUIRE(r);
  CHECK((*r)["model"] == "m");
  CHECK(
      r->dump()
      == R"({"model":"m","messages":[{"role":"user","content":"hi"}],"zeta":1,"alpha":2})");
  CHECK(parse_chat_request(
      R"({"model":null,"stream":false,"messages":[{"role":"user","content":null}]})"));
}

TEST_CASE("shape errors name the field") {
  CHECK(param_for("{").empty());
  CHECK(param_for("[]").empty());
  CHECK(param_for(R"({"model":1,"messages":[]})") == "model");
  CHECK(param_for(R"({})") == "messages");
  CHECK(param_for(R"({"messages":{}})") == "messages");
  CHECK(param_for(R"({"messages":[]})") == "messages");
  CHECK(param_for(R"({"messages":[{"role":"user"},"x"]})") == "messages[1]");
  CHECK(param_for(R"({"messages":[{"role":5}]})") == "messages[0].role");
  CHECK(param_for(R"({"messages":[{"role":"user"}],"stream":1})") == "stream");
}

TEST_CASE("invalid UTF-8 and lone surrogates are rejected") {
  CHECK_FALSE(parse_chat_request(
      "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}"));
  CHECK_FALSE(parse_chat_request(
      R"({"messages":[{"role":"user","content":"\ud800"}]})"));
}

TEST_CASE("nesting deeper than the limit is rejected before parsing") {
  std::string deep = std::string(65, '[') + std::string(65, ']');
  CHECK_FALSE(json_depth_ok(deep));
  CHECK(json_depth_ok(std::string(64, '[') + std::string(64, ']')));
  // Brackets inside strings do not count.
  CHECK(json_depth_ok("{\"a\":\"" + std::string(1000, '[') + "\"}"));
  CHECK(json_depth_ok(R"({"a":"\"[[[["})"));
  auto r = parse_chat_request("{\"messages\":" + std::string(100000, '[')
                              + std::string(100000, ']') + "}");
  REQUIRE_FALSE(r);
  CHECK(message_of(r.error()).find("nests deeper") != std::string::npos);
}
