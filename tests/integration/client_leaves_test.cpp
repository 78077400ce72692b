// A client that leaves a whole (non-streamed) answer: the gateway sees it
// while the model works, cuts the upstream exchange, gives the model its
// admission back and logs 499. (A client that leaves a stream is in
// streaming_test.cpp and tls_inbound_test.cpp.)

#include "tests/integration/common.hpp"

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

/// A chat request on the wire, not streamed.
std::string raw_chat(const std::string& model,
                     const std::string& connection = "keep-alive") {
  auto body = chat_body(model);
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
         "Bearer "
         + full_key + "\r\nContent-Type: application/json\r\nConnection: "
         + connection + "\r\nContent-Length: " + std::to_string(body.size())
         + "\r\n\r\n" + body;
}

/// An upstream that would answer after 30 s (and notices a cut).
fake_upstream slow_upstream() {
  return fake_upstream{[](const fake_request& req) {
    auto r = answer_ok()(req);
    r.delay = 30s;
    return r;
  }};
}

nlohmann::json model_health(uint16_t port, const std::string& alias) {
  return health_of(port)["models"][alias];
}

} // namespace

TEST_CASE("a client that leaves a whole answer cuts the upstream at once and "
          "frees the model") {
  auto upstream = slow_upstream();
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  {
    raw_connection conn{gw.port()};
    REQUIRE(conn.send(raw_chat("m")));
    REQUIRE(upstream.wait_for_requests(1, 10s));
  } // the client closes its connection here
  // The upstream would answer in 30 s; its cut comes long before. (A bound
  // of 5 s, not a latency figure: ASan on 2 busy cores is slow.)
  CHECK(upstream.wait_for_cut(5s));
  CHECK(gw.wait_for_output("\"status\":499"));
  CHECK(gw.wait_for_output("\"error\":\"client_closed\""));
  auto m = model_health(gw.port(), "m");
  CHECK(m["in_flight"] == 0);
  CHECK(m["cancelled"] == 1);
  CHECK(m["failures"] == 0);
  CHECK(m["circuit"] == "closed");
  // No fallback or retry ran for nobody.
  CHECK(chats(upstream) == 1);
}

TEST_CASE("a client that closes right after its request is seen, though it "
          "left before the gateway looked") {
  auto upstream = slow_upstream();
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  {
    raw_connection conn{gw.port()};
    REQUIRE(conn.send(raw_chat("m")));
  } // closed before the gateway read the request, most likely
  CHECK(gw.wait_for_output("\"status\":499"));
  // Either the upstream never got the request, or it got it and was cut.
  if (chats(upstream) > 0)
    CHECK(upstream.wait_for_cut(5s));
  auto m = model_health(gw.port(), "m");
  CHECK(m["in_flight"] == 0);
  CHECK(m["failures"] == 0);
}

TEST_CASE("a client that stays gets its answer, with the watch on") {
  // The same path as above, without the leaving: a pipelined second
  // request on the connection is not taken for a client that left.
  fake_upstream upstream{[](const fake_request& req) {
    auto r = answer_ok()(req);
    r.delay = 200ms;
    return r;
  }};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  raw_connection conn{gw.port()};
  REQUIRE(conn.send(raw_chat("m") + raw_chat("m", "close")));
  bool closed = false;
  auto got = conn.read_until_close(20s, closed);
  CHECK(closed);
  size_t answers = 0;
  for (auto pos = got.find("HTTP/1.1 200"); pos != std::string::npos;
       pos = got.find("HTTP/1.1 200", pos + 1))
    ++answers;
  CHECK(answers == 2);
  CHECK(chats(upstream) == 2);
}

TEST_CASE("clients that leave as their answers arrive leave no closed "
          "connection in the upstream pool") {
  // 64 clients at a time send a request, and close once the first answer
  // came back, so some leave while their answer arrives: the leaving closes the
  // upstream socket, and an exchange that had read its whole answer still ends
  // well. Such a socket must not go back to the pool: every request after is
  // answered, and the model sees no failure ("Bad file descriptor" opened its
  // breaker when one did).
  fake_upstream upstream{answer_ok()};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  for (int round = 0; round < 30; ++round) {
    std::vector<std::unique_ptr<raw_connection>> clients;
    for (int i = 0; i < 64; ++i) {
      clients.push_back(std::make_unique<raw_connection>(gw.port()));
      REQUIRE(clients.back()->send(raw_chat("m")));
    }
    // Answers are flowing once the first has come: the others leave now,
    // their own answers on the way.
    clients.front()->read_until("\r\n\r\n", 10s);
  } // each round's clients close here
  http_client client{gw.port()};
  for (int i = 0; i < 64; ++i) {
    auto res = client.request("POST", "/v1/chat/completions", chat_body("m"),
                              auth_json(full_key));
    REQUIRE(res.status == 200);
  }
  auto m = model_health(gw.port(), "m");
  CHECK(m["failures"] == 0);
  CHECK(m["circuit"] == "closed");
}
