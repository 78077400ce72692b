// "stream": true through the real binary: pass-through and translation for
// every provider, errors before and after the first byte, idle upstreams,
// clients that leave, clients that do not read.

#include "tests/integration/common.hpp"

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

std::string stream_request(const std::string& model, bool usage = false,
                           const std::string& connection = "close") {
  nlohmann::json body = {{"model", model},
                         {"stream", true},
                         {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  if (usage)
    body["stream_options"] = {{"include_usage", true}};
  return raw_chat_request(body, connection);
}

/// Sends a stream request on a new connection and reads until it closes.
raw_response stream_once(uint16_t port, const std::string& model,
                         bool usage = false) {
  return send_once(port, stream_request(model, usage));
}

fake_handler stream_with(std::vector<fake_chunk> chunks, bool finish = true,
                         std::chrono::milliseconds stall = 0ms) {
  return [=](const fake_request&) {
    fake_response r;
    r.content_type = "text/event-stream";
    r.chunks = chunks;
    r.finish = finish;
    r.stall = stall;
    return r;
  };
}

} // namespace

TEST_CASE("OpenAI-compatible streams pass through with the alias and one "
          "[DONE]") {
  fake_upstream upstream{stream_with(openai_stream({"Hel", "lo", " there"}))};
  for (const auto* provider : {"openai", "vllm", "ollama"}) {
    INFO(provider);
    gateway_process gw{make_config(
      openai_model("m", upstream.base_url() + "/v1", "", provider), "m")};
    auto r = stream_once(gw.port(), "m");
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.head.find("Content-Type: text/event-stream") != std::string::npos);
    CHECK(r.head.find("Cache-Control: no-cache") != std::string::npos);
    CHECK(r.head.find("Content-Length") == std::string::npos);
    CHECK(chat_text(r) == "Hello there");
    CHECK(r.count("data: [DONE]") == 1);
    CHECK(r.body.ends_with("data: [DONE]\n\n"));
    CHECK(r.count("\"model\":\"m\"") == 5);
    CHECK_FALSE(r.has("upstream-model"));
  }
  auto forwarded = nlohmann::json::parse(upstream.requests().back().body);
  CHECK(forwarded["stream"] == true);
}

TEST_CASE("a burst larger than the relay's read buffer arrives whole and in "
          "order") {
  // The relay reads 1 KiB at first and doubles after each full read, up to
  // 16 KiB: one upstream write of ~50 KB, with an event of 20,000 bytes of
  // text in it, crosses every size and splits events across reads.
  std::vector<std::string> pieces;
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    pieces.push_back(std::string(700, static_cast<char>('a' + i % 26)));
    expected += pieces.back();
  }
  pieces.push_back(std::string(20'000, 'z'));
  expected += pieces.back();
  for (bool anthropic : {false, true}) {
    INFO((anthropic ? "anthropic" : "openai"));
    fake_chunk burst;
    for (const auto& c :
         anthropic ? anthropic_stream(pieces) : openai_stream(pieces))
      burst.data += c.data;
    fake_upstream upstream{stream_with({burst})};
    auto model = anthropic ? "  m:\n    provider: anthropic\n    model: "
                             "\"claude-x\"\n    api_key: \""
                               + upstream_key + "\"\n    base_url: \""
                               + upstream.base_url() + "\"\n"
                           : openai_model("m", upstream.base_url() + "/v1");
    gateway_process gw{make_config(model, "m")};
    auto r = stream_once(gw.port(), "m");
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(chat_text(r) == expected);
    CHECK(r.count("data: [DONE]") == 1);
    CHECK(r.body.ends_with("data: [DONE]\n\n"));
  }
}

TEST_CASE("Anthropic streams are translated, with usage when asked") {
  fake_upstream upstream{stream_with(anthropic_stream({"Bon", "jour"}))};
  gateway_process gw{make_config(
    "  claude:\n    provider: anthropic\n    model: \"claude-x\"\n"
    "    api_key: \""
      + upstream_key + "\"\n    base_url: \"" + upstream.base_url() + "\"\n",
    "claude")};
  auto r = stream_once(gw.port(), "claude", true);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(chat_text(r) == "Bonjour");
  CHECK(r.has("\"finish_reason\":\"stop\""));
  CHECK(r.has("\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,"
              "\"total_tokens\":18}"));
  CHECK(r.count("data: [DONE]") == 1);
  auto got = upstream.requests().at(0);
  CHECK(got.target == "/v1/messages");
  CHECK(got.headers["x-api-key"] == upstream_key);
  CHECK(got.headers["anthropic-version"] == "2023-06-01");
  CHECK(nlohmann::json::parse(got.body)["stream"] == true);
  // The log line carries the stream's tokens.
  REQUIRE(gw.wait_for_output("\"completion_tokens\":7"));
}

TEST_CASE("an upstream that ignores \"stream\" still gives the client a "
          "stream") {
  fake_upstream upstream{answer_ok("whole answer")};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  auto r = stream_once(gw.port(), "m", true);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("text/event-stream") != std::string::npos);
  CHECK(chat_text(r) == "whole answer");
  CHECK(r.has("\"usage\""));
  CHECK(r.count("data: [DONE]") == 1);
}

TEST_CASE("the echo model streams too") {
  gateway_process gw{make_config(echo_model, "echo")};
  auto r = stream_once(gw.port(), "echo", true);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("text/event-stream") != std::string::npos);
  CHECK(r.head.find("Content-Length") == std::string::npos);
  CHECK(r.head.find("Cache-Control: no-cache") != std::string::npos);
  CHECK(chat_text(r) == "hi");
  CHECK(r.has("\"usage\""));
  CHECK(r.count("data: [DONE]") == 1);
}

TEST_CASE("an upstream failure before the first byte is a plain HTTP error") {
  fake_upstream upstream{[](const fake_request&) {
    fake_response r;
    r.status = 503;
    r.body = R"({"error":{"message":"busy"}})";
    return r;
  }};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  auto r = stream_once(gw.port(), "m");
  CHECK(r.head.starts_with("HTTP/1.1 502"));
  CHECK(r.head.find("application/json") != std::string::npos);
  CHECK(nlohmann::json::parse(r.body)["error"]["type"] == "upstream_error");
  upstream.set_handler([](const fake_request&) {
    fake_response r;
    r.status = 429;
    r.headers = {{"Retry-After", "3"}};
    return r;
  });
  auto limited = stream_once(gw.port(), "m");
  CHECK(limited.head.starts_with("HTTP/1.1 429"));
  CHECK(limited.head.find("Retry-After: 3") != std::string::npos);
}

TEST_CASE("a stream that breaks off ends with one error event, never "
          "[DONE]") {
  auto chunks = openai_stream({"par", "tial"});
  chunks.resize(3); // role, "par", "tial": no finish, no [DONE]
  fake_upstream upstream{stream_with(chunks, false)};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  auto r = stream_once(gw.port(), "m");
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(chat_text(r) == "partial");
  CHECK(r.count("\"error\"") == 1);
  CHECK_FALSE(r.has("[DONE]"));
  CHECK_FALSE(r.has("\"finish_reason\":\"stop\""));
  CHECK(r.closed);
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 1);
  // The log line says the client got 200 and the stream failed.
  CHECK(gw.wait_for_output("\"status\":200"));
  CHECK(gw.wait_for_output("\"error\":\"stream_failed\""));
}

TEST_CASE("an upstream stream that goes quiet is cut at the idle timeout") {
  auto chunks = openai_stream({"slow"});
  chunks.resize(2);
  fake_upstream upstream{stream_with(chunks, true, 10s)};
  gateway_process gw{make_config(
    openai_model("m", upstream.base_url(), "    idle_timeout_seconds: 0.3\n"),
    "m")};
  auto r = stream_once(gw.port(), "m");
  CHECK(chat_text(r) == "slow");
  CHECK(r.has("idle timeout"));
  CHECK_FALSE(r.has("[DONE]"));
  CHECK(r.closed);
  // The gateway closed its side of the upstream connection.
  CHECK(upstream.wait_for_cut(10s));
}

TEST_CASE("a client that leaves mid-stream cancels the upstream at once") {
  fake_upstream upstream{
    stream_with(openai_stream(std::vector<std::string>(200, "tok"), 25ms))};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m")};
  {
    raw_connection conn{gw.port()};
    REQUIRE(conn.send(stream_request("m")));
    auto first = conn.read_until("\"tok\"", 10s);
    REQUIRE(first.find("\"tok\"") != std::string::npos);
  } // the client closes its connection here
  // The upstream would stream for 5 s more; its cut comes long before.
  // (A bound of 2 s, not a latency figure: ASan on 2 busy cores is slow.)
  CHECK(upstream.wait_for_cut(2s));
  CHECK(gw.wait_for_output("\"error\":\"client_closed\""));
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 0);
  CHECK(health["models"]["m"]["in_flight"] == 0);
}

TEST_CASE("a client that does not read is cut, not buffered for") {
  // 16 MiB of events as fast as the upstream can send them.
  std::vector<std::string> big(2048, std::string(8192, 'x'));
  fake_upstream upstream{stream_with(openai_stream(big))};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m",
                                 "  write_timeout_seconds: 0.5\n")};
  raw_connection conn{gw.port()};
  REQUIRE(conn.send(stream_request("m")));
  // The client reads nothing. The gateway stops reading the upstream when
  // the client's socket is full, then cuts both after the write timeout.
  CHECK(upstream.wait_for_cut(20s));
  CHECK(gw.running());
  CHECK(http_request(gw.port(), "GET", "/health").status == 200);
}

TEST_CASE("a stream still flowing at the request deadline ends with one "
          "error event at the deadline") {
  fake_upstream upstream{
    stream_with(openai_stream(std::vector<std::string>(200, "tok"), 50ms))};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m",
                                 "  request_deadline_seconds: 0.5\n")};
  raw_connection conn{gw.port()};
  REQUIRE(conn.send(stream_request("m")));
  // The stream would flow for 10 s; the event comes at the 0.5 s deadline
  // (the client's 5 s bound leaves room for a slow, sanitized build).
  auto first = conn.read_until("deadline_exceeded", 5s);
  REQUIRE(first.find("deadline_exceeded") != std::string::npos);
  bool closed = false;
  auto rest = conn.read_until_close(10s, closed);
  auto r = split(first + rest, closed);
  CHECK(chat_text(r).starts_with("tok"));
  CHECK(r.count("\"error\"") == 1);
  CHECK(r.has("\"type\":\"timeout_error\""));
  CHECK_FALSE(r.has("[DONE]"));
  CHECK(r.closed);
  CHECK(upstream.wait_for_cut(10s));
  // The model was cut off, not at fault.
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 0);
  CHECK(health["models"]["m"]["in_flight"] == 0);
}

TEST_CASE("a stream longer than the model's timeout_seconds is cut and "
          "counts against the model") {
  fake_upstream upstream{
    stream_with(openai_stream(std::vector<std::string>(200, "tok"), 50ms))};
  gateway_process gw{make_config(
    openai_model("m", upstream.base_url(), "    timeout_seconds: 0.4\n"), "m",
    "  request_deadline_seconds: 30\n")};
  auto r = stream_once(gw.port(), "m");
  CHECK(chat_text(r).starts_with("tok"));
  CHECK(r.has("\"code\":\"timeout\""));
  CHECK(r.has("timeout_seconds"));
  CHECK_FALSE(r.has("[DONE]"));
  CHECK(upstream.wait_for_cut(10s));
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 1);
}
