#include "core/json/reader.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

using namespace pw;
using pw::json::fault;

namespace {

/// The problem reading `text` under `lim` (the read must fail).
json::problem refused(std::string_view text,
                      const json::limits& lim = json::client_limits) {
  auto r = json::read(text, lim);
  REQUIRE_FALSE(r);
  return r.error();
}

std::string nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

} // namespace

TEST_CASE("a text within every bound is read, keys in order") {
  auto r = json::parse(R"({"b":1,"a":[true,null,-2,1.5,"x"],"c":{}})",
                       json::client_limits);
  REQUIRE(r);
  CHECK(r->dump() == R"({"b":1,"a":[true,null,-2,1.5,"x"],"c":{}})");
  // Non-negative integers are unsigned, as nlohmann's own parser has it.
  CHECK((*r)["b"].is_number_unsigned());
  CHECK((*r)["a"][2].is_number_integer());
}

TEST_CASE("a key twice in one object is refused, at any depth") {
  auto top = refused(R"({"messages":[1],"model":"m","messages":[2]})");
  CHECK(top.kind == fault::duplicate_key);
  CHECK(top.key == "messages");
  CHECK(top.param() == "messages");
  auto deep = refused(
    R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"4111","content":"ok"}]})");
  CHECK(deep.kind == fault::duplicate_key);
  CHECK(deep.path == "messages[1]");
  CHECK(deep.param() == "messages[1].content");
  CHECK(deep.what(json::client_limits)
        == "has the key 'content' twice in one object (at 'messages[1]')");
  // The same key in different objects is fine.
  CHECK(json::read(R"({"a":{"k":1},"b":{"k":2},"k":3})", json::client_limits));
}

TEST_CASE("duplicates in large objects are found without a quadratic scan") {
  std::string big = "{";
  for (int i = 0; i < 5000; ++i)
    big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  big += "\"k4999\":0}";
  auto p = refused(big);
  CHECK(p.kind == fault::duplicate_key);
  CHECK(p.key == "k4999");
}

TEST_CASE("depth is bounded: the top level counts as one") {
  CHECK(json::read(nested(64), json::client_limits));
  auto p = refused(nested(65));
  CHECK(p.kind == fault::too_deep);
  CHECK(p.what(json::client_limits) == "nests deeper than 64 levels");
  CHECK(refused(nested(300'000)).kind == fault::too_deep);
  CHECK(json::read(nested(128), json::upstream_limits));
  CHECK_FALSE(json::read(nested(129), json::upstream_limits));
}

TEST_CASE("members, elements and string length are bounded") {
  json::limits tiny{8, 3, 4, 5};
  CHECK(json::read(R"({"a":1,"b":2,"c":[1,2,3,4],"d":"12345"})",
                   json::limits{8, 4, 4, 5}));
  auto members = refused(R"({"x":{"a":1,"b":2,"c":3,"d":4}})", tiny);
  CHECK(members.kind == fault::too_many_members);
  CHECK(members.path == "x");
  auto elements = refused(R"({"x":[[1,2,3,4,5]]})", tiny);
  CHECK(elements.kind == fault::too_many_elements);
  CHECK(elements.path == "x[0]");
  auto string = refused(R"({"x":["ok","123456"]})", tiny);
  CHECK(string.kind == fault::string_too_long);
  CHECK(string.path == "x[1]");
  auto key = refused(R"({"123456":1})", tiny);
  CHECK(key.kind == fault::string_too_long);
  CHECK(key.path == "123456");
}

TEST_CASE("syntax, UTF-8 and numbers are checked by the parser") {
  CHECK(refused("").kind == fault::syntax);
  CHECK(refused("{").kind == fault::syntax);
  CHECK(refused("[1] [2]").kind == fault::syntax);
  CHECK(refused(R"(["\ud800"])").kind == fault::syntax);
  CHECK(refused(R"(["\udc00"])").kind == fault::syntax);
  CHECK(refused("[\"\x01\"]").kind == fault::syntax);
  CHECK(refused("[NaN]").kind == fault::syntax);
  CHECK(refused("[\"\xc3\x28\"]").kind == fault::utf8);
  CHECK(refused("[\"\xed\xa0\x80\"]").kind == fault::utf8);
  CHECK(refused("[1e999]").kind == fault::number);
  CHECK(refused("[123456789012345678901234567890]").kind == fault::number);
  CHECK(json::read(R"(["\ud83d\ude00",18446744073709551615,-0])",
                   json::client_limits));
}

TEST_CASE("paths and keys in problems are bounded") {
  std::string long_key(1000, 'k');
  auto p = refused("{\"" + long_key + "\":1,\"" + long_key + "\":2}");
  CHECK(p.key.size() == 64);
  std::string deep_path = "{";
  std::string close;
  for (int i = 0; i < 60; ++i) {
    deep_path += "\"" + std::string(60, 'a') + "\":{";
    close += "}";
  }
  auto q = refused(deep_path + "\"x\":1,\"x\":2" + close + "}");
  CHECK(q.path.size() <= 256 + 3);
}

TEST_CASE("views nest: each owns its parser") {
  auto outer
    = json::read(R"({"args":"{\"city\":\"Paris\"}"})", json::client_limits);
  REQUIRE(outer);
  auto text = json::string_of(outer->root(), "args");
  auto inner = json::read(text, json::client_limits);
  REQUIRE(inner);
  CHECK(json::string_of(inner->root(), "city") == "Paris");
  // The outer view is intact after the inner read.
  CHECK(json::string_of(outer->root(), "args") == R"({"city":"Paris"})");
}

TEST_CASE("field readers give the fallback for a missing or mistyped field") {
  auto v = json::read(R"({"s":"x","n":5,"neg":-1,"f":1.5,"o":{}})",
                      json::client_limits);
  REQUIRE(v);
  auto root = v->root();
  CHECK(json::string_of(root, "s") == "x");
  CHECK(json::string_of(root, "n", "d") == "d");
  CHECK(json::uint_of(root, "n") == 5);
  CHECK(json::uint_of(root, "neg", 7) == 7);
  CHECK(json::uint_of(root, "f", 7) == 7);
  CHECK(json::uint_of(root, "missing", 7) == 7);
  CHECK_FALSE(json::member(root, "missing"));
  CHECK(json::member(root, "o"));
  auto arr = json::read("[1]", json::client_limits);
  CHECK_FALSE(json::member(arr->root(), "o"));
}

TEST_CASE("a document made from a deep text serialises without trouble") {
  // Built and dumped at the deepest the upstream limits allow: both are
  // recursive, and both stay within the bound.
  auto doc = json::parse(nested(128), json::upstream_limits);
  REQUIRE(doc);
  CHECK(json::dump(*doc) == nested(128));
}

TEST_CASE("600k small keys are refused quickly by the member bound") {
  std::string body = "{";
  for (int i = 0; i < 600'000; ++i)
    body += "\"" + std::to_string(i) + "\":0,";
  body.back() = '}';
  auto p = refused(body);
  CHECK(p.kind == fault::too_many_members);
}

namespace {

/// nlohmann's own compact form, as dump() wrote it before it wrote its own.
std::string by_nlohmann(const json::document& doc) {
  return doc.dump(-1, ' ', false, json::document::error_handler_t::replace);
}

} // namespace

TEST_CASE("dump writes what nlohmann's serializer writes") {
  // Every value kind, the escapes JSON names (\b \f \n \r \t), other
  // control characters, DEL, non-ASCII text, the integer limits, floats.
  auto doc = json::document::parse(
    R"({"model":"m","n":0,"neg":-42,"big":18446744073709551615,)"
    R"("small":-9223372036854775808,"t":0.7,"e":1e+300,"f":1.0,)"
    R"("x":-0.0,"tiny":5e-324,"ok":true,"no":false,"nil":null,)"
    R"("esc":"q\" b\\ s/ \b\f\n\r\t \u0001\u001f\u007f",)"
    R"("utf8":"h\u00e9llo \u4e16\u754c \ud83d\ude00",)"
    R"("nested":{"a":[[],{},[{"b":[1,2.5,"c"]}]],"empty":""},)"
    R"("arr":[null,true,0,-1,1.5e-7,"s"]})");
  CHECK(json::dump(doc) == by_nlohmann(doc));
  for (const auto* scalar : {"0", "-1", "\"x\"", "null", "3.14", "[]", "{}"}) {
    auto one = json::document::parse(scalar);
    CHECK(json::dump(one) == by_nlohmann(one));
  }
}

TEST_CASE("dump replaces invalid UTF-8 in the gateway's own strings as "
          "nlohmann does") {
  for (std::string bad :
       {std::string{"a\xc3(b"}, std::string{"\xe2\x82("},
        std::string{"end \xf0\x9f\x98"}, std::string{"\xff\xfe plain"},
        std::string{"\xed\xa0\x80 surrogate"}}) {
    INFO(bad);
    json::document doc = {{"error", bad}, {"list", {bad, "fine"}}};
    CHECK(json::dump(doc) == by_nlohmann(doc));
  }
}

TEST_CASE("dump writes every test document as nlohmann does") {
  // The adapters' and the fuzzers' JSON, read as the gateway reads it.
  size_t compared = 0;
  for (const auto* dir :
       {PW_TEST_DATA_DIR, PW_SOURCE_DIR "/tests/fuzz/corpus"}) {
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file())
        continue;
      std::ifstream in{entry.path(), std::ios::binary};
      std::string text{std::istreambuf_iterator<char>{in}, {}};
      auto doc = json::parse(text, json::upstream_limits);
      if (!doc)
        continue;
      INFO(entry.path().string());
      CHECK(json::dump(*doc) == by_nlohmann(*doc));
      ++compared;
    }
  }
  CHECK(compared >= 40);
}
