// Anthropic's Messages API inbound, to Anthropic models (passed through)
// and the echo model: requests, answers, streams.

#include "adapters/anthropic/messages_adapter.hpp"
#include "adapters/echo/echo_adapter.hpp"
#include "adapters/sse.hpp"
#include "core/errc.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pw;
using adapters::sse_event;
using adapters::sse_parser;

namespace {

model_config_ptr claude() {
  auto m = std::make_shared<model_config>();
  m->alias = "claude";
  m->provider = "anthropic";
  m->model = "claude-sonnet-4";
  m->api_key = redacted_string{"sk-ant-upstream"};
  std::string why;
  m->target = *parse_base_url("https://api.anthropic.com", why);
  return m;
}

std::string header(const upstream_request& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.name == name)
      return h.value;
  return {};
}

std::vector<sse_event> events_of(std::string_view text) {
  sse_parser p;
  std::vector<sse_event> out;
  REQUIRE(p.feed(text, out));
  return out;
}

const std::string answer
  = R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x",)"
    R"("content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t1",)"
    R"("name":"f","input":{"a":1}}],"stop_reason":"tool_use",)"
    R"("stop_sequence":null,"usage":{"input_tokens":5,)"
    R"("cache_read_input_tokens":2,"output_tokens":3}})";

} // namespace

TEST_CASE("a Messages request to an Anthropic model passes through with only "
          "the model id replaced") {
  const auto& adapter
    = adapters::adapter_for("anthropic", api_endpoint::messages);
  chat_payload in{
    R"({"model":"claude","max_tokens":9,"messages":[{"role":"user","content":"x"}]})"};
  auto req = adapter.to_provider_request(in, *claude());
  REQUIRE(req);
  CHECK(req->path == "/v1/messages");
  CHECK(
    req->body
    == R"({"model":"claude-sonnet-4","max_tokens":9,"messages":[{"role":"user","content":"x"}]})");
  CHECK(header(*req, "x-api-key") == "sk-ant-upstream");
  CHECK(header(*req, "anthropic-version") == "2023-06-01");
  const auto& count
    = adapters::adapter_for("anthropic", api_endpoint::count_tokens);
  auto counted = count.to_provider_request(in, *claude());
  REQUIRE(counted);
  CHECK(counted->path == "/v1/messages/count_tokens");
}

TEST_CASE("an Anthropic answer comes back byte for byte under the alias") {
  const auto& adapter
    = adapters::adapter_for("anthropic", api_endpoint::messages);
  upstream_result r;
  r.status = 200;
  r.body = answer;
  auto out = adapter.from_provider_response(r, *claude());
  REQUIRE(out);
  auto expected = answer;
  expected.replace(expected.find("claude-x"), 8, "claude");
  CHECK(out->body == expected);
  CHECK(out->prompt_tokens == 7);
  CHECK(out->completion_tokens == 3);
  for (const auto* bad : {"[]", R"({"type":"error"})",
                          R"({"type":"message","content":{}})", "nope"}) {
    INFO(bad);
    r.body = bad;
    auto refused = adapter.from_provider_response(r, *claude());
    REQUIRE_FALSE(refused);
    CHECK(code_of(refused.error()) == errc::upstream_invalid);
  }
  const auto& count
    = adapters::adapter_for("anthropic", api_endpoint::count_tokens);
  r.body = R"({"input_tokens":42})";
  auto counted = count.from_provider_response(r, *claude());
  REQUIRE(counted);
  CHECK(counted->body == r.body);
  CHECK(counted->prompt_tokens == 42);
  r.body = R"({"tokens":42})";
  CHECK_FALSE(count.from_provider_response(r, *claude()));
}

TEST_CASE("an Anthropic stream is relayed event by event, the model set to "
          "the alias") {
  auto decoder = adapters::anthropic::make_relay_decoder(
    claude(), {"claude", false, "r", max_kept_stream_text});
  std::string out;
  std::string in
    = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{"
      "\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
      "\"model\":\"claude-x\",\"content\":[],\"usage\":{\"input_tokens\":4,"
      "\"output_tokens\":1}}}\n\n"
      "event: ping\ndata: {\"type\":\"ping\"}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\","
      "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
      "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
      "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
      "\"index\":0}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
      "\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  // Any boundaries: one byte at a time.
  for (char c : in)
    decoder->feed(std::string_view{&c, 1}, out);
  CHECK(decoder->state() == stream_state::done);
  auto events = events_of(out);
  REQUIRE(events.size() == 8);
  CHECK(events[0].event == "message_start");
  auto start = nlohmann::json::parse(events[0].data);
  CHECK(start["message"]["model"] == "claude");
  CHECK(start["message"]["id"] == "msg_1");
  CHECK(events[1].event == "ping");
  CHECK(
    events[3].data
    == R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}})");
  CHECK(events[7].event == "message_stop");
  CHECK(out.find("[DONE]") == std::string::npos);
  const auto& s = decoder->summary();
  CHECK(s.complete);
  CHECK(s.text == "Hello");
  CHECK(s.finish_reason == "end_turn");
  CHECK(s.prompt_tokens == 4);
  CHECK(s.completion_tokens == 2);
}

TEST_CASE("a broken or failed Messages stream ends with Anthropic's error "
          "event") {
  auto decoder
    = adapters::anthropic::make_relay_decoder(claude(), {"claude", false, "r"});
  std::string out;
  decoder->feed("event: ping\ndata: {\"type\":\"ping\"}\n\n", out);
  decoder->finish(out);
  CHECK(decoder->state() == stream_state::failed);
  auto events = events_of(out);
  REQUIRE(events.size() == 2);
  CHECK(events[1].event == "error");
  auto error = nlohmann::json::parse(events[1].data);
  CHECK(error["type"] == "error");
  CHECK(error["error"]["type"] == "api_error");
  CHECK_FALSE(decoder->summary().complete);
  SECTION("the provider's own error event keeps its type, its key scrubbed") {
    auto d = adapters::anthropic::make_relay_decoder(claude(),
                                                     {"claude", false, "r"});
    std::string o;
    d->feed("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
            "\"overloaded_error\",\"message\":\"busy sk-ant-upstream\"}}\n\n",
            o);
    CHECK(d->state() == stream_state::failed);
    CHECK(d->summary().provider_error);
    auto e = nlohmann::json::parse(events_of(o).at(0).data);
    CHECK(e["error"]["type"] == "overloaded_error");
    CHECK(e["error"]["message"] == "busy ***");
  }
  CHECK(
    nlohmann::json::parse(events_of(adapters::anthropic::messages_error_event(
                                      "slow", "timeout_error"))
                            .at(0)
                            .data)["error"]["type"]
    == "timeout_error");
  CHECK(nlohmann::json::parse(
          events_of(adapters::anthropic::messages_error_event("x", "weird"))
            .at(0)
            .data)["error"]["type"]
        == "api_error");
}

TEST_CASE("a whole message becomes the events of its stream") {
  auto events = events_of(
    adapters::anthropic::message_to_sse(answer, {"alias", false, "r", 0}));
  std::vector<std::string> names;
  for (const auto& e : events)
    names.push_back(e.event);
  CHECK(names
        == std::vector<std::string>{
          "message_start", "content_block_start", "content_block_delta",
          "content_block_stop", "content_block_start", "content_block_delta",
          "content_block_stop", "message_delta", "message_stop"});
  auto start = nlohmann::json::parse(events[0].data);
  CHECK(start["message"]["model"] == "alias");
  CHECK(start["message"]["content"].empty());
  CHECK(nlohmann::json::parse(events[2].data)["delta"]
        == nlohmann::json{{"type", "text_delta"}, {"text", "hi"}});
  CHECK(nlohmann::json::parse(events[4].data)["content_block"]["input"]
        == nlohmann::json::object());
  CHECK(nlohmann::json::parse(events[5].data)["delta"]
        == nlohmann::json{{"type", "input_json_delta"},
                          {"partial_json", R"({"a":1})"}});
  auto delta = nlohmann::json::parse(events[7].data);
  CHECK(delta["delta"]["stop_reason"] == "tool_use");
  CHECK(delta["usage"]["output_tokens"] == 3);
}

TEST_CASE("the echo model answers the Messages API with the last user text") {
  const auto& adapter = adapters::adapter_for("echo", api_endpoint::messages);
  REQUIRE(adapter.local());
  model_config m;
  m.alias = "echo";
  m.provider = "echo";
  chat_payload in{
    R"({"max_tokens":5,"system":"sys","messages":[{"role":"user","content":"one"},)"
    R"({"role":"assistant","content":"two"},{"role":"user","content":[)"
    R"({"type":"text","text":"three"},{"type":"text","text":"four"}]}]})"};
  auto out = adapter.respond_locally(in, m, "req-3");
  REQUIRE(out);
  auto body = nlohmann::json::parse(out->body);
  CHECK(body["id"] == "msg_echo_req-3");
  CHECK(body["type"] == "message");
  CHECK(body["model"] == "echo");
  CHECK(
    body["content"]
    == nlohmann::json::array({{{"type", "text"}, {"text", "three\nfour"}}}));
  CHECK(body["stop_reason"] == "end_turn");
  CHECK(body["usage"]["input_tokens"] == out->prompt_tokens);
  CHECK(out->prompt_tokens > 0);
  auto events
    = events_of(adapter.whole_to_sse(out->body, {"echo", false, "r", 0}));
  CHECK(events.front().event == "message_start");
  CHECK(events.back().event == "message_stop");
  const auto& count = adapters::adapter_for("echo", api_endpoint::count_tokens);
  auto counted = count.respond_locally(in, m, "req-4");
  REQUIRE(counted);
  CHECK(nlohmann::json::parse(counted->body)
        == nlohmann::json{{"input_tokens", out->prompt_tokens}});
}
