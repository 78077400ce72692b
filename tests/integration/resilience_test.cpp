// Providers fail; clients should hardly notice: fallback along the chain,
// breakers that open and close, health checks, 503 with Retry-After when
// nothing admits, the request deadline, and a bounded chaos run.

#include "tests/integration/common.hpp"

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

fake_handler fail_with(unsigned status, std::string body = "{}") {
  return [=](const fake_request&) {
    fake_response r;
    r.status = status;
    r.body = body;
    return r;
  };
}

/// Two OpenAI models in one fallback chain, `primary` first (the default
/// model); `primary_more` adds keys to the primary's entry, `extra` to the
/// config after `routing`.
std::string chain_config(const std::string& primary_url,
                         const std::string& secondary_url,
                         const std::string& primary_more = "",
                         const std::string& extra = "") {
  return make_config(openai_model("primary", primary_url, primary_more)
                       + openai_model("secondary", secondary_url),
                     "primary", "",
                     "  fallback_chains:\n    main: [\"primary\", "
                     "\"secondary\"]\n"
                       + extra);
}

http_response ask(const gateway_process& gw, const std::string& model) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      chat_body(model), auth_json(full_key));
}

nlohmann::json model_health(const gateway_process& gw, const std::string& m) {
  return health_of(gw.port())["models"][m];
}

/// A port whose kernel completes TCP connections that nobody accepts or
/// answers: a TLS handshake with it never finishes.
struct silent_listener {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  unsigned short port() const { return acceptor.local_endpoint().port(); }
};

using messages_api::stream_with;

long vm_rss_kb(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmRSS:"))
      return std::stol(line.substr(6));
  return -1;
}

} // namespace

TEST_CASE("every way a provider fails costs one fallback, not the request") {
  struct failure_mode {
    const char* name;
    fake_handler handler;
    std::string model_extra;
  };
  auto delayed = [](std::chrono::milliseconds d) {
    return [d](const fake_request& req) {
      auto r = answer_ok()(req);
      r.delay = d;
      return r;
    };
  };
  std::vector<failure_mode> modes = {
    {"500", fail_with(500), ""},
    {"502", fail_with(502), ""},
    {"503", fail_with(503), ""},
    {"529", fail_with(529), ""},
    {"429 with Retry-After",
     [](const fake_request&) {
       fake_response r;
       r.status = 429;
       r.headers = {{"Retry-After", "5"}};
       return r;
     },
     ""},
    {"accept then close",
     [](const fake_request&) {
       fake_response r;
       r.drop = true;
       return r;
     },
     ""},
    {"reset mid-body",
     [](const fake_request&) {
       fake_response r;
       r.raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               "Content-Length: 500\r\n\r\n{\"id\":\"partial";
       return r;
     },
     ""},
    {"never answers", delayed(30s), "    timeout_seconds: 0.4\n"},
    {"garbage bytes",
     [](const fake_request&) {
       fake_response r;
       r.raw = "\x16\x03\x01 this is not HTTP at all\r\n\r\n";
       return r;
     },
     ""},
    {"wrong content type", fail_with(200, "<html>maintenance</html>"), ""},
    {"huge body", fail_with(200, std::string(40u << 20, ' ')), ""},
  };
  fake_upstream secondary{answer_ok("from the fallback")};
  for (auto& mode : modes) {
    INFO("failure mode: " << mode.name);
    fake_upstream primary{mode.handler};
    gateway_process gw{
      chain_config(primary.base_url(), secondary.base_url(), mode.model_extra)};
    auto res = ask(gw, "primary");
    CHECK(res.status == 200);
    CHECK(res.json()["model"] == "secondary");
    CHECK(res.json()["choices"][0]["message"]["content"]
          == "from the fallback");
    auto h = model_health(gw, "primary");
    CHECK(h["failures"] == 1);
    CHECK(h["circuit"] == "closed"); // one failure is under the threshold
    CHECK(model_health(gw, "secondary")["successes"] == 1);
  }
}

TEST_CASE("without a fallback the client gets the failure's own status") {
  struct expectation {
    fake_handler handler;
    unsigned status;
    std::string code;
  };
  std::vector<expectation> cases = {
    {fail_with(503), 502, "upstream_failed"},
    {fail_with(529), 503, "upstream_overloaded"},
    {[](const fake_request&) {
       fake_response r;
       r.status = 429;
       r.headers = {{"Retry-After", "5"}};
       return r;
     },
     429, "upstream_rate_limited"},
    {fail_with(200, "not json"), 502, "upstream_invalid"},
  };
  for (auto& c : cases) {
    fake_upstream only{c.handler};
    gateway_process gw{make_config(openai_model("m", only.base_url()), "m")};
    auto res = ask(gw, "m");
    CHECK(res.status == c.status);
    CHECK(error_of(res)["code"] == c.code);
    if (c.status == 429)
      CHECK(res.header("retry-after") == "5");
  }
}

TEST_CASE("a dead provider: its breaker opens and traffic moves to the "
          "fallback at once") {
  auto dead = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1";
  fake_upstream secondary{answer_ok()};
  gateway_process gw{chain_config(dead, secondary.base_url(), "",
                                  "health:\n  unhealthy_threshold: 2\n"
                                  "  cooldown_seconds: 60\n"
                                  "  check_interval_seconds: 0\n")};
  for (int i = 0; i < 2; ++i) {
    auto res = ask(gw, "primary");
    CHECK(res.status == 200);
    CHECK(res.json()["model"] == "secondary");
  }
  REQUIRE(gw.wait_for_output("\"circuit\":\"open\""));
  CHECK(model_health(gw, "primary")["circuit"] == "open");
  CHECK(model_health(gw, "primary")["consecutive_failures"] == 2);
  // From now on the dead model is skipped without an attempt.
  for (int i = 0; i < 3; ++i)
    CHECK(ask(gw, "primary").status == 200);
  CHECK(model_health(gw, "primary")["requests"] == 2);
  CHECK(chats(secondary) == 5);
}

TEST_CASE("nothing admits: 503 with Retry-After until the cooldown ends") {
  fake_upstream only{fail_with(503)};
  gateway_process gw{make_config(openai_model("m", only.base_url()), "m", "",
                                 "health:\n  unhealthy_threshold: 1\n"
                                 "  cooldown_seconds: 30\n"
                                 "  check_interval_seconds: 0\n")};
  CHECK(ask(gw, "m").status == 502);
  auto res = ask(gw, "m");
  CHECK(res.status == 503);
  CHECK(error_of(res)["code"] == "no_model_available");
  auto retry = std::stoi(res.header("retry-after"));
  CHECK(retry >= 29);
  CHECK(retry <= 30);
  CHECK(chats(only) == 1);
}

TEST_CASE("a passing health check closes an open breaker") {
  std::atomic<bool> broken{true};
  fake_upstream flaky{[&](const fake_request& req) {
    if (req.method == "GET") // the health check: the server is back
      return fail_with(broken ? 503 : 200, R"({"data":[]})")(req);
    return broken ? fail_with(503)(req) : answer_ok()(req);
  }};
  gateway_process gw{make_config(openai_model("m", flaky.base_url()), "m", "",
                                 "health:\n  unhealthy_threshold: 1\n"
                                 "  cooldown_seconds: 300\n"
                                 "  check_interval_seconds: 0.2\n")};
  REQUIRE(gw.wait_for_output("\"circuit\":\"open\""));
  CHECK(ask(gw, "m").status == 503);
  broken = false;
  REQUIRE(gw.wait_for_output("\"circuit\":\"closed\""));
  CHECK(ask(gw, "m").status == 200);
  auto h = model_health(gw, "m");
  CHECK(h["last_check_ok"] == true);
  for (const auto& r : flaky.requests())
    if (r.method == "GET")
      CHECK(r.target == "/models");
}

TEST_CASE("max_retries retries the same model before falling back") {
  std::atomic<int> calls{0};
  fake_upstream primary{[&](const fake_request& req) {
    return ++calls == 1 ? fail_with(502)(req) : answer_ok()(req);
  }};
  fake_upstream secondary{answer_ok()};
  gateway_process gw{chain_config(primary.base_url(), secondary.base_url(),
                                  "    max_retries: 1\n")};
  auto res = ask(gw, "primary");
  CHECK(res.status == 200);
  CHECK(res.json()["model"] == "primary");
  CHECK(chats(primary) == 2);
  CHECK(chats(secondary) == 0);
}

TEST_CASE("connect_timeout_seconds bounds the TLS handshake, and the fallback "
          "answers") {
  silent_listener silent;
  fake_upstream secondary{answer_ok("from the fallback")};
  // 0.3 s to connect, TLS included, within a 60 s attempt.
  gateway_process bounded{chain_config(
    "https://127.0.0.1:" + std::to_string(silent.port()) + "/v1",
    secondary.base_url(),
    "    timeout_seconds: 60\n    connect_timeout_seconds: 0.3\n")};
  // Without the connect bound the attempt would wait its 60 s; the client
  // gives up after 10.
  http_client client{bounded.port(), 10s};
  auto res = client.request("POST", "/v1/chat/completions",
                            chat_body("primary"), auth_json(full_key));
  CHECK(res.status == 200);
  CHECK(res.json()["model"] == "secondary");
  auto h = model_health(bounded, "primary");
  CHECK(h["failures"] == 1);
  CHECK(h["last_error"].get<std::string>().find("the TLS handshake timed out")
        != std::string::npos);
}

TEST_CASE("first_byte_timeout_seconds cuts an upstream that does not "
          "answer, and the fallback answers") {
  fake_upstream primary{[](const fake_request& req) {
    auto r = answer_ok()(req);
    r.delay = 30s;
    return r;
  }};
  fake_upstream secondary{answer_ok("from the fallback")};
  gateway_process gw{
    chain_config(primary.base_url(), secondary.base_url(),
                 "    timeout_seconds: 60\n    first_byte_timeout_seconds: "
                 "0.3\n")};
  // Without the first-byte bound the attempt would wait the upstream's
  // 30 s; the client gives up after 10.
  http_client client{gw.port(), 10s};
  auto res = client.request("POST", "/v1/chat/completions",
                            chat_body("primary"), auth_json(full_key));
  CHECK(res.status == 200);
  CHECK(res.json()["model"] == "secondary");
  CHECK(chats(primary) == 1);
  auto h = model_health(gw, "primary");
  CHECK(h["failures"] == 1);
  CHECK(h["last_error"].get<std::string>().find(
          "timed out waiting for the response")
        != std::string::npos);
}

TEST_CASE("max_concurrent: a model at its limit is skipped, and admits "
          "again when a call ends") {
  // The primary holds its first call for 3 s: long enough for a second
  // request to find it full.
  std::atomic<int> calls{0};
  fake_upstream primary{[&](const fake_request& req) {
    auto r = answer_ok("from the primary")(req);
    if (++calls == 1)
      r.delay = 3s;
    return r;
  }};
  fake_upstream secondary{answer_ok("from the fallback")};
  gateway_process gw{chain_config(primary.base_url(), secondary.base_url(),
                                  "    max_concurrent: 1\n")};
  http_response first;
  std::thread holder{[&] { first = ask(gw, "primary"); }};
  REQUIRE(primary.wait_for_requests(1));
  auto second = ask(gw, "primary");
  CHECK(second.status == 200);
  CHECK(second.json()["model"] == "secondary");
  CHECK(model_health(gw, "primary")["in_flight"] == 1);
  holder.join();
  CHECK(first.status == 200);
  CHECK(first.json()["model"] == "primary");
  // The slot is free again: the primary serves the next request.
  auto third = ask(gw, "primary");
  CHECK(third.status == 200);
  CHECK(third.json()["model"] == "primary");
  CHECK(chats(primary) == 2);
  CHECK(model_health(gw, "primary")["in_flight"] == 0);
}

TEST_CASE("a stream falls back when the first model fails before its first "
          "byte") {
  auto dead = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1";
  fake_upstream secondary{[](const fake_request&) {
    fake_response r;
    r.content_type = "text/event-stream";
    r.chunks = openai_stream({"saved"});
    return r;
  }};
  gateway_process gw{chain_config(dead, secondary.base_url())};
  auto body = nlohmann::json::parse(chat_body("primary"));
  body["stream"] = true;
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          body.dump(), auth_json(full_key));
  CHECK(res.status == 200);
  CHECK(res.body.find("\"saved\"") != std::string::npos);
  CHECK(res.body.find("\"model\":\"secondary\"") != std::string::npos);
}

TEST_CASE("a stream falls back when the first model fails before its first "
          "token: an error event, a reset after the headers, a stall") {
  struct failure_mode {
    const char* name;
    fake_handler handler;
    std::string primary_extra;
    const char* why;
  };
  // The role chunk alone: headers and an event, but no content yet.
  auto role_only = openai_stream({"never sent"});
  role_only.resize(1);
  std::vector<failure_mode> modes = {
    {"an error event first",
     stream_with({fake_chunk{0ms, sse(R"({"error":{"message":"The server )"
                                      R"(is overloaded","type":)"
                                      R"("server_error"}})")}}),
     "", "the stream failed before its first token: The server is overloaded"},
    {"a reset after the headers", stream_with(role_only, false), "",
     "the stream broke off before its first token"},
    {"a stall before the first delta", stream_with(role_only, true, 10s),
     "    first_byte_timeout_seconds: 0.3\n",
     "no content within the first-byte timeout"},
  };
  fake_upstream secondary{stream_with(openai_stream({"sa", "ved"}))};
  for (auto& mode : modes) {
    INFO("failure mode: " << mode.name);
    temp_dir dir;
    fake_upstream primary{mode.handler};
    gateway_process gw{
      chain_config(primary.base_url(), secondary.base_url(), mode.primary_extra,
                   audit_log_middleware(dir.path / "audit.jsonl"))};
    auto body = nlohmann::json::parse(chat_body("primary"));
    body["stream"] = true;
    body["messages"][0]["content"] = mode.name;
    auto r = send_once(gw.port(), raw_chat_request(body));
    // One 200, and only the fallback's events: nothing of the failed
    // attempt reached the client.
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.body.find("HTTP/1.1") == std::string::npos);
    CHECK(chat_text(r) == "saved");
    CHECK(r.has("\"model\":\"secondary\""));
    CHECK_FALSE(r.has("\"model\":\"primary\""));
    CHECK_FALSE(r.has("\"error\""));
    CHECK(r.count("[DONE]") == 1);
    // The header says the answer came from the fallback, and why.
    CHECK(r.head.find("X-Route-Reason: model:primary; fallback to secondary "
                      "after primary: ")
          != std::string::npos);
    // The breaker heard of the failure.
    CHECK(model_health(gw, "primary")["failures"] == 1);
    CHECK(model_health(gw, "secondary")["successes"] == 1);
    // The audit line says what happened.
    REQUIRE(gw.stop() == 0);
    auto lines = lines_of(dir.path / "audit.jsonl");
    REQUIRE(lines.size() == 2);
    auto line = nlohmann::json::parse(lines[1]);
    CHECK(line["status"] == 200);
    CHECK(line["model"] == "secondary");
    REQUIRE(line["attempts"].size() == 2);
    CHECK(line["attempts"][0]["model"] == "primary");
    INFO(line["attempts"][0]["outcome"]);
    CHECK(line["attempts"][0]["outcome"].get<std::string>().find(mode.why)
          != std::string::npos);
    CHECK(line["attempts"][1]["model"] == "secondary");
    auto reason = line["route_reason"].get<std::string>();
    CHECK(reason.starts_with("model:primary; fallback to secondary after "
                             "primary: "));
    CHECK(reason.find(mode.why) != std::string::npos);
  }
}

TEST_CASE("an Anthropic stream that opens with overloaded_error falls back, "
          "on chat completions and on the Messages API") {
  // message_start, then the error: no content yet.
  auto overloaded = anthropic_stream({"never sent"});
  overloaded.resize(1);
  overloaded.push_back(
    {0ms, sse(R"({"type":"error","error":{"type":"overloaded_error",)"
              R"("message":"Overloaded"}})",
              "error")});
  fake_upstream primary{stream_with(overloaded)};
  SECTION("chat completions, to an OpenAI model") {
    fake_upstream secondary{stream_with(openai_stream({"saved"}))};
    gateway_process gw{make_config(
      anthropic_model("claude", primary.base_url())
        + openai_model("secondary", secondary.base_url()),
      "claude", "",
      "  fallback_chains:\n    main: [\"claude\", \"secondary\"]\n")};
    auto body = nlohmann::json::parse(chat_body("claude"));
    body["stream"] = true;
    auto r = send_once(gw.port(), raw_chat_request(body));
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(chat_text(r) == "saved");
    CHECK(r.has("\"model\":\"secondary\""));
    CHECK_FALSE(r.has("Overloaded"));
    CHECK(model_health(gw, "claude")["failures"] == 1);
  }
  SECTION("the Messages API, to another Anthropic model") {
    fake_upstream secondary{stream_with(anthropic_stream({"saved"}))};
    const std::string messages = "    endpoints: [chat, messages]\n";
    gateway_process gw{make_config(
      anthropic_model("claude", primary.base_url()) + messages
        + anthropic_model("claude-b", secondary.base_url()) + messages,
      "claude", "",
      "  fallback_chains:\n    main: [\"claude\", \"claude-b\"]\n")};
    auto r = messages_api::stream_once(gw.port(),
                                       messages_api::stream_body("claude"));
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.has("\"saved\""));
    CHECK_FALSE(r.has("overloaded_error"));
    CHECK(r.count("event: message_start") == 1);
    CHECK(r.has("event: message_stop"));
    CHECK(model_health(gw, "claude")["failures"] == 1);
    CHECK(model_health(gw, "claude-b")["successes"] == 1);
  }
}

TEST_CASE("a stream whose first content came is not retried: a failure "
          "after it ends the stream with one error event") {
  auto chunks = openai_stream({"half", " an answer"});
  chunks.resize(2); // the role, then "half": content, then a reset
  fake_upstream primary{stream_with(chunks, false)};
  fake_upstream secondary{stream_with(openai_stream({"never"}))};
  gateway_process gw{chain_config(primary.base_url(), secondary.base_url())};
  auto body = nlohmann::json::parse(chat_body("primary"));
  body["stream"] = true;
  auto r = send_once(gw.port(), raw_chat_request(body));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(chat_text(r) == "half");
  CHECK(r.count("\"error\"") == 1);
  CHECK_FALSE(r.has("[DONE]"));
  CHECK(secondary.requests().empty());
}

TEST_CASE("the request deadline answers 504 at the deadline, not when the "
          "upstream would") {
  fake_upstream silent{[](const fake_request& req) {
    auto r = answer_ok()(req);
    r.delay = 30s; // never answers in time
    return r;
  }};
  gateway_process gw{make_config(openai_model("m", silent.base_url()), "m",
                                 "  request_deadline_seconds: 0.5\n")};
  // The upstream would answer after 30 s; the client waits at most 5 s
  // (a later answer is a read timeout, and the request throws), which
  // leaves room for a slow, sanitized build after the 0.5 s deadline.
  http_client client{gw.port(), 5s};
  auto res = client.request("POST", "/v1/chat/completions", chat_body("m"),
                            auth_json(full_key));
  CHECK(res.status == 504);
  CHECK(error_of(res)["type"] == "timeout_error");
}

TEST_CASE("chaos: flapping providers, 50 clients, every request answered in "
          "time") {
  // Four providers that fail at random in different ways.
  auto flaky = [](unsigned seed) {
    auto rng = std::make_shared<std::mt19937>(seed);
    auto mtx = std::make_shared<std::mutex>();
    return [rng, mtx](const fake_request& req) {
      int roll = 0;
      {
        std::lock_guard<std::mutex> guard{*mtx};
        roll = static_cast<int>((*rng)() % 100);
      }
      if (roll < 20)
        return fail_with(503)(req);
      if (roll < 28) {
        fake_response r;
        r.drop = true;
        return r;
      }
      if (roll < 33) {
        auto r = answer_ok()(req);
        r.delay = 3s; // beyond the model timeout
        return r;
      }
      if (roll < 36)
        return fail_with(429)(req);
      return answer_ok()(req);
    };
  };
  fake_upstream a{flaky(1)}, b{flaky(2)}, c{flaky(3)}, d{flaky(4)};
  std::string models;
  for (auto [name, up] : {std::pair{"a", &a}, std::pair{"b", &b},
                          std::pair{"c", &c}, std::pair{"d", &d}})
    models += openai_model(name, up->base_url(), "    timeout_seconds: 1\n");
  gateway_process gw{
    make_config(models, "a", "  request_deadline_seconds: 4\n",
                "  fallback_chains:\n    all: [\"a\", \"b\", \"c\", \"d\"]\n"
                "health:\n  unhealthy_threshold: 3\n  cooldown_seconds: 1\n"
                "  check_interval_seconds: 0\n"),
    // A small sanitizer quarantine, so RSS shows what the gateway keeps,
    // not freed memory the sanitizer holds back.
    {{"ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:quarantine_size_mb=8"}}};
  auto rss_before = vm_rss_kb(gw.pid());
  std::atomic<size_t> ok{0}, enveloped{0}, broken{0};
  auto until = std::chrono::steady_clock::now() + 20s;
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i)
    clients.emplace_back([&] {
      while (std::chrono::steady_clock::now() < until) {
        try {
          // Deadline 4 s plus slack: a later answer counts as a hang.
          http_client client{gw.port(), 5s};
          auto res = client.request("POST", "/v1/chat/completions",
                                    chat_body("all"), auth_json(full_key));
          auto j = res.json();
          if (res.status == 200 && j.contains("choices"))
            ++ok;
          else if (res.status >= 400 && j.contains("error")
                   && j["error"].contains("message"))
            ++enveloped;
          else
            ++broken;
        } catch (const std::exception&) {
          ++broken;
        }
      }
    });
  for (auto& t : clients)
    t.join();
  auto rss_after = vm_rss_kb(gw.pid());
  std::printf("chaos: %zu ok, %zu errors in the envelope, %zu broken; RSS "
              "%ld -> %ld kB\n",
              ok.load(), enveloped.load(), broken.load(), rss_before,
              rss_after);
  CHECK(broken == 0);
  CHECK(ok > 0);
  CHECK(gw.running());
  // Sanitizer builds carry shadow memory; the bound is generous but finite.
  CHECK(rss_after < rss_before + 128 * 1024);
}
