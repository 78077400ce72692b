// Logs never hold up serving: with stdout stalled (a log pipe nobody
// reads), requests are still answered at full speed; the lines that do not
// fit are dropped, counted in /metrics and reported once stdout moves.

#include "tests/integration/common.hpp"
#include "tests/support/exposition.hpp"

using namespace pw::test;
using namespace std::chrono_literals;

TEST_CASE("a stalled stdout never stalls serving, dropped lines are counted") {
  gateway_process gw{
    make_config(echo_model, "echo", "  metrics_public: true\n")};
  gw.pause_output(true);
  // One connection, so one io thread logs every line: its queue (1,024
  // lines) and the pipe (64 KiB, a few hundred lines) overflow.
  http_client client{gw.port(), 10s};
  for (int i = 0; i < 2000; ++i) {
    auto res = client.request("POST", "/v1/chat/completions",
                              chat_body("echo", "line " + std::to_string(i)),
                              auth_json(full_key));
    REQUIRE(res.status == 200);
  }
  auto metrics = http_request(gw.port(), "GET", "/metrics");
  REQUIRE(metrics.status == 200);
  auto dropped
    = parse_exposition(metrics.body).value("pw_router_log_lines_dropped_total");
  CHECK(dropped > 0);
  CHECK(dropped < 2000);
  // stdout moves again: the drops are reported, and logging goes on.
  gw.pause_output(false);
  CHECK(gw.wait_for_output("\"event\":\"log_lines_dropped\""));
  auto after
    = http_request(gw.port(), "POST", "/v1/chat/completions",
                   chat_body("echo", "after the stall"), auth_json(full_key));
  CHECK(after.status == 200);
  CHECK(gw.wait_for_output(after.header("x-request-id")));
}
