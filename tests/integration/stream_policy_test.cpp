// Post plugins on streamed answers (`stream: hold | refuse | record` on a
// `middleware.post_response[]` entry) through the real binary: held text is
// redacted exactly as a whole answer is, whatever the upstream's chunking
// (one character per event included), in chat content, tool-call arguments,
// completions text and Messages text deltas; a block ends the stream after
// the text before the blocked span, with content_filter (refusal for
// Messages) and a policy_blocked error event, never [DONE]; `refuse`
// answers a stream request 400 before any upstream call; `record` keeps
// today's pass-through. The audit line says what the held plugins did, and
// the config rules name their YAML paths.

#include "tests/integration/common.hpp"

#include <filesystem>
#include <string>
#include <vector>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

const std::string secret_text
  = "Card 4111 1111 1111 1111 and mail jane.doe@example.com, ok.";
const std::string redacted_text
  = "Card [REDACTED:CARD] and mail [REDACTED:EMAIL], ok.";

/// `text` cut into pieces of `n` bytes (the last may be shorter); ASCII
/// only.
std::vector<std::string> pieces_of(const std::string& text, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); i += n)
    out.push_back(text.substr(i, n));
  return out;
}

/// A `middleware:` block with one post_response entry for `plugin`,
/// `config` (a flow mapping) and `more` keys of the entry ("      stream:
/// hold\n").
std::string post_entry(const std::string& plugin, const std::string& config,
                       const std::string& more = "") {
  return "middleware:\n  post_response:\n    - plugin: " + plugin
         + "\n      config: " + config + "\n" + more;
}

const std::string pii_redact_post = post_entry("pii", "{action: redact}");

/// A regex post entry that blocks 'secret project x' with "no secrets".
const std::string regex_block_entry
  = "    - plugin: regex\n"
    "      config:\n"
    "        rules:\n"
    "          - pattern: 'secret project x'\n"
    "            block: 403\n"
    "            message: \"no secrets\"\n";

const std::string regex_block_post
  = "middleware:\n  post_response:\n" + regex_block_entry;

/// An OpenAI-compatible upstream that says `text`: as a stream of
/// `piece`-byte content deltas when the body asks for one, whole otherwise.
fake_handler answer_text(const std::string& text, size_t piece = 1,
                         std::chrono::milliseconds gap = 0ms) {
  return [=](const fake_request& req) {
    fake_response r;
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_object() && body.value("stream", false)) {
      r.content_type = "text/event-stream";
      r.chunks = openai_stream(pieces_of(text, piece), gap);
    } else {
      r.body = openai_completion("upstream-m", text);
    }
    return r;
  };
}

/// A chat body for `model` saying "hi", a stream when `stream`.
nlohmann::json chat_request(const std::string& model, bool stream) {
  nlohmann::json body
    = {{"model", model}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  if (stream)
    body["stream"] = true;
  return body;
}

/// A POST of `body` to `path` on the wire, with the full key and, when
/// given, an X-Request-Id.
std::string raw_post(const std::string& path, const nlohmann::json& body,
                     const std::string& request_id = "") {
  auto text = body.dump();
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
         + full_key + "\r\nContent-Type: application/json\r\n"
         + (request_id.empty() ? "" : "X-Request-Id: " + request_id + "\r\n")
         + "Connection: close\r\nContent-Length: " + std::to_string(text.size())
         + "\r\n\r\n" + text;
}

/// A chat stream request for `model`, read until the gateway closes.
raw_response chat_stream(const gateway_process& gw, const std::string& model,
                         const std::string& request_id = "") {
  return send_once(gw.port(), raw_post("/v1/chat/completions",
                                       chat_request(model, true), request_id));
}

/// The same request whole: the assistant's content.
std::string chat_whole(const gateway_process& gw, const std::string& model) {
  auto r = http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_request(model, false).dump(), auth_json(full_key));
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["choices"][0]["message"]["content"].get<std::string>();
}

/// The JSON events of a stream (everything but [DONE]).
std::vector<nlohmann::json> json_events(const raw_response& r) {
  std::vector<nlohmann::json> out;
  for (const auto& e : r.events())
    if (e.data != "[DONE]")
      out.push_back(e.json());
  return out;
}

/// Chunks of a chat stream that carry content text.
size_t content_events(const raw_response& r) {
  size_t n = 0;
  for (const auto& j : json_events(r)) {
    if (!j.is_object() || !j.contains("choices") || j["choices"].empty())
      continue;
    auto delta = j["choices"][0].value("delta", nlohmann::json::object());
    if (delta.contains("content") && delta["content"].is_string()
        && !delta["content"].get<std::string>().empty())
      ++n;
  }
  return n;
}

/// The arguments of tool call `k` of choice 0, assembled from a chat
/// stream's deltas.
std::string tool_arguments(const raw_response& r, size_t k = 0) {
  std::string out;
  for (const auto& j : json_events(r)) {
    if (!j.is_object() || !j.contains("choices") || j["choices"].empty())
      continue;
    auto delta = j["choices"][0].value("delta", nlohmann::json::object());
    if (!delta.contains("tool_calls") || !delta["tool_calls"].is_array())
      continue;
    for (const auto& call : delta["tool_calls"])
      if (call.value("index", size_t{0}) == k && call.contains("function")
          && call["function"].contains("arguments")
          && call["function"]["arguments"].is_string())
        out += call["function"]["arguments"].get<std::string>();
  }
  return out;
}

/// One chat.completion.chunk event with `delta` and `finish`.
fake_chunk chat_chunk(const nlohmann::json& delta,
                      const nlohmann::json& finish = nullptr) {
  nlohmann::ordered_json c
    = {{"id", "chatcmpl-policy"},
       {"object", "chat.completion.chunk"},
       {"created", 1700000000},
       {"model", "upstream-model"},
       {"choices",
        nlohmann::json::array(
          {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
  return {0ms, sse(c.dump())};
}

/// Checks that `r` is a chat stream cut by a policy: 200, a last chunk
/// with content_filter, then one policy_blocked error event saying
/// `message`, and no [DONE].
void check_cut(const raw_response& r, const std::string& message) {
  INFO(r.head << "\n\n" << r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.closed);
  CHECK_FALSE(r.has("[DONE]"));
  CHECK_FALSE(r.has("\"finish_reason\":\"stop\""));
  auto events = json_events(r);
  REQUIRE(events.size() >= 2);
  auto last = events.back();
  REQUIRE(last.contains("error"));
  CHECK(last["error"]["type"] == "policy_error");
  CHECK(last["error"]["code"] == "policy_blocked");
  CHECK(last["error"]["message"] == message);
  auto before = events[events.size() - 2];
  REQUIRE(before.contains("choices"));
  CHECK(before["choices"][0]["finish_reason"] == "content_filter");
  CHECK(r.count("\"finish_reason\":\"content_filter\"") == 1);
  CHECK(r.count("\"error\"") == 1);
}

/// The events of an Anthropic Messages stream that says `pieces`, as the
/// API sends them (with a ping).
std::vector<fake_chunk>
messages_stream(const std::vector<std::string>& pieces) {
  std::vector<fake_chunk> out;
  auto ev = [&](const std::string& type, nlohmann::ordered_json rest) {
    nlohmann::ordered_json data = {{"type", type}};
    for (const auto& [k, v] : rest.items())
      data[k] = v;
    out.push_back({0ms, sse(data.dump(), type)});
  };
  ev("message_start",
     {{"message",
       {{"id", "msg_policy_1"},
        {"type", "message"},
        {"role", "assistant"},
        {"model", "claude-x"},
        {"content", nlohmann::ordered_json::array()},
        {"stop_reason", nullptr},
        {"stop_sequence", nullptr},
        {"usage", {{"input_tokens", 11}, {"output_tokens", 1}}}}}});
  ev("content_block_start",
     {{"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}});
  ev("ping", nlohmann::ordered_json::object());
  for (const auto& p : pieces)
    ev("content_block_delta",
       {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", p}}}});
  ev("content_block_stop", {{"index", 0}});
  ev("message_delta",
     {{"delta", {{"stop_reason", "end_turn"}, {"stop_sequence", nullptr}}},
      {"usage", {{"output_tokens", 7}}}});
  ev("message_stop", nlohmann::ordered_json::object());
  return out;
}

const std::string serves_messages = "    endpoints: [chat, messages]\n";
const std::string serves_completions = "    endpoints: [chat, completions]\n";

/// One event of a completions stream.
fake_chunk completion_chunk(const std::string& text,
                            const nlohmann::json& finish = nullptr) {
  nlohmann::json c
    = {{"id", "cmpl-1"},
       {"object", "text_completion"},
       {"created", 1},
       {"model", "upstream-model"},
       {"choices", nlohmann::json::array({{{"text", text},
                                           {"index", 0},
                                           {"logprobs", nullptr},
                                           {"finish_reason", finish}}})}};
  return {0ms, sse(c.dump())};
}

/// The text of choice 0 of a completions stream, assembled from its events.
std::string completion_text(const raw_response& r) {
  std::string out;
  for (const auto& j : json_events(r)) {
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array())
      continue;
    for (const auto& c : j["choices"])
      if (c.value("index", size_t{0}) == 0 && c.contains("text")
          && c["text"].is_string())
        out += c["text"].get<std::string>();
  }
  return out;
}

/// Runs --check-config on the echo config with `middleware`.
run_result check_config(const std::string& middleware) {
  return run_pw_router(
    {"--check-config",
     write_temp_file(make_config(echo_model, "echo", "", middleware))});
}

bool holds(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// -- hold: redaction ---------------------------------------------------------

TEST_CASE("a held pii redact entry redacts a stream sent one character per "
          "event exactly as the whole answer",
          "[integration][stream-policy]") {
  // `stream:` unset: pii with action redact holds by default.
  fake_upstream upstream{answer_text(secret_text, 1)};
  gateway_process gw{make_config(openai_model("m", upstream.base_url() + "/v1"),
                                 "m", "", pii_redact_post)};
  auto r = chat_stream(gw, "m");
  INFO(r.head << "\n\n" << r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("text/event-stream") != std::string::npos);
  // Nothing of the card or the address reaches the client, in any event.
  for (const auto* leak :
       {"4111 1111", "1111 1111 1111", "jane.doe", "example.com"})
    CHECK_FALSE(r.has(leak));
  auto streamed = chat_text(r);
  CHECK_FALSE(holds(streamed, "4111"));
  CHECK(streamed == redacted_text);
  // The whole answer of the same text is redacted the same way.
  CHECK(chat_whole(gw, "m") == streamed);
  CHECK(r.count("data: [DONE]") == 1);
  CHECK(r.body.ends_with("data: [DONE]\n\n"));
  CHECK(r.has("\"finish_reason\":\"stop\""));
  // The chunks the gateway rebuilt carry the alias, not the provider's id.
  CHECK(r.has("\"model\":\"m\""));
  CHECK_FALSE(r.has("upstream-model"));
  CHECK(chats(upstream) == 2);
}

TEST_CASE("held redaction does not depend on how the upstream cuts the "
          "text",
          "[integration][stream-policy]") {
  // The short text, and a long one whose cards and addresses fall on every
  // side of the 320-byte window: one character, 3, 7 and 64 bytes per
  // event, and the whole text in one event, all give the whole answer's
  // text.
  std::string long_text;
  for (int k = 0; k < 12; ++k)
    long_text += "Note " + std::string(static_cast<size_t>(k * 7), '-')
                 + " card 4111 1111 1111 1111 and mail jane.doe@example.com, "
                   "ok.\n";
  for (const auto& text : {secret_text, long_text}) {
    fake_upstream whole{answer_text(text)};
    gateway_process ref{make_config(openai_model("m", whole.base_url() + "/v1"),
                                    "m", "", pii_redact_post)};
    auto expected = chat_whole(ref, "m");
    CHECK_FALSE(holds(expected, "4111"));
    CHECK_FALSE(holds(expected, "jane.doe"));
    for (size_t piece :
         {size_t{1}, size_t{3}, size_t{7}, size_t{64}, text.size()}) {
      INFO("text of " << text.size() << " bytes in pieces of " << piece);
      fake_upstream upstream{answer_text(text, piece)};
      gateway_process gw{
        make_config(openai_model("m", upstream.base_url() + "/v1"), "m", "",
                    pii_redact_post)};
      auto r = chat_stream(gw, "m");
      INFO(r.body);
      CHECK(r.head.starts_with("HTTP/1.1 200"));
      CHECK(chat_text(r) == expected);
      // With big pieces the upstream's own events hold the card whole:
      // none of them reaches the client.
      CHECK_FALSE(r.has("4111 1"));
      CHECK_FALSE(r.has("1111 1111"));
      CHECK_FALSE(r.has("jane.doe"));
      CHECK(r.body.ends_with("data: [DONE]\n\n"));
    }
  }
}

TEST_CASE("held text is sent as the stream goes on, a window behind the "
          "newest text",
          "[integration][stream-policy]") {
  // 1,000 bytes in pieces of 50, 20 ms apart, with a window of 64 bytes:
  // the client gets text before the upstream's last event, in more than one
  // chunk, and all of it in order.
  std::string text;
  for (int i = 0; i < 100; ++i)
    text += "word " + std::to_string(i % 10) + "xyz ";
  text.resize(1000);
  fake_upstream upstream{answer_text(text, 50, 20ms)};
  gateway_process gw{
    make_config(openai_model("m", upstream.base_url() + "/v1"), "m", "",
                post_entry("pii", "{action: redact}",
                           "      stream: hold\n      stream_window: 64\n"))};
  auto r = chat_stream(gw, "m");
  INFO(r.body);
  CHECK(chat_text(r) == text);
  CHECK(content_events(r) >= 2);
  CHECK(r.body.ends_with("data: [DONE]\n\n"));
}

// -- hold: blocks -----------------------------------------------------------

TEST_CASE("a held regex block rule ends the stream before the match, with "
          "content_filter and a policy_blocked error event",
          "[integration][stream-policy]") {
  const std::string text
    = "Hello. The secret project x is here. More text after.";
  fake_upstream upstream{answer_text(text, 1)};
  gateway_process gw{make_config(openai_model("m", upstream.base_url() + "/v1"),
                                 "m", "", regex_block_post)};
  auto r = chat_stream(gw, "m");
  check_cut(r, "no secrets");
  CHECK(chat_text(r) == "Hello. The ");
  CHECK(r.has("Hello. The "));
  CHECK_FALSE(r.has("secret project"));
  CHECK_FALSE(r.has("More text after"));
  // A cut is the policy's doing, not the model's failure.
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 0);
  // The same answer whole is blocked with the rule's status.
  auto whole
    = http_request(gw.port(), "POST", "/v1/chat/completions",
                   chat_request("m", false).dump(), auth_json(full_key));
  INFO(whole.body);
  CHECK(whole.status == 403);
  CHECK(error_of(whole)["message"] == "no secrets");
  CHECK(gw.running());
}

TEST_CASE("a held pii block entry cuts the stream before an e-mail split "
          "across events, after the text before it",
          "[integration][stream-policy]") {
  // 600 bytes before the address: part of them leaves while the stream
  // runs, the rest when the block is found.
  std::string before;
  for (int i = 0; i < 40; ++i)
    before += "All fine here. ";
  const std::string text
    = before + "Write to jane.doe@example.com today. More after.";
  fake_upstream upstream{answer_text(text, 4)};
  gateway_process gw{make_config(openai_model("m", upstream.base_url() + "/v1"),
                                 "m", "",
                                 post_entry("pii", "{action: block}"))};
  auto r = chat_stream(gw, "m");
  check_cut(r, "blocked by policy: personal data (email) in the response");
  CHECK(chat_text(r) == before + "Write to ");
  CHECK_FALSE(r.has("jane"));
  CHECK_FALSE(r.has("example.com"));
  CHECK_FALSE(r.has("today"));
}

// -- refuse and record -------------------------------------------------------

TEST_CASE("stream: refuse answers a stream request 400 before any upstream "
          "call, and whole answers are redacted",
          "[integration][stream-policy]") {
  fake_upstream upstream{answer_text(secret_text)};
  gateway_process gw{make_config(
    openai_model("m", upstream.base_url() + "/v1"), "m", "",
    post_entry("pii", "{action: redact}", "      stream: refuse\n"))};
  auto refused
    = http_request(gw.port(), "POST", "/v1/chat/completions",
                   chat_request("m", true).dump(), auth_json(full_key));
  INFO(refused.body);
  CHECK(refused.status == 400);
  auto e = error_of(refused);
  CHECK(e["type"] == "invalid_request_error");
  CHECK(e["param"] == "stream");
  auto message = e["message"].get<std::string>();
  CHECK(holds(message, "pii"));
  CHECK(holds(message, "stream: refuse"));
  CHECK(chats(upstream) == 0);
  // Without "stream" the request goes through, redacted.
  CHECK(chat_whole(gw, "m") == redacted_text);
  CHECK(chats(upstream) == 1);
}

TEST_CASE("stream: record relays the stream unchanged, as before",
          "[integration][stream-policy]") {
  auto middleware
    = post_entry("pii", "{action: redact}", "      stream: record\n");
  SECTION("one character per event") {
    fake_upstream upstream{answer_text(secret_text, 1)};
    gateway_process gw{make_config(
      openai_model("m", upstream.base_url() + "/v1"), "m", "", middleware)};
    auto r = chat_stream(gw, "m");
    INFO(r.body);
    CHECK(chat_text(r) == secret_text);
    // Every upstream event is relayed: role, one per character, stop.
    CHECK(content_events(r) == secret_text.size());
    CHECK(r.body.ends_with("data: [DONE]\n\n"));
    // Whole answers are still redacted.
    CHECK(chat_whole(gw, "m") == redacted_text);
  }
  SECTION("the text in one event") {
    fake_upstream upstream{answer_text(secret_text, secret_text.size())};
    gateway_process gw{make_config(
      openai_model("m", upstream.base_url() + "/v1"), "m", "", middleware)};
    auto r = chat_stream(gw, "m");
    INFO(r.body);
    CHECK(r.has("4111 1111 1111 1111"));
    CHECK(r.has("jane.doe@example.com"));
    CHECK(chat_text(r) == secret_text);
  }
}

// -- tool calls, completions, Messages ----------------------------------------

TEST_CASE("held redaction covers tool-call argument deltas, and whole "
          "answers' tool-call arguments",
          "[integration][stream-policy]") {
  const std::string arguments = R"({"card":"4111 1111 1111 1111"})";
  const std::string redacted_arguments = R"({"card":"[REDACTED:CARD]"})";
  std::vector<fake_chunk> chunks;
  chunks.push_back(chat_chunk(
    {{"role", "assistant"},
     {"content", nullptr},
     {"tool_calls", nlohmann::json::array(
                      {{{"index", 0},
                        {"id", "call_1"},
                        {"type", "function"},
                        {"function", {{"name", "f"}, {"arguments", ""}}}}})}}));
  for (const auto& p : pieces_of(arguments, 2))
    chunks.push_back(chat_chunk(
      {{"tool_calls", nlohmann::json::array(
                        {{{"index", 0}, {"function", {{"arguments", p}}}}})}}));
  chunks.push_back(chat_chunk(nlohmann::json::object(), "tool_calls"));
  chunks.push_back({0ms, sse("[DONE]")});
  nlohmann::json whole = {
    {"id", "chatcmpl-tool"},
    {"object", "chat.completion"},
    {"created", 1700000000},
    {"model", "upstream-m"},
    {"choices",
     nlohmann::json::array(
       {{{"index", 0},
         {"message",
          {{"role", "assistant"},
           {"content", nullptr},
           {"tool_calls",
            nlohmann::json::array(
              {{{"id", "call_1"},
                {"type", "function"},
                {"function", {{"name", "f"}, {"arguments", arguments}}}}})}}},
         {"finish_reason", "tool_calls"}}})},
    {"usage",
     {{"prompt_tokens", 5}, {"completion_tokens", 9}, {"total_tokens", 14}}}};
  fake_upstream upstream{[=](const fake_request& req) {
    fake_response r;
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_object() && body.value("stream", false)) {
      r.content_type = "text/event-stream";
      r.chunks = chunks;
    } else {
      r.body = whole.dump();
    }
    return r;
  }};
  gateway_process gw{make_config(openai_model("m", upstream.base_url() + "/v1"),
                                 "m", "", pii_redact_post)};
  auto r = chat_stream(gw, "m");
  INFO(r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  auto got = tool_arguments(r);
  CHECK(holds(got, "[REDACTED:CARD]"));
  CHECK_FALSE(holds(got, "4111"));
  CHECK(got == redacted_arguments);
  CHECK_FALSE(r.has("4111 1"));
  // The call's id and name arrive once, as the upstream sent them.
  CHECK(r.count("\"call_1\"") == 1);
  CHECK(r.has("\"name\":\"f\""));
  CHECK(r.has("\"finish_reason\":\"tool_calls\""));
  CHECK(r.body.ends_with("data: [DONE]\n\n"));
  // The whole answer's arguments are redacted too.
  auto w = http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_request("m", false).dump(), auth_json(full_key));
  INFO(w.body);
  REQUIRE(w.status == 200);
  auto call = w.json()["choices"][0]["message"]["tool_calls"][0];
  CHECK(call["function"]["arguments"] == redacted_arguments);
  CHECK(call["id"] == "call_1");
  CHECK_FALSE(holds(w.body, "4111 1"));
}

TEST_CASE("held redaction covers a streamed text completion",
          "[integration][stream-policy]") {
  std::vector<fake_chunk> chunks;
  for (const auto& p : pieces_of(secret_text, 1))
    chunks.push_back(completion_chunk(p));
  chunks.push_back(completion_chunk("", "stop"));
  chunks.push_back({0ms, sse("[DONE]")});
  fake_upstream upstream{messages_api::stream_with(chunks)};
  gateway_process gw{make_config(
    openai_model("cmp", upstream.base_url() + "/v1", serves_completions), "cmp",
    "", pii_redact_post)};
  nlohmann::json body
    = {{"model", "cmp"}, {"prompt", "Say hello"}, {"stream", true}};
  auto r = send_once(gw.port(), raw_post("/v1/completions", body));
  INFO(r.head << "\n\n" << r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(completion_text(r) == redacted_text);
  CHECK_FALSE(r.has("4111 1"));
  CHECK_FALSE(r.has("jane.doe"));
  CHECK(r.has("\"object\":\"text_completion\""));
  CHECK_FALSE(r.has("chat.completion"));
  CHECK(r.body.ends_with("data: [DONE]\n\n"));
  REQUIRE(chats(upstream) == 1);
  CHECK(upstream.requests().back().target.ends_with("/v1/completions"));
}

TEST_CASE("held post plugins on a Messages stream: text_delta events are "
          "redacted, a block ends with refusal and an error event",
          "[integration][stream-policy]") {
  using namespace messages_api;
  SECTION("redaction, one character per text_delta") {
    fake_upstream upstream{
      stream_with(messages_stream(pieces_of(secret_text, 1)))};
    gateway_process gw{make_config(
      anthropic_model("claude", upstream.base_url()) + serves_messages,
      "claude", "", pii_redact_post)};
    auto r = stream_once(gw.port(), stream_body("claude"));
    INFO(r.head << "\n\n" << r.body);
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    auto text = message_text(r);
    CHECK(text == redacted_text);
    CHECK(holds(text, "[REDACTED:CARD]"));
    CHECK_FALSE(holds(text, "4111"));
    CHECK_FALSE(holds(text, "1111"));
    for (const auto* leak : {"4111 1", "1111 1111", "jane.doe", "example.com"})
      CHECK_FALSE(r.has(leak));
    auto names = names_of(r.events());
    REQUIRE_FALSE(names.empty());
    CHECK(names.front() == "message_start");
    CHECK(names.back() == "message_stop");
    CHECK(r.count("event: error") == 0);
    CHECK(r.count("[DONE]") == 0);
  }
  SECTION("a regex block") {
    const std::string text
      = "Hello. The secret project x is here. More text after.";
    fake_upstream upstream{stream_with(messages_stream(pieces_of(text, 1)))};
    gateway_process gw{make_config(
      anthropic_model("claude", upstream.base_url()) + serves_messages,
      "claude", "", regex_block_post)};
    auto r = stream_once(gw.port(), stream_body("claude"));
    INFO(r.head << "\n\n" << r.body);
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.closed);
    CHECK(message_text(r) == "Hello. The ");
    CHECK_FALSE(r.has("secret project"));
    CHECK_FALSE(r.has("More text after"));
    auto events = r.events();
    REQUIRE(events.size() >= 3);
    auto n = events.size();
    CHECK(events[n - 3].name == "content_block_stop");
    CHECK(events[n - 2].name == "message_delta");
    CHECK(events[n - 2].json()["delta"]["stop_reason"] == "refusal");
    CHECK(events[n - 1].name == "error");
    auto error = events[n - 1].json();
    CHECK(error["type"] == "error");
    CHECK(error["error"]["message"] == "no secrets");
    CHECK(r.count("message_stop") == 0);
    CHECK(r.count("event: error") == 1);
    CHECK(r.count("[DONE]") == 0);
  }
}

// -- the audit line ----------------------------------------------------------

TEST_CASE("the audit line says what held plugins did: redactions per kind, "
          "and where a block cut the stream",
          "[integration][stream-policy]") {
  temp_dir dir;
  auto log = dir.path / "audit.jsonl";
  const std::string secret = "Hello. The secret project x is here. More.";
  fake_upstream upstream{[secret](const fake_request& req) {
    fake_response r;
    r.content_type = "text/event-stream";
    auto text = req.body.find("tell the secret") != std::string::npos
                  ? secret
                  : secret_text;
    r.chunks = openai_stream(pieces_of(text, 1));
    return r;
  }};
  auto middleware = "middleware:\n  post_response:\n"
                    "    - plugin: pii\n"
                    "      config: {action: redact}\n"
                    + regex_block_entry
                    + "    - plugin: audit_log\n"
                      "      config: {path: \""
                    + log.string() + "\"}\n";
  gateway_process gw{make_config(openai_model("m", upstream.base_url() + "/v1"),
                                 "m", "", middleware)};
  auto redacted = chat_stream(gw, "m", "policy-redacted-1");
  CHECK(chat_text(redacted) == redacted_text);
  auto secret_body = chat_request("m", true);
  secret_body["messages"][0]["content"] = "tell the secret";
  auto cut = send_once(
    gw.port(), raw_post("/v1/chat/completions", secret_body, "policy-cut-1"));
  check_cut(cut, "no secrets");
  CHECK(chat_text(cut) == "Hello. The ");
  REQUIRE(gw.stop() == 0);
  auto by_id = audit_records_by_id(log);
  REQUIRE(by_id.count("policy-redacted-1") == 1);
  REQUIRE(by_id.count("policy-cut-1") == 1);
  auto first = by_id["policy-redacted-1"];
  INFO(first.dump());
  CHECK(first["status"] == 200);
  CHECK(first["stream"] == true);
  CHECK(first["stream_complete"] == true);
  REQUIRE(first.contains("metadata"));
  auto policy = first["metadata"]["stream_policy"];
  REQUIRE(policy.is_array());
  REQUIRE(policy.size() == 1);
  CHECK(policy[0]["entry"] == "middleware.post_response[0]");
  CHECK(policy[0]["plugin"] == "pii");
  CHECK(policy[0]["redacted"]["card"] == 1);
  CHECK(policy[0]["redacted"]["email"] == 1);
  CHECK_FALSE(policy[0].contains("cut_after_bytes"));
  auto second = by_id["policy-cut-1"];
  INFO(second.dump());
  CHECK(second["status"] == 200);
  CHECK(second["stream_complete"] == false);
  CHECK(second["blocked_by"] == "regex");
  auto cut_policy = second["metadata"]["stream_policy"];
  REQUIRE(cut_policy.is_array());
  REQUIRE(cut_policy.size() == 1);
  // The client had "Hello. The " (11 bytes) when the regex entry cut.
  nlohmann::json expected_cut = {{"entry", "middleware.post_response[1]"},
                                 {"plugin", "regex"},
                                 {"cut_after_bytes", 11},
                                 {"message", "no secrets"}};
  CHECK(cut_policy[0] == expected_cut);
  // Neither the card nor the address is in the log.
  for (const auto& line : lines_of(log)) {
    CHECK_FALSE(holds(line, "4111 1"));
    CHECK_FALSE(holds(line, "jane.doe"));
  }
}

// -- config ------------------------------------------------------------------

TEST_CASE("stream and stream_window config errors name their YAML path",
          "[integration][stream-policy]") {
  temp_dir dir;
  auto audit_path = (dir.path / "audit.jsonl").string();
  auto expect_error = [](const run_result& r, const std::string& text) {
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(holds(r.err, text));
  };
  // Only post entries treat streams.
  expect_error(check_config("middleware:\n  pre_request:\n"
                            "    - plugin: pii\n"
                            "      config: {action: redact}\n"
                            "      stream: hold\n"),
               "middleware.pre_request[0].stream: only "
               "middleware.post_response entries treat streamed answers");
  expect_error(check_config("middleware:\n  pre_request:\n"
                            "    - plugin: pii\n"
                            "      config: {action: redact}\n"
                            "      stream_window: 64\n"),
               "middleware.pre_request[0].stream_window: only "
               "middleware.post_response entries treat streamed answers");
  // Three modes.
  expect_error(
    check_config(
      post_entry("pii", "{action: redact}", "      stream: maybe\n")),
    "middleware.post_response[0].stream: expected hold, refuse or record");
  // Nothing to hold: audit_log, pii that only tags.
  expect_error(
    check_config(post_entry("audit_log", "{path: \"" + audit_path + "\"}",
                            "      stream: hold\n")),
    "middleware.post_response[0].stream: audit_log never changes "
    "or blocks an answer");
  expect_error(
    check_config(post_entry("pii", "{action: tag}", "      stream: hold\n")),
    "middleware.post_response[0].stream: pii never changes or blocks an "
    "answer");
  {
    auto r = check_config(
      post_entry("pii", "{action: tag}", "      stream: hold\n"));
    CHECK(holds(r.err, "nothing to hold; use record"));
  }
  // A window only for hold, and within 16..65536.
  expect_error(check_config(post_entry("pii", "{action: redact}",
                                       "      stream: record\n"
                                       "      stream_window: 64\n")),
               "middleware.post_response[0].stream_window: applies only to "
               "stream: hold");
  expect_error(
    check_config(post_entry("audit_log", "{path: \"" + audit_path + "\"}",
                            "      stream_window: 64\n")),
    "middleware.post_response[0].stream_window: applies only to "
    "stream: hold");
  expect_error(check_config(post_entry("pii", "{action: redact}",
                                       "      stream_window: 5\n")),
               "middleware.post_response[0].stream_window: must be at least "
               "16");
  expect_error(check_config(post_entry("pii", "{action: redact}",
                                       "      stream_window: 70000\n")),
               "middleware.post_response[0].stream_window: must be at most "
               "65536");
  // The path counts the entry.
  expect_error(check_config("middleware:\n  post_response:\n"
                            "    - plugin: pii\n"
                            "      config: {action: redact}\n"
                            + regex_block_entry + "      stream: sometimes\n"),
               "middleware.post_response[1].stream: expected hold, refuse or "
               "record");
  // An invalid entry stops the start too, before listening.
  {
    auto cfg = write_temp_file(
      make_config(echo_model, "echo", "",
                  post_entry("pii", "{action: tag}", "      stream: hold\n")));
    auto r = run_pw_router({"--config", cfg, "--port", "0"});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(holds(r.out, "listening"));
    CHECK(holds(r.err, "middleware.post_response[0].stream: pii never "
                       "changes or blocks an answer"));
  }
  // Every valid combination loads.
  auto ok = check_config("middleware:\n  post_response:\n"
                         "    - plugin: pii\n      config: {action: redact}\n"
                         "      stream: hold\n      stream_window: 16\n"
                         "    - plugin: pii\n      config: {action: block}\n"
                         "      stream_window: 65536\n"
                         "    - plugin: pii\n      config: {action: redact}\n"
                         "      stream: refuse\n"
                         "    - plugin: pii\n      config: {action: tag}\n"
                         "      stream: record\n"
                         "    - plugin: regex\n"
                         "      config: {rules: [{pattern: x, tag: y}]}\n"
                         "    - plugin: audit_log\n      config: {path: \""
                         + audit_path + "\"}\n      stream: record\n");
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
}
