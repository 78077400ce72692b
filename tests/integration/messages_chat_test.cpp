// POST /v1/messages (Anthropic's Messages API, inbound) to OpenAI-compatible
// models (`openai`, `vllm`, `ollama` with `messages` in `endpoints`) end to
// end: the real binary and fake chat/completions upstreams. The request
// translated (system, tool results, tool calls, tools, tool_choice, the token
// limit each provider reads), sent with the model's own key and without the
// client's Anthropic headers; the answer translated back under the alias;
// streams of chunks turned into Anthropic's events (text, tool calls, usage,
// error chunks, cuts); upstream errors and fallback in Anthropic's envelope;
// what has no counterpart refused before any upstream call; count_tokens
// refused; plugins before the translation; the models list.

#include "tests/integration/common.hpp"

#include <map>
#include <string>
#include <vector>

using namespace pw::test;
using namespace pw::test::messages_api;
using namespace std::chrono_literals;

namespace {

const std::string serves = "    endpoints: [chat, messages]\n";

/// A `models:` entry for an OpenAI-compatible model that serves messages,
/// on `u` under /v1 (provider model id "upstream-<alias>").
std::string gpt_model(const std::string& alias, const fake_upstream& u,
                      const std::string& provider = "openai") {
  return openai_model(alias, u.base_url() + "/v1", serves, provider);
}

// -- OpenAI answers ----------------------------------------------------------

nlohmann::json usage_of(int prompt, int completion) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

/// A chat.completion whose only choice is `message`, ended by `finish`.
nlohmann::json completion_of(const nlohmann::json& message,
                             const std::string& finish = "stop",
                             const nlohmann::json& usage = usage_of(12, 3)) {
  nlohmann::json choice
    = {{"index", 0}, {"message", message}, {"finish_reason", finish}};
  return {{"id", "chatcmpl-42"},
          {"object", "chat.completion"},
          {"created", 1700000000},
          {"model", "upstream-gpt"},
          {"choices", nlohmann::json::array({choice})},
          {"usage", usage}};
}

nlohmann::json text_message(const std::string& text = "Hi there") {
  return {{"role", "assistant"}, {"content", text}};
}

/// The message the client gets for `completion_of(text_message())` from
/// the model `alias`.
nlohmann::json text_answer_as(const std::string& alias) {
  auto out = nlohmann::json::parse(R"({
    "id": "msg_chatcmpl-42", "type": "message", "role": "assistant",
    "content": [{"type": "text", "text": "Hi there"}],
    "stop_reason": "end_turn", "stop_sequence": null,
    "usage": {"input_tokens": 12, "output_tokens": 3}})");
  out["model"] = alias;
  return out;
}

/// One chat.completion.chunk event with `delta`, ended by `finish` ("" =
/// not yet).
fake_chunk chunk_of(const nlohmann::json& delta,
                    const std::string& finish = "") {
  nlohmann::json choice
    = {{"index", 0}, {"delta", delta}, {"finish_reason", nullptr}};
  if (!finish.empty())
    choice["finish_reason"] = finish;
  nlohmann::json chunk = {{"id", "chatcmpl-s1"},
                          {"object", "chat.completion.chunk"},
                          {"created", 1700000000},
                          {"model", "upstream-gpt"},
                          {"choices", nlohmann::json::array({choice})}};
  return {0ms, sse(chunk.dump())};
}

/// The last chunk of a stream that asked for usage: no choices.
fake_chunk usage_chunk(int prompt, int completion) {
  nlohmann::json chunk = {{"id", "chatcmpl-s1"},
                          {"object", "chat.completion.chunk"},
                          {"created", 1700000000},
                          {"model", "upstream-gpt"},
                          {"choices", nlohmann::json::array()},
                          {"usage", usage_of(prompt, completion)}};
  return {0ms, sse(chunk.dump())};
}

fake_chunk done_chunk() {
  return {0ms, sse("[DONE]")};
}

/// The opening of an OpenAI stream: the role chunk, then `pieces`.
std::vector<fake_chunk> text_chunks(const std::vector<std::string>& pieces) {
  std::vector<fake_chunk> out
    = {chunk_of({{"role", "assistant"}, {"content", ""}})};
  for (const auto& p : pieces)
    out.push_back(chunk_of({{"content", p}}));
  return out;
}

/// A whole OpenAI stream saying `pieces`: the role chunk, the pieces, a
/// finish chunk, a usage chunk (9 prompt, 4 completion tokens), [DONE].
std::vector<fake_chunk> text_stream(const std::vector<std::string>& pieces) {
  auto out = text_chunks(pieces);
  out.push_back(chunk_of(nlohmann::json::object(), "stop"));
  out.push_back(usage_chunk(9, 4));
  out.push_back(done_chunk());
  return out;
}

/// An OpenAI-compatible upstream: `chunks` when the body asks for a
/// stream, `whole` otherwise.
fake_handler answer_chat(std::string whole
                         = completion_of(text_message()).dump(),
                         std::vector<fake_chunk> chunks
                         = text_stream({"Hel", "lo", " there"})) {
  return [=](const fake_request& req) {
    fake_response r;
    if (asks_stream(nlohmann::json::parse(req.body, nullptr, false))) {
      r.content_type = "text/event-stream";
      r.chunks = chunks;
      return r;
    }
    r.body = whole;
    return r;
  };
}

/// The body of a chat completion request the upstream got, after checking
/// how it came: POST /v1/chat/completions with the model's key as a bearer
/// token, no client key and none of Anthropic's headers.
nlohmann::json translated(const fake_request& req) {
  INFO(req.body);
  CHECK(req.method == "POST");
  CHECK(req.target == "/v1/chat/completions");
  auto headers = req.headers;
  CHECK(headers["authorization"] == "Bearer " + upstream_key);
  CHECK(headers["content-type"] == "application/json");
  CHECK_FALSE(req.has_header("x-api-key"));
  CHECK_FALSE(req.has_header("anthropic-version"));
  CHECK_FALSE(req.has_header("anthropic-beta"));
  CHECK_FALSE(carries(req, full_key));
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  REQUIRE(body.is_object());
  return body;
}

/// A `tools` list with one custom tool, get_weather.
nlohmann::json weather_tools() {
  return nlohmann::json::parse(R"([{
    "name": "get_weather", "description": "Weather for a city",
    "input_schema": {"type": "object",
                     "properties": {"city": {"type": "string"}},
                     "required": ["city"]}}])");
}

/// The partial_json of the input_json_delta events at block `index`,
/// joined.
std::string input_json_of(const std::vector<sse_event>& events, size_t index) {
  std::string out;
  for (const auto& e : events) {
    if (e.name != "content_block_delta")
      continue;
    auto j = e.json();
    if (j["index"] == index && j["delta"]["type"] == "input_json_delta")
      out += j["delta"]["partial_json"].get<std::string>();
  }
  return out;
}

/// A model's counters in /health.
nlohmann::json model_health(const gateway_process& gw,
                            const std::string& alias) {
  return health_of(gw.port())["models"][alias];
}

} // namespace

// -- the upstream call -------------------------------------------------------

TEST_CASE("a messages request to an openai model reaches chat/completions "
          "translated, with the model's key and no Anthropic headers, and "
          "its answer comes back as an Anthropic message under the alias") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  auto sent = nlohmann::json::parse(R"({
    "model": "gpt",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "Be brief."},
               {"type": "text", "text": "Answer in English.",
                "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Hello"}],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "user-1234"}
  })");
  // Sent by every Anthropic client: meant for Anthropic only.
  auto headers = with_header(
    with_header(key_headers(full_key), "anthropic-version", "2023-06-01"),
    "anthropic-beta", "prompt-caching-2024-07-31");
  auto res = ask(gw, sent, headers);
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type") == "application/json");
  CHECK_FALSE(res.header("x-route-reason").empty());
  CHECK(res.json() == text_answer_as("gpt"));
  CHECK(res.body.find("upstream-gpt") == std::string::npos);
  CHECK(res.body.find("chat.completion") == std::string::npos);
  // OpenAI's newer models take only max_completion_tokens; top_k has no
  // counterpart on OpenAI.
  CHECK(translated(only_post(upstream)) == nlohmann::json::parse(R"({
    "model": "upstream-gpt",
    "messages": [
      {"role": "system", "content": "Be brief.\nAnswer in English."},
      {"role": "user", "content": "Hello"}],
    "max_completion_tokens": 256,
    "temperature": 0.5,
    "top_p": 0.9,
    "stop": ["END"],
    "user": "user-1234"
  })"));
}

TEST_CASE("a messages request to a vllm model sends max_tokens and top_k, "
          "and to an ollama model max_tokens without top_k") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{make_config(gpt_model("vllm-m", upstream, "vllm")
                                   + gpt_model("ollama-m", upstream, "ollama"),
                                 "vllm-m")};
  for (const auto* model : {"vllm-m", "ollama-m"}) {
    INFO(model);
    auto body = msg_body(model);
    body["max_tokens"] = 100;
    body["top_k"] = 40;
    body["temperature"] = 0.2;
    auto res = ask(gw, body);
    REQUIRE(res.status == 200);
    CHECK(res.json() == text_answer_as(model));
  }
  auto got = posts_of(upstream);
  REQUIRE(got.size() == 2);
  auto vllm = translated(got[0]);
  CHECK(vllm == nlohmann::json::parse(R"({
    "model": "upstream-vllm-m",
    "messages": [{"role": "user", "content": "hello"}],
    "max_tokens": 100,
    "temperature": 0.2,
    "top_k": 40
  })"));
  auto ollama = translated(got[1]);
  CHECK(ollama == nlohmann::json::parse(R"({
    "model": "upstream-ollama-m",
    "messages": [{"role": "user", "content": "hello"}],
    "max_tokens": 100,
    "temperature": 0.2
  })"));
}

TEST_CASE("tools, tool_choice and a tool round in the history reach an "
          "openai model as functions, tool calls and a tool message, and its "
          "tool calls come back as tool_use blocks") {
  auto call = nlohmann::json::parse(R"({
    "role": "assistant", "content": null,
    "tool_calls": [{"id": "call_2", "type": "function",
                    "function": {"name": "get_weather",
                                 "arguments": "{\"city\": \"Rome\"}"}}]})");
  auto usage = usage_of(50, 10);
  usage["prompt_tokens_details"] = {{"cached_tokens", 20}};
  fake_upstream upstream{
    answer_chat(completion_of(call, "tool_calls", usage).dump())};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  auto sent = nlohmann::json::parse(R"({
    "model": "gpt",
    "max_tokens": 200,
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    "messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "A tool.", "signature": "c2ln"},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather",
         "input": {"city": "Paris"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1",
         "content": [{"type": "text", "text": "18C"},
                     {"type": "text", "text": "sunny"}]},
        {"type": "text", "text": "And in Rome?"}]}
    ]
  })");
  sent["tools"] = weather_tools();
  sent["tools"].push_back(nlohmann::json::parse(
    R"({"type": "custom", "name": "get_time",
        "input_schema": {"type": "object"}})"));
  auto res = ask(gw, sent);
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json() == nlohmann::json::parse(R"({
    "id": "msg_chatcmpl-42", "type": "message", "role": "assistant",
    "model": "gpt",
    "content": [{"type": "tool_use", "id": "call_2", "name": "get_weather",
                 "input": {"city": "Rome"}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 30, "cache_read_input_tokens": 20,
              "output_tokens": 10}})"));
  // The tool result answers the assistant turn before it, so it comes
  // before the user's text; the thinking block is dropped.
  CHECK(translated(only_post(upstream)) == nlohmann::json::parse(R"({
    "model": "upstream-gpt",
    "messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "Let me look.",
       "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "get_weather",
                                    "arguments": "{\"city\":\"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "18C\nsunny"},
      {"role": "user", "content": [{"type": "text", "text": "And in Rome?"}]}
    ],
    "max_completion_tokens": 200,
    "tools": [
      {"type": "function",
       "function": {"name": "get_weather", "description": "Weather for a city",
                    "parameters": {"type": "object",
                                   "properties": {"city": {"type": "string"}},
                                   "required": ["city"]}}},
      {"type": "function",
       "function": {"name": "get_time", "parameters": {"type": "object"}}}],
    "tool_choice": "required",
    "parallel_tool_calls": false
  })"));
}

TEST_CASE("tool_choice auto, none and a named tool become OpenAI's "
          "tool_choice") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  struct choice_case {
    std::string anthropic;
    std::string openai;
    /// parallel_tool_calls, or null for none.
    nlohmann::json parallel;
  };
  std::vector<choice_case> cases = {
    {R"({"type":"auto"})", R"("auto")", nullptr},
    {R"({"type":"none"})", R"("none")", nullptr},
    {R"({"type":"tool","name":"get_weather"})",
     R"({"type":"function","function":{"name":"get_weather"}})", nullptr},
    {R"({"type":"auto","disable_parallel_tool_use":false})", R"("auto")", true},
  };
  for (const auto& c : cases) {
    INFO(c.anthropic);
    auto body = msg_body("gpt");
    body["tools"] = weather_tools();
    body["tool_choice"] = nlohmann::json::parse(c.anthropic);
    REQUIRE(ask(gw, body).status == 200);
    auto got = translated(posts_of(upstream).back());
    CHECK(got["tool_choice"] == nlohmann::json::parse(c.openai));
    if (c.parallel.is_null())
      CHECK_FALSE(got.contains("parallel_tool_calls"));
    else
      CHECK(got["parallel_tool_calls"] == c.parallel);
  }
  CHECK(posts_of(upstream).size() == cases.size());
}

TEST_CASE("OpenAI finish reasons become Anthropic stop reasons") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  const auto tool_call = nlohmann::json::parse(R"({
    "role": "assistant", "content": "Looking.",
    "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather",
                                 "arguments": "{\"city\":\"Oslo\"}"}}]})");
  auto refused = text_message("");
  refused["content"] = nullptr;
  refused["refusal"] = "I cannot help with that.";
  auto vllm_stop = completion_of(text_message(), "stop");
  vllm_stop["choices"][0]["stop_reason"] = "END";
  struct finish_case {
    std::string name;
    nlohmann::json completion;
    std::string stop_reason;
    nlohmann::json stop_sequence;
    /// The types of the content blocks.
    std::vector<std::string> blocks;
  };
  std::vector<finish_case> cases = {
    {"stop",
     completion_of(text_message(), "stop"),
     "end_turn",
     nullptr,
     {"text"}},
    {"length",
     completion_of(text_message(), "length"),
     "max_tokens",
     nullptr,
     {"text"}},
    {"content_filter",
     completion_of(text_message(), "content_filter"),
     "refusal",
     nullptr,
     {"text"}},
    {"a refusal", completion_of(refused, "stop"), "refusal", nullptr, {"text"}},
    // vLLM names the stop sequence that matched.
    {"vLLM's stop_reason", vllm_stop, "stop_sequence", "END", {"text"}},
    // Ollama ends a turn that calls tools with "stop".
    {"tool calls with stop",
     completion_of(tool_call, "stop"),
     "tool_use",
     nullptr,
     {"text", "tool_use"}},
    {"tool_calls",
     completion_of(tool_call, "tool_calls"),
     "tool_use",
     nullptr,
     {"text", "tool_use"}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    upstream.set_handler(answer_chat(c.completion.dump()));
    auto res = ask(gw, msg_body("gpt"));
    INFO(res.body);
    REQUIRE(res.status == 200);
    auto j = res.json();
    CHECK(j["stop_reason"] == c.stop_reason);
    CHECK(j["stop_sequence"] == c.stop_sequence);
    std::vector<std::string> blocks;
    for (const auto& b : j["content"])
      blocks.push_back(b["type"].get<std::string>());
    CHECK(blocks == c.blocks);
  }
}

// -- streams -----------------------------------------------------------------

TEST_CASE("a streamed answer from an openai model reaches the client as "
          "Anthropic's events with their event lines, the usage of the last "
          "chunk in message_delta") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  auto r = stream_once(gw.port(), stream_body("gpt"));
  INFO(r.head << "\n\n" << r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("Content-Type: text/event-stream") != std::string::npos);
  CHECK(r.head.find("Content-Length") == std::string::npos);
  CHECK(r.closed);
  auto events = r.events();
  CHECK(names_of(events)
        == std::vector<std::string>{
          "message_start", "content_block_start", "content_block_delta",
          "content_block_delta", "content_block_delta", "content_block_stop",
          "message_delta", "message_stop"});
  REQUIRE(events.size() == 8);
  for (const auto& e : events)
    CHECK(e.json()["type"] == e.name);
  CHECK(r.count("event: message_start\ndata: ") == 1);
  CHECK(r.count("event: content_block_delta\ndata: ") == 3);
  CHECK(r.count("event: message_stop\ndata: ") == 1);
  auto start = events[0].json()["message"];
  CHECK(start["id"] == "msg_chatcmpl-s1");
  CHECK(start["type"] == "message");
  CHECK(start["role"] == "assistant");
  CHECK(start["model"] == "gpt");
  CHECK(start["content"] == nlohmann::json::array());
  auto block = events[1].json();
  CHECK(block["index"] == 0);
  CHECK(block["content_block"]
        == nlohmann::json{{"type", "text"}, {"text", ""}});
  CHECK(events[2].json()["delta"]
        == nlohmann::json{{"type", "text_delta"}, {"text", "Hel"}});
  CHECK(message_text(r) == "Hello there");
  CHECK(events[5].json()["index"] == 0);
  auto end = events[6].json();
  CHECK(end["delta"]["stop_reason"] == "end_turn");
  CHECK(end["delta"]["stop_sequence"].is_null());
  CHECK(end["usage"]["input_tokens"] == 9);
  CHECK(end["usage"]["output_tokens"] == 4);
  CHECK(r.count("[DONE]") == 0);
  CHECK(r.count("chat.completion") == 0);
  CHECK(r.count("upstream-gpt") == 0);
  auto body = translated(only_post(upstream));
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"] == nlohmann::json{{"include_usage", true}});
  CHECK(
    body["messages"]
    == nlohmann::json::parse(R"([{"role": "user", "content": "Say hello"}])"));
}

TEST_CASE("a streamed tool call from an openai model becomes a tool_use "
          "block with input_json_delta events and stop_reason tool_use") {
  std::vector<fake_chunk> chunks = text_chunks({"Checking."});
  for (const auto* delta : {
         R"({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
              "function": {"name": "get_weather", "arguments": ""}}]})",
         R"({"tool_calls": [{"index": 0,
              "function": {"arguments": "{\"city\":"}}]})",
         R"({"tool_calls": [{"index": 0,
              "function": {"arguments": " \"Rome\"}"}}]})"})
    chunks.push_back(chunk_of(nlohmann::json::parse(delta)));
  chunks.push_back(chunk_of(nlohmann::json::object(), "tool_calls"));
  chunks.push_back(usage_chunk(20, 7));
  chunks.push_back(done_chunk());
  fake_upstream upstream{stream_with(chunks)};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  auto sent = stream_body("gpt", "Weather in Rome?");
  sent["tools"] = weather_tools();
  auto r = stream_once(gw.port(), sent);
  INFO(r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  auto events = r.events();
  CHECK(names_of(events)
        == std::vector<std::string>{
          "message_start", "content_block_start", "content_block_delta",
          "content_block_stop", "content_block_start", "content_block_delta",
          "content_block_delta", "content_block_stop", "message_delta",
          "message_stop"});
  REQUIRE(events.size() == 10);
  CHECK(message_text(r) == "Checking.");
  CHECK(events[3].json()["index"] == 0);
  auto tool = events[4].json();
  CHECK(tool["index"] == 1);
  CHECK(tool["content_block"] == nlohmann::json::parse(R"({
    "type": "tool_use", "id": "call_9", "name": "get_weather",
    "input": {}})"));
  for (size_t i : {size_t{5}, size_t{6}}) {
    auto delta = events[i].json();
    CHECK(delta["index"] == 1);
    CHECK(delta["delta"]["type"] == "input_json_delta");
  }
  auto input = input_json_of(events, 1);
  CHECK(input == "{\"city\": \"Rome\"}");
  CHECK(nlohmann::json::parse(input) == nlohmann::json{{"city", "Rome"}});
  CHECK(events[7].json()["index"] == 1);
  auto end = events[8].json();
  CHECK(end["delta"]["stop_reason"] == "tool_use");
  CHECK(end["usage"]["output_tokens"] == 7);
  auto body = translated(only_post(upstream));
  CHECK(body["stream"] == true);
  CHECK(body["tools"][0]["function"]["name"] == "get_weather");
}

TEST_CASE("an openai model that answers a stream request whole is streamed "
          "to the client as Anthropic's events") {
  fake_upstream upstream{
    answer_with(200, completion_of(text_message("whole answer")).dump())};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  auto r = stream_once(gw.port(), stream_body("gpt"));
  INFO(r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("text/event-stream") != std::string::npos);
  auto events = r.events();
  CHECK(names_of(events)
        == std::vector<std::string>{"message_start", "content_block_start",
                                    "content_block_delta", "content_block_stop",
                                    "message_delta", "message_stop"});
  REQUIRE(events.size() == 6);
  CHECK(events[0].json()["message"]["model"] == "gpt");
  CHECK(events[0].json()["message"]["id"] == "msg_chatcmpl-42");
  CHECK(message_text(r) == "whole answer");
  auto end = events[4].json();
  CHECK(end["delta"]["stop_reason"] == "end_turn");
  CHECK(end["usage"]["output_tokens"] == 3);
}

TEST_CASE("an error chunk in an openai stream ends the client's messages "
          "stream with one Anthropic error event and no message_stop") {
  auto chunks = text_chunks({"par", "tial"});
  nlohmann::json error
    = {{"error",
        {{"message", "The server had an error (key " + upstream_key + ")"},
         {"type", "server_error"},
         {"param", nullptr},
         {"code", nullptr}}}};
  chunks.push_back({0ms, sse(error.dump())});
  // The upstream ends its body after the error chunk, or goes quiet: the
  // client's stream ends with the error event either way.
  for (bool stall : {false, true}) {
    INFO((stall ? "the upstream goes quiet" : "the upstream ends its body"));
    fake_upstream upstream{stream_with(chunks, true, stall ? 30s : 0ms)};
    gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
    auto r = stream_once(gw.port(), stream_body("gpt"), 10s);
    INFO(r.body);
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.closed);
    CHECK(message_text(r) == "partial");
    auto events = r.events();
    CHECK(names_of(events)
          == std::vector<std::string>{"message_start", "content_block_start",
                                      "content_block_delta",
                                      "content_block_delta", "error"});
    REQUIRE_FALSE(events.empty());
    auto last = events.back().json();
    CHECK(last["type"] == "error");
    REQUIRE(last["error"].is_object());
    CHECK(last["error"]["type"] == "api_error");
    CHECK(mentions(last["error"], "The server had an error"));
    CHECK(r.count("event: error\ndata: ") == 1);
    CHECK(r.count(upstream_key) == 0);
    CHECK(r.count("message_delta") == 0);
    CHECK(r.count("message_stop") == 0);
    CHECK(r.count("[DONE]") == 0);
  }
}

TEST_CASE("an openai stream cut before its DONE line ends the client's "
          "messages stream with one Anthropic error event and no "
          "message_stop") {
  // The connection closes in the middle of the body, or the body ends
  // without `data: [DONE]`.
  for (bool finish : {false, true}) {
    INFO((finish ? "the body ends" : "the connection closes"));
    fake_upstream upstream{stream_with(text_chunks({"par", "tial"}), finish)};
    gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
    auto r = stream_once(gw.port(), stream_body("gpt"));
    INFO(r.body);
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.closed);
    CHECK(message_text(r) == "partial");
    auto events = r.events();
    REQUIRE(events.size() == 5);
    CHECK(events[0].name == "message_start");
    check_error_event(events.back(), "api_error");
    CHECK(r.count("event: error\ndata: ") == 1);
    CHECK(r.count("message_delta") == 0);
    CHECK(r.count("message_stop") == 0);
  }
}

// -- upstream errors and fallback --------------------------------------------

TEST_CASE("an OpenAI 400 error from the upstream reaches the client as a 400 "
          "invalid_request_error in Anthropic's envelope") {
  const std::string openai_error
    = R"({"error":{"message":"Invalid 'messages[1].content': string too long.","type":"invalid_request_error","param":"messages[1].content","code":"string_above_max_length"}})";
  fake_upstream upstream{answer_with(400, openai_error)};
  fake_upstream backup{answer_chat()};
  gateway_process gw{make_config(
    gpt_model("gpt", upstream) + gpt_model("gpt2", backup), "gpt", "",
    "  fallback_chains:\n    main: [gpt, gpt2]\n" + patient_health)};
  auto e = expect_error(ask(gw, msg_body("gpt")), 400);
  CHECK(mentions(e, "string too long"));
  // Asked for a stream: the same error, before any event.
  auto r = stream_once(gw.port(), stream_body("gpt"));
  CHECK(r.head.starts_with("HTTP/1.1 400"));
  CHECK(r.head.find("application/json") != std::string::npos);
  CHECK(r.head.find("text/event-stream") == std::string::npos);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  CHECK(j["type"] == "error");
  CHECK(j["error"]["type"] == "invalid_request_error");
  CHECK(mentions(j["error"], "string too long"));
  CHECK(posts_of(upstream).size() == 2);
  // The client's own mistake: the chain is not tried.
  CHECK(posts_of(backup).empty());
  // The model's own key never comes back, even when the upstream says it.
  upstream.set_handler(answer_with(
    400,
    nlohmann::json{{"error",
                    {{"message", "Incorrect API key provided: " + upstream_key},
                     {"type", "invalid_request_error"}}}}
      .dump()));
  auto scrubbed = ask(gw, msg_body("gpt"));
  CHECK(scrubbed.status == 400);
  CHECK(scrubbed.body.find(upstream_key) == std::string::npos);
}

TEST_CASE("an upstream 500 on messages falls back along the chain to the "
          "next openai-compatible model that serves messages") {
  fake_upstream failing{answer_with(
    500,
    R"({"error":{"message":"The server had an error","type":"server_error"}})")};
  fake_upstream chat_only{answer_chat()};
  fake_upstream good{answer_chat()};
  auto models = gpt_model("gpt1", failing)
                + openai_model("gpt-chat", chat_only.base_url() + "/v1")
                + gpt_model("gpt2", good, "vllm");
  gateway_process gw{make_config(
    models, "gpt1", "",
    "  fallback_chains:\n    main: [gpt1, gpt-chat, gpt2]\n" + patient_health)};
  auto res = ask(gw, msg_body("gpt1", "x"));
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json() == text_answer_as("gpt2"));
  CHECK_FALSE(res.header("x-route-reason").empty());
  CHECK(chats(failing) == 1);
  CHECK(translated(only_post(failing))["model"] == "upstream-gpt1");
  CHECK(chats(chat_only) == 0);
  // Translated anew for the fallback's provider.
  CHECK(translated(only_post(good)) == nlohmann::json::parse(R"({
    "model": "upstream-gpt2",
    "messages": [{"role": "user", "content": "x"}],
    "max_tokens": 64
  })"));
  CHECK(model_health(gw, "gpt1")["failures"] == 1);
  CHECK(model_health(gw, "gpt2")["successes"] == 1);
  // A stream falls back the same way, before its first event.
  auto r = stream_once(gw.port(), stream_body("gpt1"));
  INFO(r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  auto events = r.events();
  REQUIRE_FALSE(events.empty());
  CHECK(events[0].name == "message_start");
  CHECK(events[0].json()["message"]["model"] == "gpt2");
  CHECK(message_text(r) == "Hello there");
  CHECK(events.back().name == "message_stop");
  CHECK(chats(failing) == 2);
  CHECK(chats(chat_only) == 0);
}

// -- refusals before the upstream --------------------------------------------

TEST_CASE("server tools, MCP servers and blocks with no OpenAI counterpart "
          "are refused with 400 naming the field, before any upstream call") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  auto with = [](const std::string& field, const std::string& value) {
    auto b = msg_body("gpt");
    b[field] = nlohmann::json::parse(value);
    return b;
  };
  struct refused {
    nlohmann::json body;
    std::string field;
  };
  std::vector<refused> cases = {
    {with(
       "tools",
       R"([{"type":"web_search_20250305","name":"web_search","max_uses":3}])"),
     "tools.0"},
    {with(
       "tools",
       R"([{"name":"t","input_schema":{"type":"object"}},{"type":"bash_20250124","name":"bash"}])"),
     "tools.1"},
    {with("mcp_servers",
          R"([{"type":"url","url":"https://mcp.example.com/sse","name":"x"}])"),
     "mcp_servers"},
    {with(
       "messages",
       R"([{"role":"user","content":[{"type":"text","text":"Summarise"},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQ="}}]}])"),
     "messages.0.content.1"},
    {with(
       "messages",
       R"([{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"c"}}]}])"),
     "messages.2.content.0"},
    {with(
       "messages",
       R"([{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_011"}}]}])"),
     "messages.0.content.0.source"},
  };
  for (const auto& c : cases) {
    INFO(c.body.dump());
    auto e = expect_error(ask(gw, c.body), 400);
    CHECK(mentions(e, c.field));
  }
  // The server tool is named too.
  CHECK(
    mentions(expect_error(ask(gw, cases[0].body), 400), "web_search_20250305"));
  // Asked for a stream: the same error, before any event.
  auto streamed = cases[3].body;
  streamed["stream"] = true;
  auto r = stream_once(gw.port(), streamed);
  CHECK(r.head.starts_with("HTTP/1.1 400"));
  CHECK(r.head.find("text/event-stream") == std::string::npos);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  CHECK(j["type"] == "error");
  CHECK(j["error"]["type"] == "invalid_request_error");
  CHECK(mentions(j["error"], "messages.0.content.1"));
  CHECK(upstream.requests().empty());
  // The same model serves what it can.
  CHECK(ask(gw, msg_body("gpt")).status == 200);
  CHECK(chats(upstream) == 1);
}

TEST_CASE("count_tokens naming an openai model is refused with 400 because "
          "only anthropic and echo models count tokens") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{make_config(gpt_model("gpt", upstream), "gpt")};
  auto e = expect_error(count(gw, count_body("gpt")), 400);
  CHECK(mentions(e, "only anthropic and echo models count tokens"));
  CHECK(mentions(e, "gpt"));
  // Without a model, the default route has nobody who counts.
  expect_error(count(gw, count_body("")), 400);
  CHECK(upstream.requests().empty());
  // Messages on the same model go through.
  CHECK(ask(gw, msg_body("gpt")).status == 200);
  CHECK(chats(upstream) == 1);
}

TEST_CASE("tool call arguments from an openai model that are not a JSON "
          "object are a 502 api_error") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{
    make_config(gpt_model("gpt", upstream), "gpt", "", patient_health)};
  auto call_with = [](const std::string& arguments) {
    auto message = nlohmann::json::parse(R"({
      "role": "assistant", "content": null,
      "tool_calls": [{"id": "call_1", "type": "function",
                      "function": {"name": "get_weather"}}]})");
    message["tool_calls"][0]["function"]["arguments"] = arguments;
    return completion_of(message, "tool_calls").dump();
  };
  for (const auto* arguments :
       {"{\"city\":", "not json", "[1,2]", "\"Paris\"", "42", "null"}) {
    INFO(arguments);
    upstream.set_handler(answer_chat(call_with(arguments)));
    auto res = ask(gw, msg_body("gpt"));
    expect_error(res, 502);
    CHECK(res.body.find(upstream_key) == std::string::npos);
  }
  // Empty arguments are an empty input.
  upstream.set_handler(answer_chat(call_with("")));
  auto res = ask(gw, msg_body("gpt"));
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["content"][0]["input"] == nlohmann::json::object());
  CHECK(res.json()["stop_reason"] == "tool_use");
}

// -- plugins and the models list ---------------------------------------------

TEST_CASE("PII in a messages request is redacted before it is translated "
          "for an openai model") {
  fake_upstream upstream{answer_chat()};
  gateway_process gw{
    make_config(gpt_model("gpt", upstream), "gpt", "", pii_redact)};
  auto sent = nlohmann::json::parse(R"({
    "model": "gpt", "max_tokens": 64,
    "system": "Escalate to jane.roe@example.com",
    "messages": [
      {"role": "user", "content": [
        {"type": "text", "text": "mail jane.roe@example.com now"}]},
      {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1", "name": "lookup",
         "input": {"q": "owner"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1",
         "content": "owner: jane.roe@example.com"}]}
    ]
  })");
  REQUIRE(ask(gw, sent).status == 200);
  // Streamed, the same.
  auto streamed = stream_body("gpt", "stream to jane.roe@example.com");
  REQUIRE(stream_once(gw.port(), streamed).head.starts_with("HTTP/1.1 200"));
  auto got = posts_of(upstream);
  REQUIRE(got.size() == 2);
  for (const auto& req : got)
    CHECK(req.body.find("jane.roe") == std::string::npos);
  auto body = translated(got[0]);
  CHECK(body["messages"] == nlohmann::json::parse(R"([
    {"role": "system", "content": "Escalate to [REDACTED:EMAIL]"},
    {"role": "user",
     "content": [{"type": "text", "text": "mail [REDACTED:EMAIL] now"}]},
    {"role": "assistant", "content": null,
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "lookup",
                                  "arguments": "{\"q\":\"owner\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1",
     "content": "owner: [REDACTED:EMAIL]"}
  ])"));
  CHECK(translated(got[1])["messages"]
        == nlohmann::json::parse(
          R"([{"role": "user", "content": "stream to [REDACTED:EMAIL]"}])"));
}

TEST_CASE("/v1/models lists messages among the endpoints of the "
          "openai-compatible models that serve it") {
  const std::string dead = "http://127.0.0.1:1/v1";
  auto models
    = openai_model("gpt", dead, serves)
      + openai_model("vllm-msg", dead, "    endpoints: [messages]\n", "vllm")
      + openai_model("ollama-all", dead,
                     "    endpoints: [messages, embeddings, chat, "
                     "completions]\n",
                     "ollama")
      + openai_model("gpt-chat", dead);
  gateway_process gw{make_config(models, "gpt")};
  auto res
    = http_request(gw.port(), "GET", "/v1/models", "", auth_json(full_key));
  REQUIRE(res.status == 200);
  CHECK(res.body.find("count_tokens") == std::string::npos);
  std::map<std::string, nlohmann::json> endpoints;
  auto body = res.json();
  for (const auto& m : body["data"])
    endpoints[m["id"].get<std::string>()] = m["endpoints"];
  REQUIRE(endpoints.size() == 4);
  CHECK(endpoints["gpt"] == nlohmann::json{"chat", "messages"});
  CHECK(endpoints["vllm-msg"] == nlohmann::json::array({"messages"}));
  CHECK(endpoints["ollama-all"]
        == nlohmann::json{"chat", "completions", "embeddings", "messages"});
  CHECK(endpoints["gpt-chat"] == nlohmann::json::array({"chat"}));
  // A messages-only model refuses chat.
  auto chat = http_request(gw.port(), "POST", "/v1/chat/completions",
                           chat_body("vllm-msg"), auth_json(full_key));
  CHECK(chat.status == 400);
  CHECK(error_of(chat)["code"] == "endpoint_unsupported");
}
