#include "core/observe/trace.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <regex>

using namespace pw::trace;

namespace {

// The example of the W3C Trace Context specification, section 3.2.
constexpr std::string_view w3c_example
  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool is_hex_of(const nlohmann::json& x, size_t size) {
  return x.is_string()
         && std::regex_match(
           x.get<std::string>(),
           std::regex{"[0-9a-f]{" + std::to_string(size) + "}"});
}

bool is_uint64_string(const nlohmann::json& x) {
  return x.is_string()
         && std::regex_match(x.get<std::string>(), std::regex{"[0-9]{1,20}"});
}

} // namespace

TEST_CASE("traceparent: the specification's example and what it refuses",
          "[trace]") {
  auto ctx = parse_traceparent(w3c_example);
  REQUIRE(ctx);
  CHECK(hex(ctx->trace) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(hex(ctx->parent) == "00f067aa0ba902b7");
  CHECK(ctx->flags == 1);
  CHECK(traceparent_of(*ctx, ctx->parent) == w3c_example);

  std::string v{w3c_example};
  auto with = [&](size_t at, std::string_view part) {
    auto out = v;
    out.replace(at, part.size(), part);
    return out;
  };
  CHECK_FALSE(parse_traceparent(""));
  CHECK_FALSE(parse_traceparent(v.substr(0, 54)));
  CHECK_FALSE(parse_traceparent(v + "-"));                        // 00 is 55
  CHECK_FALSE(parse_traceparent(with(3, "4BF92F")));              // upper case
  CHECK_FALSE(parse_traceparent(with(0, "ff")));                  // version ff
  CHECK_FALSE(parse_traceparent(with(3, std::string(32, '0'))));  // zero trace
  CHECK_FALSE(parse_traceparent(with(36, std::string(16, '0')))); // zero span
  CHECK_FALSE(parse_traceparent(with(35, "_")));
  CHECK_FALSE(parse_traceparent(with(53, "0g")));
  // A later version may carry more after a '-', and is read as 00.
  auto later = parse_traceparent(with(0, "01") + "-what-comes-next");
  REQUIRE(later);
  CHECK(hex(later->parent) == "00f067aa0ba902b7");
  CHECK_FALSE(parse_traceparent(with(0, "01") + "x"));
  auto unsampled = parse_traceparent(with(53, "00"));
  REQUIRE(unsampled);
  CHECK(unsampled->flags == 0);
}

TEST_CASE("tracestate is passed on only within the propagation limit",
          "[trace]") {
  CHECK(passable_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
  CHECK(passable_tracestate(std::string(512, 'a')));
  CHECK_FALSE(passable_tracestate(std::string(513, 'a')));
  CHECK_FALSE(passable_tracestate("a=b\r\nx-injected: 1"));
}

TEST_CASE("new ids are random, and never zero", "[trace]") {
  auto a = new_trace_id();
  auto b = new_trace_id();
  CHECK(a != b);
  CHECK(a != trace_id{});
  CHECK(new_span_id() != span_id{});
  CHECK(hex(new_span_id()).size() == 16);
}

TEST_CASE("OTLP/HTTP JSON follows the protobuf JSON mapping", "[trace]") {
  request_trace t;
  t.context = *parse_traceparent(w3c_example);
  t.context.state = "rojo=00f067aa0ba902b7";
  span server;
  server.name = "chat gpt-4o";
  server.kind = span_kind::server;
  server.id = new_span_id();
  server.parent = t.context.parent;
  server.start_ns = 1'700'000'000'000'000'000;
  server.end_ns = 1'700'000'000'250'000'000;
  server.attributes = {{"gen_ai.operation.name", std::string{"chat"}},
                       {"gen_ai.usage.input_tokens", int64_t{12}},
                       {"pw_router.ratio", 0.5},
                       {"pw_router.stream", false}};
  server.events.push_back(
    {"pw_router.fallback", server.start_ns + 5, {{"to", std::string{"b"}}}});
  span attempt;
  attempt.name = "chat a";
  attempt.kind = span_kind::client;
  attempt.id = new_span_id();
  attempt.parent = server.id;
  attempt.start_ns = server.start_ns + 1;
  attempt.end_ns = server.start_ns + 2;
  attempt.error = "HTTP 503";
  t.spans = {server, attempt};
  auto body = encode_otlp_json({"gw-1", "1.2.3"}, {t});
  auto doc = nlohmann::json::parse(body);

  const auto& rs = doc.at("resourceSpans");
  REQUIRE(rs.size() == 1);
  const auto& res_attr = rs[0].at("resource").at("attributes");
  CHECK(res_attr[0]
        == nlohmann::json::parse(
          R"({"key":"service.name","value":{"stringValue":"gw-1"}})"));
  const auto& ss = rs[0].at("scopeSpans");
  REQUIRE(ss.size() == 1);
  CHECK(ss[0].at("scope")
        == nlohmann::json::parse(R"({"name":"pw-router","version":"1.2.3"})"));
  const auto& spans = ss[0].at("spans");
  REQUIRE(spans.size() == 2);
  for (const auto& s : spans) {
    // bytes ids as hex (OTLP's exception to the base64 of proto3 JSON),
    // fixed64 times as strings, enums as numbers.
    CHECK(is_hex_of(s.at("traceId"), 32));
    CHECK(s.at("traceId") == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(is_hex_of(s.at("spanId"), 16));
    CHECK(is_hex_of(s.at("parentSpanId"), 16));
    CHECK(s.at("traceState") == "rojo=00f067aa0ba902b7");
    CHECK(s.at("kind").is_number_integer());
    CHECK(is_uint64_string(s.at("startTimeUnixNano")));
    CHECK(is_uint64_string(s.at("endTimeUnixNano")));
    CHECK(s.at("attributes").is_array());
    CHECK(s.at("events").is_array());
    CHECK(s.at("status").is_object());
  }
  CHECK(spans[0].at("parentSpanId") == "00f067aa0ba902b7");
  CHECK(spans[1].at("parentSpanId") == spans[0].at("spanId"));
  CHECK(spans[0].at("kind") == 2);
  CHECK(spans[1].at("kind") == 3);
  CHECK(spans[0].at("startTimeUnixNano") == "1700000000000000000");
  CHECK(spans[0].at("endTimeUnixNano") == "1700000000250000000");
  const auto& attrs = spans[0].at("attributes");
  CHECK(attrs[0].at("value")
        == nlohmann::json::parse(R"({"stringValue":"chat"})"));
  CHECK(attrs[1].at("value") == nlohmann::json::parse(R"({"intValue":"12"})"));
  CHECK(attrs[2].at("value")
        == nlohmann::json::parse(R"({"doubleValue":0.5})"));
  CHECK(attrs[3].at("value")
        == nlohmann::json::parse(R"({"boolValue":false})"));
  const auto& ev = spans[0].at("events")[0];
  CHECK(ev.at("name") == "pw_router.fallback");
  CHECK(ev.at("timeUnixNano") == "1700000000000000005");
  CHECK(spans[0].at("status") == nlohmann::json::object());
  CHECK(spans[1].at("status")
        == nlohmann::json::parse(R"({"code":2,"message":"HTTP 503"})"));

  // A root span has no parentSpanId; text is escaped.
  request_trace root;
  root.context.trace = new_trace_id();
  span only;
  only.name = "a \"quoted\"\nname";
  only.id = new_span_id();
  root.spans = {only};
  auto one = nlohmann::json::parse(encode_otlp_json({}, {root}));
  const auto& s = one["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  CHECK_FALSE(s.contains("parentSpanId"));
  CHECK_FALSE(s.contains("traceState"));
  CHECK(s["name"] == "a \"quoted\"\nname");
  // The request id, when given, is every span's first attribute.
  root.request_id = "req-\"7\"";
  root.spans.push_back(only);
  auto two = nlohmann::json::parse(encode_otlp_json({}, {root, root}));
  const auto& all = two["resourceSpans"][0]["scopeSpans"][0]["spans"];
  REQUIRE(all.size() == 4);
  for (const auto& x : all)
    CHECK(
      x["attributes"][0]
      == nlohmann::json::parse(
        R"({"key":"pw_router.request_id","value":{"stringValue":"req-\"7\""}})"));
}
