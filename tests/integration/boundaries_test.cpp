// Every failure boundary (core/boundary.hpp) holds: the dev build's
// PW_ROUTER_FAULTS makes one boundary throw on its first pass, and the real
// binary must answer that one request with a clear error, log it with the
// request id, count it in /metrics, and serve the next request normally.
// The gateway_process destructor fails the test if the process did not
// exit 0 or a sanitizer reported anything.

#include "tests/integration/common.hpp"
#include "tests/support/exposition.hpp"

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

/// Answers whole completions and streams; `fail_first` answers the first
/// chat 503.
fake_handler upstream_answers(bool fail_first = false) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  return [calls, fail_first](const fake_request& req) {
    fake_response r;
    if (fail_first && calls->fetch_add(1) == 0) {
      r.status = 503;
      r.body = R"({"error":{"message":"busy"}})";
      return r;
    }
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_object() && body.value("stream", false)) {
      r.content_type = "text/event-stream";
      r.chunks = openai_stream({"hel", "lo"});
      return r;
    }
    r.body = openai_completion("upstream-m", "hello");
    return r;
  };
}

std::string config_for(const fake_upstream& up, const std::string& extra = "") {
  return make_config(openai_model("m", up.base_url()), "m",
                     "  metrics_public: true\n", extra);
}

http_response chat(const gateway_process& gw, bool stream = false) {
  auto body = nlohmann::json::parse(chat_body("m"));
  if (stream)
    body["stream"] = true;
  return http_request(gw.port(), "POST", "/v1/chat/completions", body.dump(),
                      auth_json(full_key));
}

double failures_counted(const gateway_process& gw, const std::string& name) {
  auto res = http_request(gw.port(), "GET", "/metrics");
  REQUIRE(res.status == 200);
  return parse_exposition(res.body).value("pw_router_internal_errors_total",
                                          {{"boundary", name}});
}

/// The log line of the failure names the boundary and the request.
void check_logged(const gateway_process& gw, const std::string& name,
                  const std::string& request_id) {
  REQUIRE(gw.wait_for_output("\"event\":\"internal_error\""));
  auto out = gw.output();
  auto at = out.find("\"event\":\"internal_error\"");
  auto line = out.substr(at, out.find('\n', at) - at);
  CHECK(line.find("\"boundary\":\"" + name + "\"") != std::string::npos);
  CHECK(line.find("\"request_id\":\"" + request_id + "\"")
        != std::string::npos);
  CHECK(line.find("injected fault at " + name) != std::string::npos);
}

/// The request after the failure is served as if nothing happened.
void check_next_is_served(const gateway_process& gw, bool stream = false) {
  auto next = chat(gw, stream);
  CHECK(next.status == 200);
  if (stream)
    CHECK(next.body.find("data: [DONE]") != std::string::npos);
  else
    CHECK(next.json()["choices"][0]["message"]["content"] == "hello");
  CHECK(gw.running());
}

/// What every boundary owes: the failed request's log line naming the
/// boundary, the next request served as usual, and the failure counted.
void check_fenced(const gateway_process& gw, const std::string& name,
                  const http_response& failed, bool stream = false) {
  check_logged(gw, name, failed.header("x-request-id"));
  check_next_is_served(gw, stream);
  CHECK(failures_counted(gw, name) == 1);
}

} // namespace

TEST_CASE("a failure while serving a request is that request's 500") {
  fake_upstream up{upstream_answers()};
  gateway_process gw{config_for(up), {{"PW_ROUTER_FAULTS", "request"}}};
  auto res = chat(gw);
  CHECK(res.status == 500);
  CHECK(error_of(res)["code"] == "internal_error");
  CHECK(chats(up) == 0);
  check_fenced(gw, "request", res);
}

TEST_CASE("a failure in the upstream client fails the request, not the "
          "model") {
  fake_upstream up{upstream_answers()};
  gateway_process gw{config_for(up), {{"PW_ROUTER_FAULTS", "upstream_call"}}};
  auto res = chat(gw);
  CHECK(res.status == 500);
  CHECK(error_of(res)["code"] == "internal_error");
  check_fenced(gw, "upstream_call", res);
  // The gateway's own failure is not held against the provider.
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 0);
  CHECK(health["models"]["m"]["in_flight"] == 0);
}

TEST_CASE("a failure translating an answer on the io thread is a 500") {
  fake_upstream up{upstream_answers()};
  gateway_process gw{config_for(up), {{"PW_ROUTER_FAULTS", "upstream_done"}}};
  auto res = chat(gw);
  CHECK(res.status == 500);
  CHECK(error_of(res)["code"] == "internal_error");
  check_fenced(gw, "upstream_done", res);
}

TEST_CASE("a failure translating a stream ends that stream with an error "
          "event") {
  fake_upstream up{upstream_answers()};
  gateway_process gw{config_for(up), {{"PW_ROUTER_FAULTS", "stream_piece"}}};
  auto res = chat(gw, true);
  CHECK(res.status == 200);
  CHECK(res.body.find("\"code\":\"internal_error\"") != std::string::npos);
  CHECK(res.body.find("[DONE]") == std::string::npos);
  check_fenced(gw, "stream_piece", res, true);
}

TEST_CASE("a failure in a SESSION's handler is that request's 500") {
  // The first answer is a 503, which the SESSION handles (the fast path on
  // the io thread takes only successes).
  fake_upstream up{upstream_answers(true)};
  gateway_process gw{config_for(up), {{"PW_ROUTER_FAULTS", "session"}}};
  auto res = chat(gw);
  CHECK(res.status == 500);
  CHECK(error_of(res)["code"] == "internal_error");
  check_fenced(gw, "session", res);
  // The admission of the failed request came back.
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["in_flight"] == 0);
}

TEST_CASE("a failure resolving a route is that request's 500, and the "
          "ROUTER goes on") {
  fake_upstream up{upstream_answers()};
  gateway_process gw{config_for(up), {{"PW_ROUTER_FAULTS", "route"}}};
  auto res = chat(gw);
  CHECK(res.status == 500);
  CHECK(error_of(res)["code"] == "internal_error");
  CHECK(chats(up) == 0);
  check_fenced(gw, "route", res);
  // The ROUTER was not restarted.
  CHECK(gw.output().find("\"actor\":\"router\"") == std::string::npos);
}

TEST_CASE("a failure in a PLUGIN fails its request closed, and only that "
          "one") {
  fake_upstream up{upstream_answers()};
  gateway_process gw{config_for(up, R"(middleware:
  pre_request:
    - plugin: regex
      config:
        rules:
          - pattern: 'DROP TABLE'
            block: 451
)"),
                     {{"PW_ROUTER_FAULTS", "plugin"}}};
  auto res = chat(gw);
  CHECK(res.status == 503);
  CHECK(error_of(res)["code"] == "plugin_unavailable");
  CHECK(chats(up) == 0);
  check_fenced(gw, "plugin", res);
}
