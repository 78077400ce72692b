#include "core/json/text.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pw;

TEST_CASE("strings are escaped as JSON, UTF-8 kept, invalid bytes replaced") {
  CHECK(json_string("plain") == "\"plain\"");
  CHECK(json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_string("tab\tnl\ncr\r") == "\"tab\\tnl\\ncr\\r\"");
  CHECK(json_string(std::string{"\x01"}) == "\"\\u0001\"");
  CHECK(json_string("caf\xc3\xa9 \xe2\x82\xac")
        == "\"caf\xc3\xa9 \xe2\x82\xac\"");
  CHECK(json_string("bad\xff") == "\"bad\xef\xbf\xbd\"");
  CHECK(json_string("\xed\xa0\x80") // an encoded surrogate
        == "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
  for (std::string s :
       {"x\"y", "\x7f", "a\\", "\xc3\xa9", "\xf0\x9f\x98\x80"}) {
    auto parsed = nlohmann::json::parse(json_string(s));
    CHECK(parsed.get<std::string>() == s);
  }
}

TEST_CASE("a top-level string field is replaced byte for byte") {
  auto r = with_top_level_string(
    R"({"model" : "gpt", "messages":[{"model":"inner"}], "n":1})", "model",
    "upstream-id");
  REQUIRE(r);
  CHECK(
    *r
    == R"({"model" : "upstream-id", "messages":[{"model":"inner"}], "n":1})");
  auto last = with_top_level_string(R"({"a":{"b":[1,{"c":"}"}]},"model":null})",
                                    "model", "x");
  REQUIRE(last);
  CHECK(*last == R"({"a":{"b":[1,{"c":"}"}]},"model":"x"})");
}

TEST_CASE("a missing field is inserted first") {
  CHECK(*with_top_level_string(R"({"a":1})", "model", "m")
        == R"({"model":"m","a":1})");
  CHECK(*with_top_level_string(R"(  { } )", "model", "m")
        == R"(  {"model":"m" } )");
}

TEST_CASE("ambiguous documents are left to the caller") {
  CHECK_FALSE(
    with_top_level_string(R"({"model":"a","model":"b"})", "model", "x"));
  CHECK_FALSE(with_top_level_string(R"({"mod\u0065l":"a"})", "model", "x"));
  CHECK_FALSE(with_top_level_string(R"([1,2])", "model", "x"));
  CHECK_FALSE(with_top_level_string("", "model", "x"));
}

TEST_CASE("the value is escaped when spliced") {
  auto r = with_top_level_string(R"({"model":"a"})", "model", "q\"uote");
  REQUIRE(r);
  CHECK(nlohmann::json::parse(*r)["model"] == "q\"uote");
}
