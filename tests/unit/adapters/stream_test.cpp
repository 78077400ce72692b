// The SSE parser, the OpenAI stream pass-through, and whole answers turned
// into streams.

#include "adapters/adapter.hpp"
#include "adapters/sse.hpp"
#include "core/request/stream.hpp"

#include <catch2/catch.hpp>

using namespace pw;
using adapters::sse_event;
using adapters::sse_parser;

namespace {

std::vector<sse_event> parse_all(std::string_view text, size_t step = 0) {
  sse_parser p;
  std::vector<sse_event> out;
  if (step == 0) {
    REQUIRE(p.feed(text, out));
  } else {
    for (size_t i = 0; i < text.size(); i += step)
      REQUIRE(p.feed(text.substr(i, step), out));
  }
  return out;
}

model_config_ptr gpt() {
  auto m = std::make_shared<model_config>();
  m->alias = "gpt";
  m->api_key = redacted_string{"sk-openai-secret"};
  return m;
}

std::string relay(std::string_view input, stream_summary* summary = nullptr,
                  size_t step = 0, size_t keep_text = max_kept_stream_text) {
  auto decoder = adapters::adapter_for("openai").make_stream_decoder(
    gpt(), {"gpt", false, "r", keep_text});
  std::string out;
  if (step == 0) {
    decoder->feed(input, out);
  } else {
    for (size_t i = 0; i < input.size(); i += step)
      decoder->feed(input.substr(i, step), out);
  }
  decoder->finish(out);
  if (summary != nullptr)
    *summary = decoder->summary();
  return out;
}

} // namespace

TEST_CASE("SSE events are parsed across any line ending and boundary") {
  std::string text = "\xef\xbb\xbf: comment\nevent: a\ndata: one\ndata:two\n\n"
                     "data: three\r\n\r\nid: 5\nretry: 10\ndata: four\r\r"
                     "event: no-data\n\n";
  for (size_t step : {0u, 1u, 2u, 3u, 7u}) {
    INFO("step " << step);
    auto events = parse_all(text, step);
    REQUIRE(events.size() == 3);
    CHECK(events[0].event == "a");
    CHECK(events[0].data == "one\ntwo");
    CHECK(events[1].event.empty());
    CHECK(events[1].data == "three");
    CHECK(events[2].data == "four");
  }
}

TEST_CASE("an oversized SSE event fails the parser") {
  sse_parser p{64};
  std::vector<sse_event> out;
  CHECK_FALSE(p.feed("data: " + std::string(100, 'x'), out));
  CHECK_FALSE(p.feed("\n\n", out));
}

TEST_CASE("OpenAI chunks pass through with the alias, [DONE] once") {
  std::string input
    = "data: {\"id\":\"c\",\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"content\":\"Hel\"}}]}\n\n"
      ": keep-alive\n\n"
      "data: {\"id\":\"c\",\"model\":\"gpt-4o-2024\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
      "\"completion_tokens\":2}}\n\n"
      "data: [DONE]\n\ndata: [DONE]\n\n";
  for (size_t step : {0u, 1u, 5u}) {
    stream_summary summary;
    auto out = relay(input, &summary, step);
    CHECK(out.find("\"model\":\"gpt\"") != std::string::npos);
    CHECK(out.find("gpt-4o-2024") == std::string::npos);
    auto first = out.find("data: [DONE]");
    CHECK(first != std::string::npos);
    CHECK(out.find("data: [DONE]", first + 1) == std::string::npos);
    CHECK(summary.complete);
    CHECK(summary.text == "Hello");
    CHECK(summary.finish_reason == "stop");
    CHECK(summary.prompt_tokens == 3);
    CHECK(summary.completion_tokens == 2);
  }
}

TEST_CASE("a broken OpenAI stream ends with one error event, never [DONE]") {
  SECTION("cut before [DONE]") {
    stream_summary summary;
    auto out = relay("data: {\"choices\":[]}\n\n", &summary);
    CHECK(out.find("[DONE]") == std::string::npos);
    CHECK(out.find("\"error\"") != std::string::npos);
    CHECK_FALSE(summary.complete);
  }
  SECTION("a malformed event") {
    auto out = relay("data: {\"choices\":[]}\n\ndata: {oops}\n\n"
                     "data: [DONE]\n\n");
    CHECK(out.find("malformed") != std::string::npos);
    CHECK(out.find("[DONE]") == std::string::npos);
  }
  SECTION("a provider error object, with the key scrubbed") {
    stream_summary summary;
    auto out = relay("data: {\"error\":{\"message\":\"bad key "
                     "sk-openai-secret\"}}\n\ndata: [DONE]\n\n",
                     &summary);
    CHECK(out.find("sk-openai-secret") == std::string::npos);
    CHECK(out.find("bad key ***") != std::string::npos);
    CHECK(summary.provider_error);
    CHECK(out.find("[DONE]") == std::string::npos);
  }
  SECTION("multi-line data stays one line") {
    auto out = relay("data: {\"choices\":\ndata: []}\n\ndata: [DONE]\n\n");
    CHECK(out.starts_with("data: {\"model\":\"gpt\",\"choices\": []}\n\n"));
  }
}

TEST_CASE("streamed text is kept only when asked, and within its bound") {
  std::string input = "data: {\"choices\":[{\"delta\":{\"content\":"
                      "\"h\xc3\xa9llo\"}}]}\n\n"
                      "data: {\"choices\":[{\"delta\":{\"content\":"
                      "\" world\"}}]}\n\ndata: [DONE]\n\n";
  stream_summary none;
  relay(input, &none, 0, 0);
  CHECK(none.complete);
  CHECK(none.text.empty());
  CHECK(none.text_truncated);
  stream_summary cut;
  // Two bytes fit "h"; the next character (two bytes) does not: no half
  // character is kept.
  relay(input, &cut, 0, 2);
  CHECK(cut.text == "h");
  CHECK(cut.text_truncated);
  stream_summary whole;
  relay(input, &whole, 0, 64);
  CHECK(whole.text == "h\xc3\xa9llo world");
  CHECK_FALSE(whole.text_truncated);
}

TEST_CASE("a stream event past the upstream limits fails the stream") {
  std::string deep(200, '[');
  for (const auto& event : {std::string{"{\"choices\":[],\"choices\":[]}"},
                            "{\"x\":" + deep + "}"}) {
    INFO(event);
    auto out = relay("data: " + event + "\n\ndata: [DONE]\n\n");
    CHECK(out.find("malformed stream event") != std::string::npos);
    CHECK(out.find("[DONE]") == std::string::npos);
  }
}

TEST_CASE("tool calls that are not objects never reach a stream") {
  std::string completion
    = R"({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[7,{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]})";
  auto out = completion_to_sse(completion, {"m", false, "r"});
  CHECK(out.find("\"tool_calls\":[{\"id\":\"t\"") != std::string::npos);
  CHECK(out.find("\"index\":0") != std::string::npos);
  CHECK(out.ends_with("data: [DONE]\n\n"));
}

TEST_CASE("a whole answer becomes a stream") {
  std::string completion
    = R"({"id":"c1","object":"chat.completion","created":5,"model":"echo","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})";
  auto out = completion_to_sse(completion, {"echo", true, "r"});
  CHECK(out.find("\"delta\":{\"role\":\"assistant\",\"content\":\"\"}")
        != std::string::npos);
  CHECK(out.find("\"delta\":{\"content\":\"hi there\"}") != std::string::npos);
  CHECK(out.find("\"finish_reason\":\"stop\"") != std::string::npos);
  CHECK(out.find("\"usage\":{\"prompt_tokens\":1") != std::string::npos);
  CHECK(out.ends_with("data: [DONE]\n\n"));
  auto no_usage = completion_to_sse(completion, {"echo", false, "r"});
  CHECK(no_usage.find("usage") == std::string::npos);
}

TEST_CASE("a text completion stream is relayed chunk by chunk under the alias, "
          "its text kept") {
  auto decoder
    = adapters::adapter_for("vllm", api_endpoint::completions)
        .make_stream_decoder(gpt(), {"gpt", false, "r", max_kept_stream_text});
  REQUIRE(decoder);
  std::string out;
  decoder->feed(
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"up\","
    "\"choices\":[{\"text\":\"Hel\",\"index\":0,\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"up\","
    "\"choices\":[{\"text\":\"lo\",\"index\":0,\"finish_reason\":\"length\"}],"
    "\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}\n\n"
    "data: [DONE]\n\n",
    out);
  decoder->finish(out);
  CHECK(out.find("\"model\":\"gpt\"") != std::string::npos);
  CHECK(out.find("\"model\":\"up\"") == std::string::npos);
  CHECK(out.ends_with("data: [DONE]\n\n"));
  const auto& summary = decoder->summary();
  CHECK(summary.complete);
  CHECK(summary.text == "Hello");
  CHECK(summary.finish_reason == "length");
  CHECK(summary.completion_tokens == 2);
}

TEST_CASE("a whole text completion becomes a stream of one chunk per choice") {
  auto events = text_completion_to_sse(
    R"({"id":"cmpl-9","object":"text_completion","created":5,"model":"x",)"
    R"("choices":[{"text":"one","index":0,"finish_reason":"stop"},)"
    R"({"text":"two","index":1,"finish_reason":"length"}],)"
    R"("usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
    {"alias", true, "req", 0});
  auto chunks = parse_all(events, 0);
  REQUIRE(chunks.size() == 4);
  auto first = nlohmann::json::parse(chunks[0].data);
  CHECK(first["object"] == "text_completion");
  CHECK(first["model"] == "alias");
  CHECK(first["id"] == "cmpl-9");
  CHECK(first["choices"][0]["text"] == "one");
  CHECK(first["choices"][0]["finish_reason"] == "stop");
  auto second = nlohmann::json::parse(chunks[1].data);
  CHECK(second["choices"][0]["index"] == 1);
  CHECK(second["choices"][0]["finish_reason"] == "length");
  auto usage = nlohmann::json::parse(chunks[2].data);
  CHECK(usage["choices"].empty());
  CHECK(usage["usage"]["total_tokens"] == 3);
  CHECK(chunks[3].data == "[DONE]");
  CHECK(
    text_completion_to_sse("not json", {"a", false, "r", 0}).find("\"error\"")
    != std::string::npos);
}
