// OpenTelemetry traces end to end: the real binary exports OTLP/HTTP JSON
// to a fake collector on loopback; the spans, their links, the client's
// trace context and what reaches the upstream are checked.

#include "tests/integration/common.hpp"

#include <regex>
#include <thread>

using namespace pw::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr std::string_view client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view client_span = "00f067aa0ba902b7";
const std::string client_traceparent
  = "00-" + std::string{client_trace} + "-" + std::string{client_span} + "-01";

fake_handler answer_status(unsigned status) {
  return [status](const fake_request&) {
    fake_response r;
    r.status = status;
    return r;
  };
}

std::string tracing_block(const fake_upstream& collector,
                          const std::string& more = "") {
  return "tracing:\n  endpoint: \"" + collector.base_url()
         + "/v1/traces\"\n  flush_interval_ms: 20\n" + more;
}

const std::string regex_pre = "middleware:\n"
                              "  pre_request:\n"
                              "    - plugin: regex\n"
                              "      config:\n"
                              "        rules:\n"
                              "          - pattern: 'DROP TABLE'\n"
                              "            block: 451\n";

/// Every span the collector received so far.
std::vector<json> spans_of(const fake_upstream& collector) {
  std::vector<json> out;
  for (const auto& r : collector.requests()) {
    auto doc = json::parse(r.body);
    for (const auto& rs : doc.at("resourceSpans"))
      for (const auto& ss : rs.at("scopeSpans"))
        for (const auto& s : ss.at("spans"))
          out.push_back(s);
  }
  return out;
}

/// Waits until the collector holds `n` spans of `trace_id` (bounded: 10 s).
std::vector<json> wait_for_spans(const fake_upstream& collector,
                                 const std::string& trace_id, size_t n) {
  std::vector<json> found;
  for (int i = 0; i < 500; ++i) {
    found.clear();
    for (auto& s : spans_of(collector))
      if (s.at("traceId") == trace_id)
        found.push_back(std::move(s));
    if (found.size() >= n)
      break;
    collector.wait_for_requests(collector.requests().size() + 1, 20ms);
  }
  return found;
}

/// The value of attribute `key` of `span` (null when absent).
json attr(const json& span, const std::string& key) {
  for (const auto& a : span.at("attributes"))
    if (a.at("key") == key)
      return a.at("value");
  return nullptr;
}

bool matches(const json& x, const char* pattern) {
  return x.is_string()
         && std::regex_match(x.get<std::string>(), std::regex{pattern});
}

/// The span's fields and types as OTLP/HTTP's protobuf JSON mapping has
/// them.
void check_otlp_shape(const json& s) {
  CHECK(matches(s.at("traceId"), "[0-9a-f]{32}"));
  CHECK(matches(s.at("spanId"), "[0-9a-f]{16}"));
  if (s.contains("parentSpanId"))
    CHECK(matches(s.at("parentSpanId"), "[0-9a-f]{16}"));
  CHECK(s.at("name").is_string());
  CHECK(s.at("kind").is_number_integer());
  CHECK(matches(s.at("startTimeUnixNano"), "[0-9]{19}"));
  CHECK(matches(s.at("endTimeUnixNano"), "[0-9]{19}"));
  CHECK(std::stoull(s.at("startTimeUnixNano").get<std::string>())
        <= std::stoull(s.at("endTimeUnixNano").get<std::string>()));
  for (const auto& a : s.at("attributes")) {
    CHECK(a.at("key").is_string());
    const auto& v = a.at("value");
    REQUIRE(v.size() == 1);
    auto kind = v.begin().key();
    CHECK((kind == "stringValue" || kind == "intValue" || kind == "doubleValue"
           || kind == "boolValue"));
    if (kind == "intValue")
      CHECK(matches(v.at("intValue"), "-?[0-9]+"));
  }
  for (const auto& e : s.at("events")) {
    CHECK(matches(e.at("timeUnixNano"), "[0-9]{19}"));
    CHECK(e.at("name").is_string());
  }
  CHECK(s.at("status").is_object());
}

const json* find_span(const std::vector<json>& spans, const std::string& name) {
  for (const auto& s : spans)
    if (s.at("name") == name)
      return &s;
  return nullptr;
}

const std::string metrics_public = "  metrics_public: true\n";

} // namespace

TEST_CASE("a fake OTLP collector receives each request's spans: plugin and "
          "attempts under the server span, in the client's trace") {
  fake_upstream primary{answer_status(503)};
  fake_upstream secondary{answer_ok("fine")};
  fake_upstream collector{answer_status(200)};
  gateway_process gw{make_config(
    openai_model("primary", primary.base_url(), "    max_retries: 0\n")
      + openai_model("secondary", secondary.base_url()),
    "primary", metrics_public,
    "  fallback_chains:\n    main: [\"primary\", \"secondary\"]\n" + regex_pre
      + tracing_block(collector)
      + "health:\n  check_interval_seconds: 0\n  unhealthy_threshold: 1\n"
        "  cooldown_seconds: 600\n")};
  auto headers = auth_json(full_key);
  headers.emplace_back("traceparent", client_traceparent);
  headers.emplace_back("tracestate", "rojo=00f067aa0ba902b7");
  auto r = http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_body("primary"), headers);
  REQUIRE(r.status == 200);
  auto request_id = r.header("x-request-id");

  auto spans = wait_for_spans(collector, std::string{client_trace}, 4);
  REQUIRE(spans.size() == 4);
  for (const auto& s : spans) {
    check_otlp_shape(s);
    CHECK(s.at("traceState") == "rojo=00f067aa0ba902b7");
    CHECK(attr(s, "pw_router.request_id")["stringValue"] == request_id);
  }
  const auto* server = find_span(spans, "chat primary");
  REQUIRE(server != nullptr);
  CHECK(server->at("kind") == 2);
  CHECK(server->at("parentSpanId") == client_span);
  CHECK(attr(*server, "gen_ai.operation.name")["stringValue"] == "chat");
  CHECK(attr(*server, "gen_ai.request.model")["stringValue"] == "primary");
  CHECK(attr(*server, "gen_ai.response.model")["stringValue"] == "secondary");
  CHECK(attr(*server, "gen_ai.provider.name")["stringValue"] == "openai");
  CHECK(attr(*server, "http.response.status_code")["intValue"] == "200");
  CHECK(attr(*server, "gen_ai.usage.input_tokens").contains("intValue"));
  CHECK(attr(*server, "gen_ai.usage.output_tokens").contains("intValue"));
  CHECK(server->at("status") == json::object());
  REQUIRE(server->at("events").size() == 1);
  const auto& fallback = server->at("events")[0];
  CHECK(fallback.at("name") == "pw_router.fallback");
  CHECK(attr(fallback, "pw_router.from")["stringValue"] == "primary");
  CHECK(attr(fallback, "pw_router.to")["stringValue"] == "secondary");

  const auto* plugin = find_span(spans, "plugin regex");
  REQUIRE(plugin != nullptr);
  CHECK(plugin->at("kind") == 1);
  CHECK(plugin->at("parentSpanId") == server->at("spanId"));
  CHECK(attr(*plugin, "pw_router.plugin.stage")["stringValue"] == "pre");
  CHECK(attr(*plugin, "pw_router.plugin.outcome")["stringValue"] == "continue");

  const auto* first = find_span(spans, "chat upstream-primary");
  const auto* second = find_span(spans, "chat upstream-secondary");
  REQUIRE(first != nullptr);
  REQUIRE(second != nullptr);
  for (const auto* a : {first, second}) {
    CHECK(a->at("kind") == 3);
    CHECK(a->at("parentSpanId") == server->at("spanId"));
    CHECK(attr(*a, "server.address")["stringValue"] == "127.0.0.1");
  }
  CHECK(attr(*first, "http.response.status_code")["intValue"] == "503");
  CHECK(first->at("status").at("code") == 2);
  CHECK(attr(*second, "gen_ai.request.model")["stringValue"]
        == "upstream-secondary");
  CHECK(second->at("status") == json::object());

  // Each upstream saw the trace with its attempt's span as the parent.
  auto sent = [](const fake_upstream& u) {
    for (const auto& req : u.requests())
      if (req.method == "POST")
        return req;
    return fake_request{};
  };
  CHECK(sent(primary).headers.at("traceparent")
        == "00-" + std::string{client_trace} + "-"
             + first->at("spanId").get<std::string>() + "-01");
  CHECK(sent(secondary).headers.at("traceparent")
        == "00-" + std::string{client_trace} + "-"
             + second->at("spanId").get<std::string>() + "-01");
  CHECK(sent(secondary).headers.at("tracestate") == "rojo=00f067aa0ba902b7");

  // The export itself.
  auto exports = collector.requests();
  const auto& export_request = exports.front();
  CHECK(export_request.method == "POST");
  CHECK(export_request.target == "/v1/traces");
  CHECK(export_request.headers.at("content-type") == "application/json");
  auto doc = json::parse(export_request.body);
  CHECK(doc["resourceSpans"][0]["resource"]["attributes"][0]
        == json::parse(
          R"({"key":"service.name","value":{"stringValue":"pw-router"}})"));
  CHECK(doc["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"]
        == "pw-router");
  // Prompt text never goes into a span.
  CHECK(export_request.body.find("hello") == std::string::npos);

  // The failure opened primary's breaker: the next request passes it
  // over, an event of its server span, and makes one attempt.
  auto second_trace = std::string(32, 'a');
  auto again = auth_json(full_key);
  again.emplace_back("traceparent", "00-" + second_trace + "-"
                                      + std::string{client_span} + "-01");
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("primary"), again)
            .status
          == 200);
  auto next = wait_for_spans(collector, second_trace, 3);
  REQUIRE(next.size() == 3);
  const auto* next_server = find_span(next, "chat primary");
  REQUIRE(next_server != nullptr);
  REQUIRE(next_server->at("events").size() == 1);
  const auto& skipped = next_server->at("events")[0];
  CHECK(skipped.at("name") == "pw_router.skipped");
  CHECK(attr(skipped, "pw_router.model")["stringValue"] == "primary");
  CHECK(
    attr(skipped, "pw_router.reason")["stringValue"].get<std::string>().find(
      "circuit open")
    != std::string::npos);
  CHECK(find_span(next, "chat upstream-primary") == nullptr);
}

TEST_CASE("a request without traceparent starts a trace, and an unsampled "
          "client trace is passed on, not recorded") {
  fake_upstream up{answer_ok("fine")};
  fake_upstream collector{answer_status(200)};
  gateway_process gw{make_config(openai_model("m", up.base_url()), "m",
                                 metrics_public, tracing_block(collector))};
  // Not sampled by the client: the upstream continues the client's trace,
  // nothing is recorded.
  auto headers = auth_json(full_key);
  auto unsampled = client_traceparent.substr(0, 53) + "00";
  headers.emplace_back("traceparent", unsampled);
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("m"), headers)
            .status
          == 200);
  CHECK(up.requests().back().headers.at("traceparent") == unsampled);

  auto r = http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_body("m"), auth_json(full_key));
  REQUIRE(r.status == 200);
  auto own = up.requests().back().headers.at("traceparent");
  REQUIRE(own.size() == 55);
  auto trace_id = own.substr(3, 32);
  CHECK(trace_id != client_trace);
  auto spans = wait_for_spans(collector, trace_id, 2);
  REQUIRE(spans.size() == 2);
  const auto* server = find_span(spans, "chat m");
  REQUIRE(server != nullptr);
  CHECK_FALSE(server->contains("parentSpanId"));
  CHECK(own.substr(36, 16)
        == find_span(spans, "chat upstream-m")->at("spanId"));
  for (const auto& s : spans_of(collector))
    CHECK(s.at("traceId") != client_trace);
}

TEST_CASE("a collector that is down costs spans, counted, and no request") {
  fake_upstream up{answer_ok("fine")};
  fake_upstream collector{answer_status(503)};
  gateway_process gw{make_config(openai_model("m", up.base_url()), "m",
                                 metrics_public, tracing_block(collector))};
  for (int i = 0; i < 3; ++i)
    REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                         chat_body("m"), auth_json(full_key))
              .status
            == 200);
  REQUIRE(collector.wait_for_requests(1, 10s));
  CHECK(gw.wait_for_output("\"event\":\"trace_export_failed\""));
  bool counted = false;
  for (int i = 0; i < 500 && !counted; ++i) {
    auto m = metrics_of(gw);
    counted = m.value("pw_router_trace_export_failures_total") >= 1
              && m.value("pw_router_trace_spans_dropped_total") >= 2;
    if (!counted)
      std::this_thread::sleep_for(20ms);
  }
  CHECK(counted);
  CHECK(metrics_of(gw).value("pw_router_trace_spans_exported_total") == 0);
}

TEST_CASE("tracing settings are checked at load") {
  auto check = [](const std::string& tracing) {
    auto config = make_config(openai_model("m", "http://127.0.0.1:9"), "m", "",
                              "tracing:\n" + tracing);
    return run_pw_router({"--check-config", write_temp_file(config)});
  };
  CHECK(check("  endpoint: \"https://collector.example/v1/traces\"\n").exit_code
        == 0);
  auto plain = check("  endpoint: \"http://collector.example/v1/traces\"\n");
  CHECK(plain.exit_code == 2);
  CHECK(plain.err.find("tracing.endpoint: must be https") != std::string::npos);
  auto missing = check("  sample_ratio: 0.5\n");
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("tracing.endpoint: required") != std::string::npos);
  auto ratio = check("  endpoint: \"https://c.example\"\n  sample_ratio: 2\n");
  CHECK(ratio.exit_code == 2);
  CHECK(ratio.err.find("tracing.sample_ratio") != std::string::npos);
  auto typo = check("  endpoint: \"https://c.example\"\n  batch: 5\n");
  CHECK(typo.exit_code == 2);
  CHECK(typo.err.find("batch") != std::string::npos);
}
