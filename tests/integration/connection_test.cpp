// The connection layer: keep-alive both ways, size limits before reading,
// slow clients, the connection cap, pipelining and 100-continue.

#include "tests/integration/common.hpp"

using namespace pw::test;

namespace {

std::string post_head(const std::string& extra_headers, size_t length) {
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
         "Bearer "
         + full_key + "\r\nContent-Type: application/json\r\n" + extra_headers
         + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

} // namespace

TEST_CASE("keep-alive holds on both sides: one client connection, one "
          "upstream connection") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  http_client client{gw.port()};
  for (int i = 0; i < 3; ++i) {
    auto res = client.request("POST", "/v1/chat/completions", chat_body("gpt"),
                              auth_json(full_key));
    REQUIRE(res.status == 200);
    CHECK(res.keep_alive);
  }
  CHECK(upstream.requests().size() == 3);
  // One downstream connection lives on one io thread, whose pool reuses
  // its upstream connection.
  CHECK(upstream.connections_opened() == 1);
}

TEST_CASE("an oversized body is refused from its Content-Length, before it "
          "is sent") {
  gateway_process gw{
    make_config(echo_model, "echo", "  max_body_bytes: 2048\n")};
  raw_connection conn{gw.port()};
  REQUIRE(conn.send(post_head("", 1'000'000)));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 413"));
  CHECK(reply.find("\"payload_too_large\"") != std::string::npos);
  CHECK(closed);
}

TEST_CASE("a client still uploading an oversized body reads the 413") {
  gateway_process gw{
    make_config(echo_model, "echo", "  max_body_bytes: 2048\n")};
  raw_connection conn{gw.port()};
  // Headers and a first part of the body in one go, as SDKs send them.
  REQUIRE(conn.send(post_head("", 1'000'000) + std::string(64 * 1024, 'x')));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 413"));
  CHECK(reply.find("payload_too_large") != std::string::npos);
}

TEST_CASE("an oversized chunked body is cut as it arrives") {
  gateway_process gw{
    make_config(echo_model, "echo", "  max_body_bytes: 2048\n")};
  raw_connection conn{gw.port()};
  std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer "
                     + full_key + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string chunk = "1000\r\n" + std::string(0x1000, 'a') + "\r\n";
  REQUIRE(conn.send(head + chunk));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 413"));
}

TEST_CASE("a client that writes its whole 10 MiB body before reading gets "
          "its 413") {
  // As Python's httpx and most clients do: the gateway answers at once
  // from Content-Length, then keeps reading and dropping until the client
  // finished writing, so closing never resets the answer away.
  gateway_process gw{make_config(echo_model, "echo")};
  raw_connection conn{gw.port()};
  const size_t body = 10 * 1024 * 1024 + 1;
  REQUIRE(conn.send(post_head("", body)));
  REQUIRE(conn.send(std::string(body, 'x')));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 413"));
  CHECK(reply.find("payload_too_large") != std::string::npos);
  CHECK(closed);
}

TEST_CASE("a key is checked before the body is read") {
  gateway_process gw{make_config(echo_model, "echo")};
  raw_connection conn{gw.port()};
  const size_t body = 5 * 1024 * 1024;
  REQUIRE(conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer sk-wrong\r\nContent-Length: "
                    + std::to_string(body) + "\r\n\r\n"));
  // The whole body goes out before the client reads: the 401 survives it.
  REQUIRE(conn.send(std::string(body, 'x')));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 401"));
  CHECK(reply.find("WWW-Authenticate: Bearer") != std::string::npos);
  CHECK(reply.find("invalid_api_key") != std::string::npos);
  CHECK(closed);
  // With a valid key the same endpoint reads the body as before.
  auto ok = http_request(gw.port(), "POST", "/v1/chat/completions",
                         chat_body("echo"), auth_json(full_key));
  CHECK(ok.status == 200);
}

TEST_CASE("a 64 KiB header field is 431, not 414") {
  gateway_process gw{make_config(echo_model, "echo")};
  raw_connection conn{gw.port()};
  REQUIRE(conn.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
                    + std::string(64 * 1024, 'b') + "\r\n\r\n"));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 431"));
  CHECK(reply.find("headers_too_large") != std::string::npos);
}

TEST_CASE("oversized headers get 431") {
  gateway_process gw{
    make_config(echo_model, "echo", "  max_header_bytes: 2048\n")};
  raw_connection conn{gw.port()};
  REQUIRE(conn.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
                    + std::string(4096, 'b') + "\r\n\r\n"));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 431"));
  CHECK(reply.find("headers_too_large") != std::string::npos);
}

TEST_CASE("a slow client cannot pin a connection, and others are still "
          "served") {
  gateway_process gw{make_config(echo_model, "echo",
                                 "  header_timeout_seconds: 0.5\n"
                                 "  body_timeout_seconds: 0.5\n")};
  SECTION("headers that never end") {
    raw_connection slow{gw.port()};
    REQUIRE(slow.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"));
    // Meanwhile a normal request is answered.
    CHECK(http_request(gw.port(), "GET", "/health").status == 200);
    bool closed = false;
    slow.read_until_close(std::chrono::seconds{10}, closed);
    CHECK(closed);
  }
  SECTION("a body that never arrives") {
    raw_connection slow{gw.port()};
    REQUIRE(slow.send(post_head("", 100) + "{\"model\":"));
    bool closed = false;
    slow.read_until_close(std::chrono::seconds{10}, closed);
    CHECK(closed);
  }
  SECTION("a connection that never sends anything") {
    raw_connection idle{gw.port()};
    bool closed = false;
    idle.read_until_close(std::chrono::seconds{10}, closed);
    CHECK(closed);
  }
  CHECK(gw.running());
}

TEST_CASE("over the connection limit a client gets 503 and a close") {
  gateway_process gw{
    make_config(echo_model, "echo", "  io_threads: 1\n  max_connections: 2\n")};
  raw_connection first{gw.port()};
  raw_connection second{gw.port()};
  // Both are accepted: each answers a request on its connection.
  for (auto* c : {&first, &second}) {
    REQUIRE(c->send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(c->read_until("\"status\":\"healthy\"", std::chrono::seconds{10})
            .starts_with("HTTP/1.1 200"));
  }
  raw_connection third{gw.port()};
  bool closed = false;
  auto reply = third.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.1 503"));
  CHECK(reply.find("overloaded") != std::string::npos);
  CHECK(closed);
}

TEST_CASE("pipelined requests are answered in order") {
  gateway_process gw{make_config(echo_model, "echo")};
  raw_connection conn{gw.port()};
  auto one = chat_body("echo", "first");
  auto two = chat_body("echo", "second");
  REQUIRE(conn.send(post_head("", one.size()) + one + post_head("", two.size())
                    + two));
  auto replies = conn.read_until("\"second\"", std::chrono::seconds{10});
  auto a = replies.find("\"first\"");
  auto b = replies.find("\"second\"");
  CHECK(a != std::string::npos);
  CHECK(b != std::string::npos);
  CHECK(a < b);
}

TEST_CASE("Expect: 100-continue gets a 100 before the body is sent") {
  gateway_process gw{make_config(echo_model, "echo")};
  raw_connection conn{gw.port()};
  auto body = chat_body("echo", "continued");
  REQUIRE(conn.send(post_head("Expect: 100-continue\r\n", body.size())));
  CHECK(conn.read_until("\r\n\r\n", std::chrono::seconds{10})
          .starts_with("HTTP/1.1 100 Continue"));
  REQUIRE(conn.send(body));
  auto reply = conn.read_until("\"continued\"", std::chrono::seconds{10});
  CHECK(reply.starts_with("HTTP/1.1 200"));
}

TEST_CASE("an HTTP/1.0 client never gets an interim 100") {
  gateway_process gw{make_config(echo_model, "echo")};
  raw_connection conn{gw.port()};
  auto body = chat_body("echo", "old client");
  auto head = post_head("Expect: 100-continue\r\n", body.size());
  head.replace(head.find("HTTP/1.1"), 8, "HTTP/1.0");
  REQUIRE(conn.send(head + body));
  bool closed = false;
  auto reply = conn.read_until_close(std::chrono::seconds{10}, closed);
  CHECK(reply.starts_with("HTTP/1.0 200"));
  CHECK(reply.find(" 100 ") == std::string::npos);
}
