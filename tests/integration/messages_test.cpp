// POST /v1/messages and POST /v1/messages/count_tokens (Anthropic's
// Messages API, inbound) end to end: the real binary, fake Anthropic
// upstreams and the echo model. The client key in `x-api-key` or
// `Authorization`, Anthropic's error envelope on both paths, the body
// checks, routing that only picks models serving messages
// (`models.<alias>.endpoints`), the upstream call (the body as sent, the
// model's own key, anthropic-version and anthropic-beta) and its failures,
// streams relayed event by event with their `event:` lines (errors before
// and after the first byte, upstream error events, clients that leave),
// token counts, the echo model's answers whole and streamed, plugins
// reading `system`, message texts and tool results, the models list, the
// audit line, the request counter and the config rules.

#include "tests/integration/common.hpp"
#include "tests/support/exposition.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

using namespace pw::test;
using namespace pw::test::messages_api;
using namespace std::chrono_literals;

namespace {

const std::string serves = "    endpoints: [chat, messages]\n";
const std::string messages_only = "    endpoints: [messages]\n";
const std::string echo_msg = "  echo:\n    provider: echo\n" + serves;

/// A `models:` entry for an Anthropic model on `base_url` (no /v1: the
/// anthropic provider adds it), provider model id "upstream-<alias>".
std::string claude_model(const std::string& alias, const std::string& base_url,
                         const std::string& more = serves) {
  return "  " + alias + ":\n    provider: anthropic\n    model: \"upstream-"
         + alias + "\"\n    api_key: \"" + upstream_key + "\"\n    base_url: \""
         + base_url + "\"\n" + more;
}

/// A whole Messages answer as Anthropic sends it.
const std::string spec_answer
  = R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}})";

/// `spec_answer` as the client must get it from the model `alias`.
std::string spec_answer_as(const std::string& alias) {
  auto out = spec_answer;
  const std::string from = R"("model":"claude-x")";
  out.replace(out.find(from), from.size(), R"("model":")" + alias + "\"");
  return out;
}

const std::string count_answer = R"({"input_tokens":42})";

bool is_count(const fake_request& req) {
  return req.target.ends_with("/count_tokens");
}

// -- SSE events --------------------------------------------------------------

/// An event whose data is `{"type":TYPE, ...rest}`, named TYPE.
sse_event event_of(const std::string& type,
                   const nlohmann::ordered_json& rest
                   = nlohmann::ordered_json::object()) {
  nlohmann::ordered_json data = {{"type", type}};
  for (const auto& [k, v] : rest.items())
    data[k] = v;
  return {type, data.dump()};
}

/// The events of an Anthropic Messages stream that says `pieces`, as the
/// API sends them (with a ping), the model id `model` in message_start.
std::vector<sse_event> messages_events(const std::vector<std::string>& pieces,
                                       const std::string& model = "claude-x") {
  std::vector<sse_event> out;
  out.push_back(
    event_of("message_start",
             {{"message",
               {{"id", "msg_stream_1"},
                {"type", "message"},
                {"role", "assistant"},
                {"model", model},
                {"content", nlohmann::ordered_json::array()},
                {"stop_reason", nullptr},
                {"stop_sequence", nullptr},
                {"usage", {{"input_tokens", 11}, {"output_tokens", 1}}}}}}));
  out.push_back(event_of(
    "content_block_start",
    {{"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}}));
  out.push_back(event_of("ping"));
  for (const auto& p : pieces)
    out.push_back(event_of(
      "content_block_delta",
      {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", p}}}}));
  out.push_back(event_of("content_block_stop", {{"index", 0}}));
  out.push_back(event_of(
    "message_delta",
    {{"delta", {{"stop_reason", "end_turn"}, {"stop_sequence", nullptr}}},
     {"usage", {{"output_tokens", 7}}}}));
  out.push_back(event_of("message_stop"));
  return out;
}

std::vector<fake_chunk> chunks_of(const std::vector<sse_event>& events,
                                  std::chrono::milliseconds gap = 0ms) {
  std::vector<fake_chunk> out;
  for (const auto& e : events)
    out.push_back({gap, sse(e.data, e.name)});
  return out;
}

/// Checks that `got` is `sent` relayed: the same events in order, each
/// with its name, the data unchanged but message_start's `message.model`,
/// which is `alias`.
void check_relayed(const std::vector<sse_event>& got,
                   const std::vector<sse_event>& sent,
                   const std::string& alias) {
  REQUIRE(got.size() == sent.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("event " << i << ": " << sent[i].name);
    CHECK(got[i].name == sent[i].name);
    if (sent[i].name == "message_start") {
      auto expected = sent[i].json();
      expected["message"]["model"] = alias;
      CHECK(got[i].json() == expected);
    } else {
      CHECK(got[i].data == sent[i].data);
    }
  }
}

// -- fake upstreams ----------------------------------------------------------

/// An Anthropic upstream: `{"input_tokens":42}` on count_tokens, a stream
/// saying `pieces` when the body asks for one, `answer` otherwise.
fake_handler answer_messages(std::string answer = spec_answer,
                             std::vector<std::string> pieces = {"Hel", "lo"}) {
  return [=](const fake_request& req) {
    fake_response r;
    if (is_count(req)) {
      r.body = count_answer;
      return r;
    }
    if (asks_stream(nlohmann::json::parse(req.body, nullptr, false))) {
      r.content_type = "text/event-stream";
      r.chunks = chunks_of(messages_events(pieces));
      return r;
    }
    r.body = answer;
    return r;
  };
}

// -- text --------------------------------------------------------------------

std::string replace_all(std::string text, const std::string& from,
                        const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

} // namespace

// -- the upstream call -------------------------------------------------------

TEST_CASE("a messages request reaches the anthropic upstream as sent, with "
          "only the model replaced, and its answer comes back byte for byte "
          "under the alias") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  auto sent = nlohmann::json::parse(R"({
    "model": "claude",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "Be brief.",
                "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": "What is the weather in Paris?"},
      {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
         "input": {"city": "Paris"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
        {"type": "text", "text": "And tomorrow?"}]}
    ],
    "tools": [{"name": "get_weather", "description": "Weather for a city",
               "input_schema": {"type": "object",
                                "properties": {"city": {"type": "string"}},
                                "required": ["city"]}}],
    "tool_choice": {"type": "auto"},
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "stop_sequences": ["END", "STOP"],
    "metadata": {"user_id": "user-1234"},
    "stream": false
  })");
  auto res = ask(gw, sent);
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type") == "application/json");
  CHECK_FALSE(res.header("x-route-reason").empty());
  CHECK(res.body == spec_answer_as("claude"));
  auto got = only_post(upstream);
  CHECK(got.target == "/v1/messages");
  CHECK(got.headers["x-api-key"] == upstream_key);
  CHECK(got.headers["anthropic-version"] == "2023-06-01");
  CHECK_FALSE(got.has_header("anthropic-beta"));
  CHECK(got.headers["content-type"] == "application/json");
  CHECK_FALSE(carries(got, full_key));
  auto expected = sent;
  expected["model"] = "upstream-claude";
  CHECK(nlohmann::json::parse(got.body) == expected);
}

TEST_CASE("a messages answer keeps every field in its order and only its "
          "top-level model changes") {
  // The top-level model comes after a tool input that has a `model` key of
  // its own, with the same value: only the top-level one is the answer's.
  const std::string answer
    = R"({"id":"msg_2","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_9","name":"lookup","input":{"model":"claude-x","z":1,"a":[true,null]}},{"type":"text","text":"café ✓"}],"model":"claude-x","stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":7,"cache_read_input_tokens":3},"container":null,"zz_future_field":{"b":2,"a":1}})";
  const std::string expected
    = R"({"id":"msg_2","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_9","name":"lookup","input":{"model":"claude-x","z":1,"a":[true,null]}},{"type":"text","text":"café ✓"}],"model":"claude","stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":7,"cache_read_input_tokens":3},"container":null,"zz_future_field":{"b":2,"a":1}})";
  fake_upstream upstream{answer_messages(answer)};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  auto res = ask(gw, msg_body("claude"));
  REQUIRE(res.status == 200);
  CHECK(res.body == expected);
}

TEST_CASE("the client's anthropic-version and anthropic-beta reach the "
          "upstream, and 2023-06-01 goes when the client sends none") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  auto headers = with_header(
    with_header(key_headers(full_key), "anthropic-version", "2023-01-01"),
    "anthropic-beta", "prompt-caching-2024-07-31,tools-x");
  REQUIRE(ask(gw, msg_body("claude"), headers).status == 200);
  REQUIRE(ask(gw, msg_body("claude")).status == 200);
  // Streamed, the same.
  REQUIRE(stream_once(gw.port(), stream_body("claude"))
            .head.starts_with("HTTP/1.1 200"));
  auto got = posts_of(upstream);
  REQUIRE(got.size() == 3);
  CHECK(got[0].headers["anthropic-version"] == "2023-01-01");
  CHECK(got[0].headers["anthropic-beta"]
        == "prompt-caching-2024-07-31,tools-x");
  CHECK(got[1].headers["anthropic-version"] == "2023-06-01");
  CHECK_FALSE(got[1].has_header("anthropic-beta"));
  CHECK(got[2].headers["anthropic-version"] == "2023-06-01");
  for (const auto& r : got) {
    CHECK(r.target == "/v1/messages");
    CHECK(r.headers.at("x-api-key") == upstream_key);
  }
}

TEST_CASE("an upstream 5xx on messages falls back along the chain to the "
          "next model that serves messages") {
  fake_upstream failing{answer_with(
    503, R"({"type":"error","error":{"type":"api_error","message":"busy"}})")};
  fake_upstream chat_only{answer_messages()};
  fake_upstream good{answer_messages()};
  auto models = claude_model("claude1", failing.base_url())
                + openai_model("gpt", chat_only.base_url() + "/v1")
                + claude_model("claude2", good.base_url());
  gateway_process gw{
    make_config(models, "claude1", "",
                "  fallback_chains:\n    main: [claude1, gpt, claude2]\n")};
  auto res = ask(gw, msg_body("claude1", "x"));
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.body == spec_answer_as("claude2"));
  CHECK(chats(failing) == 1);
  CHECK(failing.requests().at(0).target == "/v1/messages");
  CHECK(chats(chat_only) == 0);
  auto forwarded = nlohmann::json::parse(only_post(good).body);
  CHECK(forwarded["model"] == "upstream-claude2");
  CHECK(forwarded["messages"] == msg_body("", "x")["messages"]);
}

TEST_CASE("an upstream 2xx that is not a message becomes 502 api_error") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{make_config(claude_model("claude", upstream.base_url()),
                                 "claude", "", patient_health)};
  for (const std::string& answer :
       {std::string{"<html>gateway page</html>"}, std::string{"[]"},
        std::string{"\"message\""}, std::string{R"({"type":"message"})"},
        std::string{R"({"type":"message","content":"hi"})"},
        std::string{R"({"type":"message","content":{"type":"text"}})"},
        std::string{R"({"type":"completion","content":[]})"},
        std::string{R"({"content":[{"type":"text","text":"x"}]})"},
        openai_completion("upstream-claude", "a chat answer")}) {
    INFO(answer);
    upstream.set_handler(answer_with(200, answer));
    auto res = ask(gw, msg_body("claude"));
    expect_error(res, 502);
  }
  // The same model still serves a good answer.
  upstream.set_handler(answer_messages());
  CHECK(ask(gw, msg_body("claude")).status == 200);
}

TEST_CASE("an upstream 4xx with an Anthropic error body is relayed with its "
          "status and message in Anthropic's envelope") {
  fake_upstream upstream{answer_messages()};
  fake_upstream backup{answer_messages()};
  gateway_process gw{make_config(
    claude_model("claude", upstream.base_url())
      + claude_model("claude2", backup.base_url()),
    "claude", "",
    "  fallback_chains:\n    main: [claude, claude2]\n" + patient_health)};
  auto anthropic_error
    = [](const std::string& type, const std::string& message) {
        return nlohmann::json{{"type", "error"},
                              {"error", {{"type", type}, {"message", message}}}}
          .dump();
      };
  struct relayed {
    unsigned status;
    std::string type;
    std::string message;
  };
  std::vector<relayed> cases = {
    {400, "invalid_request_error",
     "max_tokens: 999999 > 8192, which is the maximum"},
    {404, "not_found_error", "model: claude-gone"},
    {413, "request_too_large",
     "Request exceeds the maximum allowed number of bytes."},
  };
  for (const auto& c : cases) {
    INFO(c.status);
    upstream.set_handler(
      answer_with(c.status, anthropic_error(c.type, c.message)));
    for (const auto& path : {messages_path, count_path}) {
      INFO(path);
      auto body
        = path == messages_path ? msg_body("claude") : count_body("claude");
      auto e = expect_error(post_to(gw, path, body.dump()), c.status);
      CHECK(mentions(e, c.message));
    }
  }
  // The model's own key never comes back, even when the upstream says it.
  upstream.set_handler(
    answer_with(400, anthropic_error("invalid_request_error",
                                     "bad request for key " + upstream_key)));
  auto scrubbed = ask(gw, msg_body("claude"));
  CHECK(scrubbed.status == 400);
  CHECK(scrubbed.body.find(upstream_key) == std::string::npos);
  // A relayed 4xx ends the request: the chain is not tried.
  CHECK(posts_of(backup).empty());
  // Alone (a 429 and a 5xx would fall back along the chain): a 429 keeps
  // its Retry-After, Anthropic's 529 "overloaded" is a 503.
  fake_upstream alone{
    answer_with(429, anthropic_error("rate_limit_error", "slow down"),
                {{"Retry-After", "7"}})};
  gateway_process solo{make_config(claude_model("solo", alone.base_url()),
                                   "solo", "", patient_health)};
  auto limited = ask(solo, msg_body("solo"));
  expect_error(limited, 429);
  CHECK(limited.header("retry-after") == "7");
  alone.set_handler(
    answer_with(529, anthropic_error("overloaded_error", "Overloaded")));
  expect_error(ask(solo, msg_body("solo")), 503);
}

// -- keys and envelopes ------------------------------------------------------

TEST_CASE("messages requests take the client key from x-api-key or from "
          "Authorization, and x-api-key wins when both are present") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{make_config(
    echo_msg + claude_model("claude", upstream.base_url()), "claude")};
  const header_list json = {{"Content-Type", "application/json"}};
  auto with = [&](std::vector<std::pair<std::string, std::string>> extra) {
    auto h = json;
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
  };
  struct auth_case {
    header_list headers;
    unsigned status;
  };
  std::vector<auth_case> cases = {
    {with({{"x-api-key", full_key}}), 200},
    {with({{"Authorization", "Bearer " + full_key}}), 200},
    {with({{"x-api-key", full_key}, {"Authorization", "Bearer sk-wrong-1"}}),
     200},
    {with(
       {{"x-api-key", "sk-wrong-2"}, {"Authorization", "Bearer " + full_key}}),
     401},
    // The limited key may not use claude: x-api-key decides.
    {with(
       {{"x-api-key", limited_key}, {"Authorization", "Bearer " + full_key}}),
     403},
    {with(
       {{"x-api-key", full_key}, {"Authorization", "Bearer " + limited_key}}),
     200},
  };
  size_t served = 0;
  for (const auto& path : {messages_path, count_path}) {
    for (size_t i = 0; i < cases.size(); ++i) {
      INFO(path << " case " << i);
      auto body
        = path == messages_path ? msg_body("claude") : count_body("claude");
      auto res = post_to(gw, path, body.dump(), cases[i].headers);
      CHECK(res.status == cases[i].status);
      if (cases[i].status == 200) {
        ++served;
        CHECK(
          res.body
          == (path == messages_path ? spec_answer_as("claude") : count_answer));
      } else {
        expect_error(res, cases[i].status);
      }
    }
  }
  auto got = posts_of(upstream);
  CHECK(got.size() == served);
  for (const auto& r : got) {
    CHECK(r.headers.at("x-api-key") == upstream_key);
    CHECK_FALSE(carries(r, full_key));
    CHECK_FALSE(carries(r, limited_key));
  }
}

TEST_CASE("messages requests without a valid key get 401 "
          "authentication_error in Anthropic's envelope") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  for (const auto& path : {messages_path, count_path}) {
    INFO(path);
    auto body
      = (path == messages_path ? msg_body("claude") : count_body("claude"))
          .dump();
    auto e = expect_error(
      post_to(gw, path, body, {{"Content-Type", "application/json"}}), 401);
    // Anthropic's clients are told where the key goes.
    CHECK(e["message"].get<std::string>().find("x-api-key")
          != std::string::npos);
    auto wrong
      = expect_error(post_to(gw, path, body, key_headers("sk-not-a-key")), 401);
    CHECK(wrong["message"] == "Invalid API key");
    expect_error(post_to(gw, path, body, auth_json("sk-not-a-key")), 401);
    expect_error(post_to(gw, path, body, key_headers("")), 401);
  }
  CHECK(upstream.requests().empty());
}

TEST_CASE("a key not allowed the model gets 403 permission_error on both "
          "messages paths") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{make_config(
    echo_msg + claude_model("claude", upstream.base_url()), "echo")};
  for (const auto& path : {messages_path, count_path}) {
    INFO(path);
    auto body
      = path == messages_path ? msg_body("claude") : count_body("claude");
    expect_error(post_to(gw, path, body.dump(), key_headers(limited_key)), 403);
    // The same key may use echo.
    body["model"] = "echo";
    CHECK(post_to(gw, path, body.dump(), key_headers(limited_key)).status
          == 200);
  }
  CHECK(upstream.requests().empty());
}

TEST_CASE("an unknown model gets 404 not_found_error on both messages "
          "paths") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  for (const auto& path : {messages_path, count_path}) {
    INFO(path);
    auto body = path == messages_path ? msg_body("claude-nope")
                                      : count_body("claude-nope");
    auto e = expect_error(post_to(gw, path, body.dump()), 404);
    CHECK(mentions(e, "claude-nope"));
  }
  CHECK(upstream.requests().empty());
}

TEST_CASE("a model that does not serve messages is refused with 400 "
          "invalid_request_error and never called") {
  fake_upstream upstream{answer_messages()};
  // None of these lists messages: echo and claude-chat have no
  // `endpoints` (chat only).
  auto models
    = echo_model + openai_model("gpt", upstream.base_url() + "/v1")
      + openai_model("cmp", upstream.base_url() + "/v1",
                     "    endpoints: [chat, completions, embeddings]\n")
      + claude_model("claude-chat", upstream.base_url(), "");
  gateway_process gw{make_config(models, "gpt")};
  for (const auto* model : {"echo", "gpt", "cmp", "claude-chat"}) {
    for (const auto& path : {messages_path, count_path}) {
      INFO(model << " " << path);
      auto body = path == messages_path ? msg_body(model) : count_body(model);
      expect_error(post_to(gw, path, body.dump()), 400);
    }
  }
  // A stream request is refused the same way, before any event.
  auto r = stream_once(gw.port(), stream_body("claude-chat"));
  CHECK(r.head.starts_with("HTTP/1.1 400"));
  CHECK(r.head.find("application/json") != std::string::npos);
  CHECK(r.head.find("text/event-stream") == std::string::npos);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  CHECK(j["type"] == "error");
  CHECK(j["error"]["type"] == "invalid_request_error");
  CHECK(upstream.requests().empty());
  // Chat still works on the same model.
  CHECK(http_request(gw.port(), "POST", "/v1/chat/completions",
                     chat_body("claude-chat"), auth_json(full_key))
          .status
        == 200);
}

TEST_CASE("a body over max_body_bytes on a messages path is 413 "
          "request_too_large") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{make_config(claude_model("claude", upstream.base_url()),
                                 "claude", "  max_body_bytes: 2048\n")};
  auto big = std::string(4000, 'x');
  expect_error(ask(gw, msg_body("claude", big)), 413);
  expect_error(count(gw, count_body("claude", big)), 413);
  CHECK(upstream.requests().empty());
}

TEST_CASE("the per-key rate limit on messages is 429 rate_limit_error with "
          "Retry-After") {
  gateway_process gw{make_config(echo_msg, "echo", "",
                                 "rate_limit:\n  max_requests: 1\n"
                                 "  window_seconds: 60\n")};
  REQUIRE(ask(gw, msg_body("echo")).status == 200);
  auto limited = ask(gw, msg_body("echo"));
  expect_error(limited, 429);
  CHECK_FALSE(limited.header("retry-after").empty());
}

TEST_CASE("an unreachable anthropic upstream is 502 api_error and then 503 "
          "overloaded_error once its breaker is open") {
  auto dead = "http://127.0.0.1:" + std::to_string(closed_port());
  gateway_process gw{make_config(claude_model("claude", dead), "claude", "",
                                 "health:\n  unhealthy_threshold: 1\n"
                                 "  cooldown_seconds: 30\n"
                                 "  check_interval_seconds: 0\n")};
  expect_error(ask(gw, msg_body("claude")), 502);
  auto res = ask(gw, msg_body("claude"));
  expect_error(res, 503);
  CHECK_FALSE(res.header("retry-after").empty());
}

TEST_CASE("the request deadline on messages is 504 timeout_error") {
  fake_upstream upstream{[](const fake_request& req) {
    auto r = answer_messages()(req);
    r.delay = 5s;
    return r;
  }};
  gateway_process gw{make_config(claude_model("claude", upstream.base_url()),
                                 "claude",
                                 "  request_deadline_seconds: 0.3\n")};
  expect_error(ask(gw, msg_body("claude")), 504);
  CHECK(http_request(gw.port(), "GET", "/health").status == 200);
}

// -- body checks -------------------------------------------------------------

namespace {

struct bad_body {
  std::string body;
  std::string field; // named in the message; "" = none checked
};

/// Bodies every messages path refuses; on count_tokens without the
/// max_tokens cases and with no max_tokens in the rest.
std::vector<bad_body> bad_bodies(bool count_tokens) {
  auto base = nlohmann::ordered_json::parse(
    R"({"model":"claude","max_tokens":64,"messages":[{"role":"user","content":"hi"}]})");
  if (count_tokens)
    base.erase("max_tokens");
  // `base` with `field` set to the JSON `value` ("" removes it).
  auto with = [base](const std::string& field, const std::string& value) {
    auto b = base;
    if (value.empty())
      b.erase(field);
    else
      b[field] = nlohmann::ordered_json::parse(value);
    return bad_body{b.dump(), field};
  };
  auto message
    = [&](const std::string& one) { return with("messages", "[" + one + "]"); };
  std::vector<bad_body> out = {
    // Not JSON, or not an object.
    {"{not json", ""},
    {R"({"model":"claude",)", ""},
    {"[1,2,3]", ""},
    {"\"just a string\"", ""},
    {"42", ""},
    {"null", ""},
    // `model`.
    with("model", "7"),
    with("model", R"(["claude"])"),
    with("model", "true"),
    with("model", R"({"id":"claude"})"),
    // `messages`.
    with("messages", ""),
    with("messages", "[]"),
    with("messages", "\"hi\""),
    with("messages", R"({"role":"user","content":"hi"})"),
    with("messages", "null"),
    message("1"),
    message("\"hi\""),
    message("null"),
    message(R"({"role":"system","content":"x"})"),
    message(R"({"role":"tool","content":"x"})"),
    message(R"({"role":"","content":"x"})"),
    message(R"({"content":"x"})"),
    message(R"({"role":7,"content":"x"})"),
    message(R"({"role":"user"})"),
    message(R"({"role":"user","content":5})"),
    message(R"({"role":"user","content":null})"),
    message(R"({"role":"user","content":{"type":"text","text":"x"}})"),
    message(R"({"role":"user","content":[1]})"),
    message(R"({"role":"user","content":["x"]})"),
    message(R"({"role":"user","content":[{"text":"x"}]})"),
    message(R"({"role":"user","content":[{"type":5,"text":"x"}]})"),
    message(R"({"role":"user","content":[{"type":"text","text":"x"},null]})"),
    message(
      R"({"role":"user","content":"ok"},{"role":"assistant","content":7})"),
    // `system`.
    with("system", "5"),
    with("system", "true"),
    with("system", R"({"type":"text","text":"x"})"),
    with("system", "[1]"),
    with("system", R"(["x"])"),
    with("system", R"([{"text":"x"}])"),
    with("system", R"([{"type":null,"text":"x"}])"),
    // `stream`.
    with("stream", "\"yes\""),
    with("stream", "1"),
    with("stream", "{}"),
    // Sampling.
    with("temperature", "-0.1"),
    with("temperature", "1.5"),
    with("temperature", "\"0.5\""),
    with("top_p", "-0.1"),
    with("top_p", "1.01"),
    with("top_p", "\"1\""),
    with("top_k", "-1"),
    with("top_k", "1.5"),
    with("top_k", "\"3\""),
    with("stop_sequences", "\"END\""),
    with("stop_sequences", "[1]"),
    with("stop_sequences", R"(["a",2])"),
    with("stop_sequences", "{}"),
    // `tools`.
    with("tools", "{}"),
    with("tools", "\"x\""),
    with("tools", "[1]"),
    with("tools", R"(["get_weather"])"),
    with("tools", R"([{"name":"x","input_schema":{"type":"object"}},2])"),
  };
  if (!count_tokens)
    for (const auto* value : {"", "0", "-1", "2.5", "\"64\"", "true", "null"})
      out.push_back(with("max_tokens", value));
  return out;
}

} // namespace

TEST_CASE("malformed messages bodies get 400 invalid_request_error naming "
          "the field and the upstream sees nothing") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  for (const auto& c : bad_bodies(false)) {
    INFO(c.body);
    auto e = expect_error(post_to(gw, messages_path, c.body), 400);
    if (!c.field.empty())
      CHECK(mentions(e, c.field));
  }
  CHECK(upstream.requests().empty());
  CHECK(gw.running());
}

TEST_CASE("count_tokens checks the same fields but needs no max_tokens") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  for (const auto& c : bad_bodies(true)) {
    INFO(c.body);
    auto e = expect_error(post_to(gw, count_path, c.body), 400);
    if (!c.field.empty())
      CHECK(mentions(e, c.field));
  }
  CHECK(upstream.requests().empty());
  // Without max_tokens a count goes through; a message does not.
  auto res = count(gw, count_body("claude"));
  CHECK(res.status == 200);
  CHECK(res.body == count_answer);
  auto e = expect_error(ask(gw, count_body("claude")), 400);
  CHECK(mentions(e, "max_tokens"));
  CHECK(posts_of(upstream).size() == 1);
}

TEST_CASE("every messages body shape the API allows is accepted") {
  gateway_process gw{make_config(echo_msg, "echo")};
  auto base = nlohmann::ordered_json::parse(
    R"({"model":"echo","max_tokens":64,"messages":[{"role":"user","content":"hi"}]})");
  auto with = [&](const std::string& field, const std::string& value) {
    auto b = base;
    b[field] = nlohmann::ordered_json::parse(value);
    return b.dump();
  };
  std::vector<std::string> bodies = {
    base.dump(),
    with("model", "null"),
    with("max_tokens", "1"),
    with("stream", "false"),
    with("stream", "null"),
    with("temperature", "0"),
    with("temperature", "1"),
    with("temperature", "0.7"),
    with("top_p", "0"),
    with("top_p", "1"),
    with("top_k", "0"),
    with("top_k", "500"),
    with("stop_sequences", "[]"),
    with("stop_sequences", R"(["END","\n\nHuman:"])"),
    with("system", "\"be brief\""),
    with("system", R"([{"type":"text","text":"be brief"}])"),
    with("tools", R"([{"name":"t","input_schema":{"type":"object"}}])"),
    with("metadata", R"({"user_id":"u-1"})"),
    with(
      "messages",
      R"([{"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}])"),
    with(
      "messages",
      R"([{"role":"user","content":"q"},{"role":"assistant","content":"a"},{"role":"user","content":"q2"}])"),
    with(
      "messages",
      R"([{"role":"user","content":"q"},{"role":"assistant","content":"prefill"}])"),
    with("messages", R"([{"role":"user","content":""}])"),
  };
  for (const auto& body : bodies) {
    INFO(body);
    auto res = post_to(gw, messages_path, body);
    CHECK(res.status == 200);
    auto j = nlohmann::json::parse(body);
    j.erase("max_tokens");
    CHECK(count(gw, j).status == 200);
  }
}

// -- routing by endpoint -----------------------------------------------------

TEST_CASE("a messages request without a model takes the first model of the "
          "default route that serves messages") {
  fake_upstream chat_only{answer_messages()};
  fake_upstream claude{answer_messages()};
  auto models = openai_model("gpt", chat_only.base_url() + "/v1")
                + claude_model("claude", claude.base_url());
  gateway_process gw{make_config(
    models, "gpt", "", "  fallback_chains:\n    main: [gpt, claude]\n")};
  auto without = msg_body("");
  auto null_model = msg_body("");
  null_model["model"] = nullptr;
  for (const auto& body : {without, null_model}) {
    INFO(body.dump());
    auto res = ask(gw, body);
    REQUIRE(res.status == 200);
    CHECK(res.body == spec_answer_as("claude"));
  }
  CHECK(chats(claude) == 2);
  CHECK(chats(chat_only) == 0);
}

TEST_CASE("a chat request naming a messages-only model is refused with "
          "endpoint_unsupported") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{make_config(
    echo_model + claude_model("claude", upstream.base_url(), messages_only),
    "echo")};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("claude"), auth_json(full_key));
  CHECK(res.status == 400);
  CHECK(error_of(res)["code"] == "endpoint_unsupported");
  CHECK(upstream.requests().empty());
  // Messages, and token counts, go through.
  CHECK(ask(gw, msg_body("claude")).status == 200);
  CHECK(count(gw, count_body("claude")).status == 200);
  CHECK(chats(upstream) == 2);
}

// -- streams -----------------------------------------------------------------

TEST_CASE("a messages stream is relayed event by event with its event "
          "lines, and only message_start's model changes") {
  auto sent = messages_events({"Hel", "lo", " there"});
  fake_upstream upstream{stream_with(chunks_of(sent))};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  auto body = stream_body("claude");
  auto r = stream_once(gw.port(), body);
  INFO(r.head << "\n\n" << r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("Content-Type: text/event-stream") != std::string::npos);
  CHECK(r.head.find("Content-Length") == std::string::npos);
  CHECK(message_text(r) == "Hello there");
  check_relayed(r.events(), sent, "claude");
  CHECK(r.count("claude-x") == 0);
  CHECK(r.count("[DONE]") == 0);
  CHECK(r.count("chat.completion") == 0);
  auto got = only_post(upstream);
  CHECK(got.target == "/v1/messages");
  CHECK(got.headers["x-api-key"] == upstream_key);
  CHECK_FALSE(carries(got, full_key));
  auto expected = body;
  expected["model"] = "upstream-claude";
  CHECK(nlohmann::json::parse(got.body) == expected);
}

TEST_CASE("an upstream failure before a messages stream is a plain HTTP "
          "error in Anthropic's envelope") {
  fake_upstream upstream{answer_with(
    503, R"({"type":"error","error":{"type":"api_error","message":"busy"}})")};
  gateway_process gw{make_config(claude_model("claude", upstream.base_url()),
                                 "claude", "", patient_health)};
  auto r = stream_once(gw.port(), stream_body("claude"));
  CHECK(r.head.starts_with("HTTP/1.1 502"));
  CHECK(r.head.find("application/json") != std::string::npos);
  CHECK(r.head.find("text/event-stream") == std::string::npos);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  CHECK(j["type"] == "error");
  CHECK(j["error"]["type"] == "api_error");
  // A relayed 4xx too.
  upstream.set_handler(answer_with(
    400,
    R"({"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}})"));
  r = stream_once(gw.port(), stream_body("claude"));
  CHECK(r.head.starts_with("HTTP/1.1 400"));
  CHECK(r.head.find("text/event-stream") == std::string::npos);
  j = nlohmann::json::parse(r.body, nullptr, false);
  CHECK(j["type"] == "error");
  CHECK(j["error"]["type"] == "invalid_request_error");
  CHECK(j["error"]["message"].get<std::string>().find("roles must alternate")
        != std::string::npos);
}

TEST_CASE("an upstream failure before a messages stream falls back to the "
          "next chain member, which streams") {
  fake_upstream failing{answer_with(503, "{}")};
  auto sent = messages_events({"from ", "backup"});
  fake_upstream good{stream_with(chunks_of(sent))};
  auto models = claude_model("claude1", failing.base_url())
                + claude_model("claude2", good.base_url());
  gateway_process gw{
    make_config(models, "claude1", "",
                "  fallback_chains:\n    main: [claude1, claude2]\n")};
  auto r = stream_once(gw.port(), stream_body("claude1"));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("text/event-stream") != std::string::npos);
  CHECK(message_text(r) == "from backup");
  check_relayed(r.events(), sent, "claude2");
  CHECK(chats(failing) == 1);
  auto forwarded = nlohmann::json::parse(only_post(good).body);
  CHECK(forwarded["model"] == "upstream-claude2");
  CHECK(forwarded["stream"] == true);
}

TEST_CASE("a messages stream that breaks before message_stop ends with one "
          "Anthropic error event") {
  auto all = messages_events({"par", "tial", "never"});
  // message_start, content_block_start, ping, "par", "tial": then the
  // connection closes in the middle of the body.
  std::vector<sse_event> sent(all.begin(), all.begin() + 5);
  fake_upstream upstream{stream_with(chunks_of(sent), false)};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  auto r = stream_once(gw.port(), stream_body("claude"));
  INFO(r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.closed);
  CHECK(message_text(r) == "partial");
  auto events = r.events();
  REQUIRE(events.size() == sent.size() + 1);
  check_relayed(std::vector<sse_event>(events.begin(), events.end() - 1), sent,
                "claude");
  check_error_event(events.back(), "api_error");
  CHECK(r.count("event: error") == 1);
  CHECK(r.count("message_stop") == 0);
  CHECK(r.count("[DONE]") == 0);
}

TEST_CASE("an upstream error event is relayed and ends the messages "
          "stream") {
  auto all = messages_events({"par", "tial"});
  std::vector<sse_event> sent(all.begin(), all.begin() + 4);
  sent.push_back(
    {"error",
     R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"});
  // The upstream closes after its error event, or goes quiet: either way
  // the client's stream ends with that event and nothing after it.
  for (bool stall : {false, true}) {
    INFO((stall ? "the upstream goes quiet" : "the upstream closes"));
    fake_upstream upstream{
      stream_with(chunks_of(sent), true, stall ? 30s : 0ms)};
    gateway_process gw{
      make_config(claude_model("claude", upstream.base_url()), "claude")};
    auto r = stream_once(gw.port(), stream_body("claude"), 10s);
    INFO(r.body);
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.closed);
    check_relayed(r.events(), sent, "claude");
    CHECK(r.count("event: error") == 1);
  }
}

TEST_CASE("a client that leaves a messages stream cancels the upstream at "
          "once") {
  // The upstream would stream for 10 s.
  fake_upstream upstream{stream_with(
    chunks_of(messages_events(std::vector<std::string>(400, "tok")), 25ms))};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  {
    raw_connection conn{gw.port()};
    REQUIRE(conn.send(raw_request(stream_body("claude"))));
    auto first = conn.read_until("\"tok\"", 10s);
    REQUIRE(first.find("\"tok\"") != std::string::npos);
  } // the client closes its connection here
  // A bound, not a latency figure: ASan on 2 busy cores is slow.
  CHECK(upstream.wait_for_cut(5s));
  CHECK(gw.wait_for_output("\"error\":\"client_closed\""));
  auto health = health_of(gw.port());
  CHECK(health["models"]["claude"]["in_flight"] == 0);
}

// -- count_tokens ------------------------------------------------------------

TEST_CASE("count_tokens reaches the upstream's count_tokens path with only "
          "the model replaced, and its answer comes back as is") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{
    make_config(claude_model("claude", upstream.base_url()), "claude")};
  auto sent = nlohmann::json::parse(R"({
    "model": "claude",
    "system": "Be brief.",
    "messages": [{"role": "user", "content": [
      {"type": "text", "text": "Count me"}]}],
    "tools": [{"name": "get_weather",
               "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "any"}
  })");
  auto res = count(gw, sent);
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type") == "application/json");
  CHECK(res.body == count_answer);
  auto got = only_post(upstream);
  CHECK(got.target == "/v1/messages/count_tokens");
  CHECK(got.headers["x-api-key"] == upstream_key);
  CHECK_FALSE(carries(got, full_key));
  auto expected = sent;
  expected["model"] = "upstream-claude";
  CHECK(nlohmann::json::parse(got.body) == expected);
}

// -- the echo model ----------------------------------------------------------

TEST_CASE("the echo model answers a message with the text of the last user "
          "message") {
  gateway_process gw{make_config(echo_msg, "echo")};
  struct echo_case {
    std::string messages;
    std::string text;
  };
  std::vector<echo_case> cases = {
    {R"([{"role":"user","content":"hello from messages"}])",
     "hello from messages"},
    {R"([{"role":"user","content":[{"type":"text","text":"first part"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},{"type":"text","text":"second part"}]}])",
     "first part\nsecond part"},
    {R"([{"role":"user","content":"old question"},{"role":"assistant","content":"old answer"},{"role":"user","content":"new question"}])",
     "new question"},
    {R"([{"role":"user","content":"the question"},{"role":"assistant","content":"prefill"}])",
     "the question"},
  };
  int n = 0;
  for (const auto& c : cases) {
    INFO(c.messages);
    auto id = "echo-msg-" + std::to_string(n++);
    nlohmann::json body = {{"model", "echo"},
                           {"max_tokens", 64},
                           {"system", "ignore me"},
                           {"messages", nlohmann::json::parse(c.messages)}};
    auto res = ask(gw, body, with_request_id(id, key_headers(full_key)));
    INFO(res.body);
    REQUIRE(res.status == 200);
    CHECK(res.header("content-type") == "application/json");
    CHECK(res.header("x-request-id") == id);
    auto j = res.json();
    std::set<std::string> keys;
    for (const auto& [k, v] : j.items())
      keys.insert(k);
    CHECK(keys
          == std::set<std::string>{"id", "type", "role", "model", "content",
                                   "stop_reason", "stop_sequence", "usage"});
    CHECK(j["id"] == "msg_echo_" + id);
    CHECK(j["type"] == "message");
    CHECK(j["role"] == "assistant");
    CHECK(j["model"] == "echo");
    CHECK(j["content"]
          == nlohmann::json::array({{{"type", "text"}, {"text", c.text}}}));
    CHECK(j["stop_reason"] == "end_turn");
    CHECK(j["stop_sequence"].is_null());
    REQUIRE(j["usage"]["input_tokens"].is_number_integer());
    REQUIRE(j["usage"]["output_tokens"].is_number_integer());
    CHECK(j["usage"]["input_tokens"].get<int>() > 0);
    CHECK(j["usage"]["output_tokens"].get<int>() > 0);
  }
}

TEST_CASE("the echo model streams a message as the six events of the "
          "Messages API") {
  gateway_process gw{make_config(echo_msg, "echo")};
  for (const auto& content :
       {nlohmann::json("stream me back"),
        nlohmann::json::parse(
          R"([{"type":"text","text":"one"},{"type":"text","text":"two"}])")}) {
    INFO(content.dump());
    auto whole
      = ask(gw, nlohmann::json{
                  {"model", "echo"},
                  {"max_tokens", 64},
                  {"messages", nlohmann::json::array(
                                 {{{"role", "user"}, {"content", content}}})}});
    REQUIRE(whole.status == 200);
    auto answer = whole.json();
    auto text = answer["content"][0]["text"].get<std::string>();
    nlohmann::json body
      = {{"model", "echo"},
         {"max_tokens", 64},
         {"stream", true},
         {"messages",
          nlohmann::json::array({{{"role", "user"}, {"content", content}}})}};
    auto r = stream_once(gw.port(), body);
    INFO(r.body);
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.head.find("text/event-stream") != std::string::npos);
    CHECK(r.head.find("Content-Length") == std::string::npos);
    auto events = r.events();
    CHECK(names_of(events)
          == std::vector<std::string>{
            "message_start", "content_block_start", "content_block_delta",
            "content_block_stop", "message_delta", "message_stop"});
    REQUIRE(events.size() == 6);
    for (const auto& e : events)
      CHECK(e.json()["type"] == e.name);
    auto start = events[0].json()["message"];
    CHECK(start["id"].get<std::string>().starts_with("msg_echo_"));
    CHECK(start["type"] == "message");
    CHECK(start["role"] == "assistant");
    CHECK(start["model"] == "echo");
    CHECK(start["content"] == nlohmann::json::array());
    auto block = events[1].json();
    CHECK(block["index"] == 0);
    CHECK(block["content_block"]["type"] == "text");
    auto delta = events[2].json();
    CHECK(delta["index"] == 0);
    CHECK(delta["delta"]
          == nlohmann::json{{"type", "text_delta"}, {"text", text}});
    CHECK(events[3].json()["index"] == 0);
    auto end = events[4].json();
    CHECK(end["delta"]["stop_reason"] == "end_turn");
    CHECK(end["usage"]["output_tokens"] == answer["usage"]["output_tokens"]);
    CHECK(message_text(r) == text);
  }
}

TEST_CASE("the echo model counts the tokens of a messages request") {
  gateway_process gw{make_config(echo_msg, "echo")};
  for (
    const auto& body :
    {count_body("echo", "count my tokens"),
     nlohmann::json::parse(
       R"({"model":"echo","system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"count these too"}]}]})")}) {
    INFO(body.dump());
    auto res = count(gw, body);
    REQUIRE(res.status == 200);
    CHECK(res.header("content-type") == "application/json");
    auto j = res.json();
    CHECK(j.size() == 1);
    REQUIRE(j["input_tokens"].is_number_integer());
    CHECK(j["input_tokens"].get<int>() > 0);
  }
}

// -- plugins -----------------------------------------------------------------

TEST_CASE("PII in a messages request's system, messages and tool results is "
          "redacted before it reaches the upstream") {
  fake_upstream upstream{answer_messages()};
  gateway_process gw{make_config(claude_model("claude", upstream.base_url()),
                                 "claude", "", pii_redact)};
  const std::string email = "jane.roe@example.com";
  std::vector<nlohmann::json> sent = {
    nlohmann::json::parse(R"({"model":"claude","max_tokens":64,
      "system":"Escalate to jane.roe@example.com",
      "messages":[{"role":"user","content":"write to jane.roe@example.com"}]})"),
    nlohmann::json::parse(R"({"model":"claude","max_tokens":64,
      "system":[{"type":"text","text":"plain"},
                {"type":"text","text":"cc jane.roe@example.com"}],
      "messages":[
        {"role":"user","content":[{"type":"text","text":"mail jane.roe@example.com now"}]},
        {"role":"assistant","content":[{"type":"text","text":"Sent to jane.roe@example.com."},
                                       {"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"x"}}]},
        {"role":"user","content":[
          {"type":"tool_result","tool_use_id":"toolu_1","content":"owner: jane.roe@example.com"},
          {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"also jane.roe@example.com"}]}]}]})"),
  };
  for (const auto& body : sent) {
    INFO(body.dump());
    REQUIRE(ask(gw, body).status == 200);
  }
  // A stream request is redacted too.
  auto streamed = stream_body("claude", "stream to jane.roe@example.com");
  auto r = stream_once(gw.port(), streamed);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  sent.push_back(streamed);
  auto got = posts_of(upstream);
  REQUIRE(got.size() == sent.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("request " << i);
    CHECK(got[i].target == "/v1/messages");
    CHECK(got[i].body.find("jane.roe") == std::string::npos);
    // Every email became the marker, and nothing else changed.
    auto expected = nlohmann::json::parse(
      replace_all(sent[i].dump(), email, "[REDACTED:EMAIL]"));
    expected["model"] = "upstream-claude";
    CHECK(nlohmann::json::parse(got[i].body) == expected);
  }
}

TEST_CASE("a PII-tagged messages request naming an external anthropic model "
          "is served inside its chain by a member that serves messages") {
  fake_upstream external{answer_messages()};
  fake_upstream local_chat{answer_messages()};
  // local-gpt serves chat only: the chain's member for messages is echo.
  auto models = claude_model("external", external.base_url())
                + openai_model("local-gpt", local_chat.base_url() + "/v1")
                + echo_msg;
  gateway_process gw{make_config(models, "external", "",
                                 "  fallback_chains:\n"
                                 "    local-only: [local-gpt, echo]\n"
                                 "  rules:\n"
                                 "    - match: {tag: pii}\n"
                                 "      route_to_chain: local-only\n"
                                 "middleware:\n"
                                 "  pre_request:\n"
                                 "    - plugin: pii\n"
                                 "      config: {action: tag, tag: pii}\n")};
  std::vector<nlohmann::json> bodies = {
    msg_body("external", "contact jane.roe@example.com"),
    nlohmann::json::parse(R"({"model":"external","max_tokens":64,
      "system":"The owner is jane.roe@example.com",
      "messages":[{"role":"user","content":"who owns it?"}]})"),
    nlohmann::json::parse(R"({"model":"external","max_tokens":64,
      "messages":[{"role":"user","content":[
        {"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"jane.roe@example.com"}]},
        {"type":"text","text":"summarise"}]}]})"),
  };
  for (const auto& body : bodies) {
    INFO(body.dump());
    auto res = ask(gw, body);
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == "echo");
    CHECK(res.header("x-route-reason").starts_with("tag:pii->"));
  }
  // Streamed, the same.
  auto r = stream_once(gw.port(),
                       stream_body("external", "contact jane.roe@example.com"));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  auto events = r.events();
  REQUIRE_FALSE(events.empty());
  CHECK(events[0].name == "message_start");
  CHECK(events[0].json()["message"]["model"] == "echo");
  CHECK(chats(external) == 0);
  CHECK(chats(local_chat) == 0);
  // Without PII the named model serves.
  auto res = ask(gw, msg_body("external", "hello"));
  REQUIRE(res.status == 200);
  CHECK(res.body == spec_answer_as("external"));
  CHECK(chats(external) == 1);
}

// -- models list, audit log, metrics, config ---------------------------------

TEST_CASE("/v1/models lists messages among the endpoints a model serves, "
          "never count_tokens") {
  auto models
    = "  echo:\n    provider: echo\n"
      "    endpoints: [messages, embeddings, chat, completions]\n"
      + claude_model("claude", "http://127.0.0.1:1")
      + claude_model("claude-msg", "http://127.0.0.1:1", messages_only)
      + claude_model("claude-chat", "http://127.0.0.1:1", "")
      + openai_model("gpt", "http://127.0.0.1:1/v1");
  gateway_process gw{make_config(models, "echo")};
  auto res
    = http_request(gw.port(), "GET", "/v1/models", "", auth_json(full_key));
  REQUIRE(res.status == 200);
  CHECK(res.body.find("count_tokens") == std::string::npos);
  std::map<std::string, nlohmann::json> endpoints;
  auto body = res.json();
  for (const auto& m : body["data"])
    endpoints[m["id"].get<std::string>()] = m["endpoints"];
  REQUIRE(endpoints.size() == 5);
  CHECK(endpoints["echo"]
        == nlohmann::json{"chat", "completions", "embeddings", "messages"});
  CHECK(endpoints["claude"] == nlohmann::json{"chat", "messages"});
  CHECK(endpoints["claude-msg"] == nlohmann::json::array({"messages"}));
  CHECK(endpoints["claude-chat"] == nlohmann::json::array({"chat"}));
  CHECK(endpoints["gpt"] == nlohmann::json::array({"chat"}));
}

TEST_CASE("the audit log records messages and count_tokens requests under "
          "their endpoint") {
  temp_dir dir;
  auto log = dir.path / "audit.jsonl";
  gateway_process gw{
    make_config(echo_msg, "echo", "", audit_log_middleware(log))};
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("echo"), with_request_id("audit-chat-1"))
            .status
          == 200);
  REQUIRE(ask(gw, msg_body("echo"),
              with_request_id("audit-msg-1", key_headers(full_key)))
            .status
          == 200);
  REQUIRE(count(gw, count_body("echo"),
                with_request_id("audit-count-1", key_headers(full_key)))
            .status
          == 200);
  REQUIRE(gw.stop() == 0);
  auto by_id = audit_records_by_id(log);
  REQUIRE(by_id.count("audit-chat-1") == 1);
  REQUIRE(by_id.count("audit-msg-1") == 1);
  REQUIRE(by_id.count("audit-count-1") == 1);
  CHECK(by_id["audit-chat-1"]["endpoint"] == "chat");
  CHECK(by_id["audit-msg-1"]["endpoint"] == "messages");
  CHECK(by_id["audit-msg-1"]["status"] == 200);
  CHECK(by_id["audit-msg-1"]["model"] == "echo");
  CHECK(by_id["audit-count-1"]["endpoint"] == "count_tokens");
  CHECK(by_id["audit-count-1"]["status"] == 200);
}

TEST_CASE("/metrics counts messages requests under their endpoint") {
  gateway_process gw{make_config(echo_msg, "echo")};
  for (int i = 0; i < 2; ++i)
    REQUIRE(ask(gw, msg_body("echo")).status == 200);
  auto r = stream_once(gw.port(), stream_body("echo"));
  REQUIRE(r.head.starts_with("HTTP/1.1 200"));
  REQUIRE(r.count("message_stop") > 0);
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("echo"), auth_json(full_key))
            .status
          == 200);
  auto res = http_request(gw.port(), "GET", "/metrics", "",
                          {{"Authorization", "Bearer " + full_key}});
  REQUIRE(res.status == 200);
  auto prom = parse_exposition(res.body);
  CHECK(requests_total(prom, "messages", "200") == 3);
  CHECK(requests_total(prom, "chat", "200") == 1);
}

TEST_CASE("messages config errors stop the start with their YAML path") {
  auto config_with = [](const std::string& model) {
    return write_temp_file(make_config(echo_model + model, "echo"));
  };
  std::vector<std::string> files;
  // Every provider serves messages now (OpenAI-compatible ones through a
  // translation); anthropic models serve no embeddings.
  for (const auto* provider : {"openai", "vllm", "ollama"}) {
    INFO(provider);
    auto alias = std::string{"m-"} + provider;
    auto file = config_with("  " + alias + ":\n    provider: " + provider
                            + "\n    model: m\n    base_url: "
                              "\"http://127.0.0.1:1/v1\"\n"
                            + serves);
    files.push_back(file);
    CHECK(run_pw_router({"--check-config", file}).exit_code == 0);
  }
  {
    auto file = config_with(claude_model(
      "claude", "http://127.0.0.1:1", "    endpoints: [chat, embeddings]\n"));
    files.push_back(file);
    auto r = run_pw_router({"--check-config", file});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("models.claude.endpoints: the anthropic provider cannot "
                     "serve \"embeddings\"")
          != std::string::npos);
    r = run_pw_router({"--config", file, "--port", "0"}, {},
                      std::chrono::seconds{10});
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("listening") == std::string::npos);
    CHECK(r.err.find("models.claude.endpoints") != std::string::npos);
  }
  // count_tokens is not an endpoint name: it goes with messages.
  auto counting = config_with(claude_model("claude", "http://127.0.0.1:1",
                                           "    endpoints: [count_tokens]\n"));
  files.push_back(counting);
  auto r = run_pw_router({"--check-config", counting});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("models.claude.endpoints") != std::string::npos);
  // Anthropic and echo models may serve messages, alone or with chat.
  auto good = write_temp_file(make_config(
    echo_msg + claude_model("claude", "http://127.0.0.1:1")
      + claude_model("claude-msg", "http://127.0.0.1:1", messages_only)
      + "  echo2:\n    provider: echo\n" + messages_only,
    "echo"));
  files.push_back(good);
  r = run_pw_router({"--check-config", good});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  for (const auto& f : files)
    std::remove(f.c_str());
}
