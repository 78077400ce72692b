// Output policy on streams (`stream: hold`): the held window, redaction
// equal to the non-streamed one whatever the chunking, blocks, tool-call
// arguments and the Messages format, through the real adapters' decoders
// and the real pii and regex rules.

#include "adapters/adapter.hpp"
#include "core/json/reader.hpp"
#include "core/request/stream_guard.hpp"
#include "plugins/pii/pii_plugin.hpp"
#include "plugins/pii/pii_scanner.hpp"
#include "plugins/regex/regex_plugin.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

using namespace pw;

namespace {

plugin_entry entry_of(std::string plugin, const std::string& config_yaml) {
  plugin_entry e;
  e.plugin = std::move(plugin);
  e.path = "middleware.post_response[0]";
  e.config = std::make_shared<const YAML::Node>(YAML::Load(config_yaml));
  return e;
}

stream_rule_ptr pii_rule(const std::string& config = "{action: redact}") {
  std::vector<std::string> errors;
  auto logic = plugins::make_pii_plugin(entry_of("pii", config), errors);
  REQUIRE(logic);
  auto support = logic->streams();
  REQUIRE(support.rule);
  return support.rule;
}

stream_rule_ptr regex_rule(const std::string& config) {
  std::vector<std::string> errors;
  auto logic = plugins::make_regex_plugin(entry_of("regex", config), errors);
  REQUIRE(logic);
  return logic->streams().rule;
}

held_stages_ptr stages_of(std::vector<stream_rule_ptr> rules,
                          size_t window = 0) {
  auto out = std::make_shared<held_stages>();
  for (size_t i = 0; i < rules.size(); ++i)
    out->push_back(
      {rules[i], window != 0 ? window : rules[i]->default_window(), i});
  return out;
}

/// `text` through held_text in pieces of `step` bytes (released after
/// each), then to its end.
std::string through(const held_stages_ptr& stages, std::string_view text,
                    size_t step, bool* blocked = nullptr) {
  held_text h{stages};
  std::string out;
  bool ok = true;
  for (size_t i = 0; i < text.size() && ok; i += step) {
    h.add(text.substr(i, step));
    ok = h.release(out, false);
  }
  if (ok)
    ok = h.release(out, true);
  if (blocked != nullptr)
    *blocked = !ok;
  return out;
}

std::string redacted_whole(std::string_view text) {
  plugins::pii::pii_scanner scanner{plugins::pii::all_pii_kinds()};
  return plugins::pii::pii_scanner::redact(text, scanner.scan(text));
}

const std::string sample
  = "Card 4111 1111 1111 1111, mail jane.doe@example.com, phone "
    "+44 20 7946 0958, IBAN DE89 3704 0044 0532 0130 00, SSN 536-22-8913 "
    "and an order 1234-5678 that is nothing.";

model_config_ptr model(std::string p) {
  auto m = std::make_shared<model_config>();
  m->alias = "m";
  m->provider = p;
  m->api_key = redacted_string{"sk-test-key"};
  return m;
}

/// OpenAI chunks, one per piece of `text`, then a finish chunk and
/// [DONE].
std::string openai_stream(std::string_view text, size_t step) {
  std::string out = R"(data: {"id":"c1","object":"chat.completion.chunk",)"
                    R"("created":1,"model":"x","choices":[{"index":0,)"
                    R"("delta":{"role":"assistant","content":""},)"
                    R"("finish_reason":null}]})"
                    "\n\n";
  for (size_t i = 0; i < text.size(); i += step) {
    nlohmann::json chunk{
      {"id", "c1"},
      {"object", "chat.completion.chunk"},
      {"created", 1},
      {"model", "x"},
      {"choices",
       {{{"index", 0},
         {"delta", {{"content", std::string{text.substr(i, step)}}}},
         {"logprobs", nullptr},
         {"finish_reason", nullptr}}}}};
    out += "data: " + chunk.dump() + "\n\n";
  }
  out += R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,)"
         R"("model":"x","choices":[{"index":0,"delta":{},)"
         R"("finish_reason":"stop"}]})"
         "\n\n";
  out += "data: [DONE]\n\n";
  return out;
}

struct guarded_run {
  std::string out;
  stream_summary summary;
  stream_state state = stream_state::open;
};

/// `upstream` (the provider's bytes) fed `feed_step` bytes at a time
/// through the adapter's decoder for `endpoint`, guarded by `stages`.
guarded_run guard(std::string p, api_endpoint endpoint,
                  std::string_view upstream, const held_stages_ptr& stages,
                  size_t feed_step, stream_format format) {
  stream_options options{"m", false, "r", max_kept_stream_text};
  auto inner_options = options;
  inner_options.keep_text = 0;
  auto decoder = hold_stream(adapters::adapter_for(p, endpoint)
                               .make_stream_decoder(model(p), inner_options),
                             format, options, stages);
  guarded_run run;
  for (size_t i = 0; i < upstream.size(); i += feed_step)
    decoder->feed(upstream.substr(i, feed_step), run.out);
  run.state = decoder->finish(run.out);
  run.summary = decoder->summary();
  return run;
}

/// The JSON of each `data:` event of `sse` but [DONE].
std::vector<nlohmann::json> data_of(const std::string& sse) {
  std::vector<nlohmann::json> out;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    auto end = sse.find("\n\n", pos);
    auto data = sse.substr(pos + 6, end - pos - 6);
    if (data != "[DONE]")
      out.push_back(nlohmann::json::parse(data));
    pos = end;
  }
  return out;
}

std::string chat_text_of(const std::string& sse) {
  std::string text;
  for (const auto& e : data_of(sse))
    if (e.contains("choices"))
      for (const auto& c : e["choices"])
        if (c.contains("delta") && c["delta"].contains("content")
            && c["delta"]["content"].is_string())
          text += c["delta"]["content"].get<std::string>();
  return text;
}

} // namespace

TEST_CASE("held text equals the whole text's redaction, however it is split",
          "[stream-guard]") {
  auto stages = stages_of({pii_rule()});
  auto expected = redacted_whole(sample);
  REQUIRE(expected.find("[REDACTED:CARD]") != std::string::npos);
  REQUIRE(expected.find("[REDACTED:EMAIL]") != std::string::npos);
  for (size_t step : {1u, 2u, 3u, 7u, 64u, 1000u}) {
    INFO("step " << step);
    CHECK(through(stages, sample, step) == expected);
  }
}

TEST_CASE("nothing is released while a finding could still be in the window",
          "[stream-guard]") {
  held_text h{stages_of({pii_rule()})};
  std::string out;
  // Less than a window: all held.
  h.add("my card is 4111 1111 1111 11");
  REQUIRE(h.release(out, false));
  CHECK(out.empty());
  CHECK(h.held() == 28);
  // A window and more of plain text: the card is passed redacted.
  h.add("11 and " + std::string(400, 'x'));
  REQUIRE(h.release(out, false));
  CHECK(out.starts_with("my card is [REDACTED:CARD] and "));
  CHECK(out.find("4111") == std::string::npos);
  CHECK(h.held() == 320);
  REQUIRE(h.release(out, true));
  CHECK(h.held() == 0);
  REQUIRE(h.reports()[0].redacted.size() == 1);
  CHECK(h.reports()[0].redacted[0]
        == std::pair<std::string, uint64_t>{"card", 1});
}

TEST_CASE("a block ends the text before the blocked span", "[stream-guard]") {
  auto stages = stages_of({regex_rule(
    R"({rules: [{pattern: 'secret project', block: 403, message: "no secrets"}]})")});
  std::string text = "Hello there. The secret project is here. After.";
  for (size_t step : {1u, 5u, 100u}) {
    INFO("step " << step);
    bool blocked = false;
    auto out = through(stages, text, step, &blocked);
    CHECK(blocked);
    CHECK(out == "Hello there. The ");
  }
}

TEST_CASE("stages run in order: a later one checks what the earlier passed",
          "[stream-guard]") {
  // The pii stage redacts first; the regex stage then sees the redaction.
  auto stages = stages_of(
    {pii_rule(),
     regex_rule(R"({rules: [{pattern: 'REDACTED:EMAIL', block: 403}]})")});
  bool blocked = false;
  auto out = through(stages, "card 4111 1111 1111 1111 then a@example.com!", 2,
                     &blocked);
  CHECK(blocked);
  CHECK(out == "card [REDACTED:CARD] then [");
}

TEST_CASE("a guarded OpenAI stream sends the redacted text and ends as the "
          "upstream did",
          "[stream-guard]") {
  auto stages = stages_of({pii_rule()});
  for (size_t step : {1u, 4u}) {
    for (size_t feed : {1u, 13u, 100000u}) {
      INFO("chunk " << step << " feed " << feed);
      auto run
        = guard("openai", api_endpoint::chat, openai_stream(sample, step),
                stages, feed, stream_format::chat);
      CHECK(run.state == stream_state::done);
      CHECK(run.summary.complete);
      CHECK(run.summary.finish_reason == "stop");
      CHECK(chat_text_of(run.out) == redacted_whole(sample));
      CHECK(run.out.find("4111") == std::string::npos);
      CHECK(run.out.find("jane.doe") == std::string::npos);
      CHECK(run.out.ends_with("data: [DONE]\n\n"));
      // The role chunk is sent as it came, first.
      auto events = data_of(run.out);
      REQUIRE(!events.empty());
      CHECK(events[0]["choices"][0]["delta"]["role"] == "assistant");
      CHECK(run.summary.text == redacted_whole(sample));
      REQUIRE(run.summary.held.size() == 1);
      CHECK(run.summary.held[0].stage == 0);
      CHECK(!run.summary.held[0].cut);
    }
  }
}

TEST_CASE("a guarded stream cut by a block ends with content_filter and the "
          "error event, without [DONE]",
          "[stream-guard]") {
  auto stages = stages_of({regex_rule(
    R"({rules: [{pattern: 'secret project', block: 403, message: "no secrets"}]})")});
  auto run = guard("openai", api_endpoint::chat,
                   openai_stream("Hi. The secret project is on. More.", 1),
                   stages, 7, stream_format::chat);
  CHECK(run.state == stream_state::failed);
  CHECK(run.summary.policy_cut);
  CHECK(!run.summary.complete);
  CHECK(run.summary.error == "no secrets");
  CHECK(run.summary.finish_reason == "content_filter");
  CHECK(run.out.find("[DONE]") == std::string::npos);
  CHECK(run.out.find("secret project") == std::string::npos);
  CHECK(run.out.find("More") == std::string::npos);
  CHECK(chat_text_of(run.out) == "Hi. The ");
  auto events = data_of(run.out);
  REQUIRE(events.size() >= 2);
  const auto& last = events.back();
  CHECK(last["error"]["code"] == "policy_blocked");
  CHECK(last["error"]["message"] == "no secrets");
  const auto& filter = events[events.size() - 2];
  CHECK(filter["choices"][0]["finish_reason"] == "content_filter");
  REQUIRE(run.summary.held.size() == 1);
  CHECK(run.summary.held[0].cut);
  CHECK(run.summary.held[0].cut_after == 8);
  CHECK(run.summary.held[0].message == "no secrets");
}

TEST_CASE("tool-call arguments are held and redacted like text",
          "[stream-guard]") {
  std::string args = R"({"card":"4111 1111 1111 1111","to":"x"})";
  std::string up
    = R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"pay","arguments":""}}]},"finish_reason":null}]})"
      "\n\n";
  for (size_t i = 0; i < args.size(); i += 2) {
    nlohmann::json chunk{
      {"id", "c"},
      {"object", "chat.completion.chunk"},
      {"created", 1},
      {"model", "x"},
      {"choices",
       {{{"index", 0},
         {"delta",
          {{"tool_calls",
            {{{"index", 0},
              {"function", {{"arguments", args.substr(i, 2)}}}}}}}},
         {"finish_reason", nullptr}}}}};
    up += "data: " + chunk.dump() + "\n\n";
  }
  up
    += R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
       "\n\ndata: [DONE]\n\n";
  auto run = guard("openai", api_endpoint::chat, up, stages_of({pii_rule()}),
                   50, stream_format::chat);
  CHECK(run.state == stream_state::done);
  CHECK(run.out.find("4111") == std::string::npos);
  std::string got;
  std::string name;
  for (const auto& e : data_of(run.out))
    for (const auto& c : e["choices"])
      if (c["delta"].contains("tool_calls"))
        for (const auto& call : c["delta"]["tool_calls"]) {
          if (call["function"].contains("name"))
            name = call["function"]["name"];
          got += call["function"].value("arguments", "");
        }
  CHECK(name == "pay");
  CHECK(got == R"({"card":"[REDACTED:CARD]","to":"x"})");
}

TEST_CASE("a guarded Messages stream holds text_delta and cuts with a "
          "refusal",
          "[stream-guard]") {
  auto event = [](const std::string& name, const nlohmann::json& data) {
    return "event: " + name + "\ndata: " + data.dump() + "\n\n";
  };
  std::string text = "Pay to 4111 1111 1111 1111 today.";
  std::string up
    = event("message_start",
            {{"type", "message_start"},
             {"message",
              {{"id", "msg_1"},
               {"type", "message"},
               {"role", "assistant"},
               {"model", "claude"},
               {"content", nlohmann::json::array()},
               {"usage", {{"input_tokens", 3}, {"output_tokens", 1}}}}}});
  up += event("content_block_start",
              {{"type", "content_block_start"},
               {"index", 0},
               {"content_block", {{"type", "text"}, {"text", ""}}}});
  for (char c : text)
    up
      += event("content_block_delta",
               {{"type", "content_block_delta"},
                {"index", 0},
                {"delta", {{"type", "text_delta"}, {"text", std::string{c}}}}});
  up += event("content_block_stop",
              {{"type", "content_block_stop"}, {"index", 0}});
  up += event("message_delta", {{"type", "message_delta"},
                                {"delta", {{"stop_reason", "end_turn"}}},
                                {"usage", {{"output_tokens", 9}}}});
  up += event("message_stop", {{"type", "message_stop"}});

  SECTION("redact") {
    auto run = guard("anthropic", api_endpoint::messages, up,
                     stages_of({pii_rule()}), 11, stream_format::messages);
    CHECK(run.state == stream_state::done);
    CHECK(run.out.find("4111") == std::string::npos);
    std::string got;
    for (const auto& e : data_of(run.out))
      if (e["type"] == "content_block_delta")
        got += e["delta"]["text"].get<std::string>();
    CHECK(got == "Pay to [REDACTED:CARD] today.");
    // The block's stop comes after its text.
    auto stop = run.out.find("content_block_stop");
    CHECK(stop > run.out.rfind("content_block_delta"));
    CHECK(run.out.ends_with("{\"type\":\"message_stop\"}\n\n"));
  }
  SECTION("block") {
    auto run = guard("anthropic", api_endpoint::messages, up,
                     stages_of({pii_rule("{action: block}")}), 5,
                     stream_format::messages);
    CHECK(run.state == stream_state::failed);
    CHECK(run.summary.policy_cut);
    CHECK(run.out.find("4111") == std::string::npos);
    CHECK(run.out.find(R"("stop_reason":"refusal")") != std::string::npos);
    CHECK(run.out.find("event: error") != std::string::npos);
    CHECK(run.out.find("message_stop") == std::string::npos);
    std::string got;
    for (const auto& e : data_of(run.out))
      if (e["type"] == "content_block_delta")
        got += e["delta"]["text"].get<std::string>();
    CHECK(got == "Pay to ");
  }
}

TEST_CASE("a stream that breaks off still has its held text checked",
          "[stream-guard]") {
  auto stages = stages_of({pii_rule()});
  std::string up = openai_stream("card 4111 1111 1111 1111 and more", 1);
  // Cut before the finish chunk: the transport ends the stream.
  up = up.substr(0, up.find("\"finish_reason\":\"stop\""));
  up = up.substr(0, up.rfind("data: "));
  stream_options options{"m", false, "r", max_kept_stream_text};
  auto inner_options = options;
  inner_options.keep_text = 0;
  auto decoder
    = hold_stream(adapters::adapter_for("openai").make_stream_decoder(
                    model("openai"), inner_options),
                  stream_format::chat, options, stages);
  std::string out;
  decoder->feed(up, out);
  CHECK(chat_text_of(out).empty()); // all held
  decoder->abort(out, "The upstream stream broke off");
  CHECK(decoder->state() == stream_state::failed);
  CHECK(!decoder->summary().policy_cut);
  CHECK(chat_text_of(out) == "card [REDACTED:CARD] and more");
  auto events = data_of(out);
  CHECK(events.back()["error"]["code"] == "stream_failed");
}

TEST_CASE("text an upstream puts where none is expected is held too",
          "[stream-guard]") {
  auto stages = stages_of({pii_rule()});
  SECTION("chat content as a list of parts") {
    std::string up
      = R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{"role":"assistant","content":[{"type":"text","text":"card 4111 1111 "},{"type":"text","text":"1111 1111 ok"}]},"finish_reason":null}]})"
        "\n\n"
        R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
        "\n\ndata: [DONE]\n\n";
    auto run = guard("openai", api_endpoint::chat, up, stages, 1000,
                     stream_format::chat);
    CHECK(run.state == stream_state::done);
    CHECK(run.out.find("4111") == std::string::npos);
    CHECK(chat_text_of(run.out) == "card [REDACTED:CARD] ok");
  }
  SECTION("Messages text in a block's start") {
    std::string up
      = "event: message_start\ndata: "
        R"({"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"usage":{"input_tokens":1,"output_tokens":1}}})"
        "\n\nevent: content_block_start\ndata: "
        R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":"card 4111 1111 1111 1111"}})"
        "\n\nevent: content_block_stop\ndata: "
        R"({"type":"content_block_stop","index":0})"
        "\n\nevent: message_stop\ndata: "
        R"({"type":"message_stop"})"
        "\n\n";
    auto run = guard("anthropic", api_endpoint::messages, up, stages, 1000,
                     stream_format::messages);
    CHECK(run.state == stream_state::done);
    CHECK(run.out.find("4111") == std::string::npos);
    CHECK(run.out.find(R"("text":"card [REDACTED:CARD]")")
          != std::string::npos);
  }
}

TEST_CASE("a block match longer than the window ends the stream without "
          "waiting for its end without bound",
          "[stream-guard]") {
  // The match runs to the end of the text so far, however long it grows:
  // the held text stays bounded.
  auto stages = stages_of(
    {regex_rule(R"({rules: [{pattern: 'BEGIN[a-z ]*', block: 403}]})")}, 64);
  held_text h{stages};
  std::string out = "";
  bool ok = true;
  h.add("Hello. BEGIN");
  for (int i = 0; i < 1000 && ok; ++i) {
    h.add("abc ");
    ok = h.release(out, false);
    CHECK(h.held() <= 4 * 64 + 4);
  }
  CHECK_FALSE(ok);
  CHECK(out == "Hello. ");
}

TEST_CASE("a match the cut context makes up at its start does not hide a "
          "real one",
          "[stream-guard]") {
  // The context may begin mid-word: 'XSECRET' cut to 'SECRET' matches
  // \bSECRET\b there, in text sent already; the real match after it must
  // still block.
  auto stages = stages_of(
    {regex_rule(R"({rules: [{pattern: '\bSECRET\b', block: 403}]})")}, 16);
  std::string first = "aaaaaaaXSECRET " + std::string(25, 'b');
  std::string second = " SECRET " + std::string(30, 'c');
  held_text h{stages};
  std::string out;
  h.add(first);
  REQUIRE(h.release(out, false));
  h.add(second);
  bool ok = h.release(out, false) && h.release(out, true);
  CHECK_FALSE(ok);
  CHECK(out == first + " ");
}

namespace {

/// A rule that finds nothing and counts how often it was asked.
struct counting_rule final : stream_rule {
  mutable int calls = 0;
  [[nodiscard]] size_t default_window() const override { return 16; }
  void find(std::string_view, size_t,
            std::vector<held_finding>&) const override {
    ++calls;
  }
};

} // namespace

TEST_CASE("held text is checked again only when text came", "[stream-guard]") {
  auto rule = std::make_shared<counting_rule>();
  held_text h{stages_of({rule})};
  std::string out;
  h.add(std::string(100, 'a'));
  REQUIRE(h.release(out, false));
  CHECK(rule->calls == 1);
  for (int i = 0; i < 10; ++i)
    REQUIRE(h.release(out, false));
  CHECK(rule->calls == 1);
  h.add("more text here");
  REQUIRE(h.release(out, false));
  CHECK(rule->calls == 2);
}

TEST_CASE("text in fields an upstream should not use is held or dropped",
          "[stream-guard]") {
  auto stages = stages_of({pii_rule()});
  SECTION("a chunk whose error field is not an error") {
    std::string up
      = R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","error":false,"choices":[{"index":0,"delta":{"content":"card 4111 1111 1111 1111"},"finish_reason":null}]})"
        "\n\ndata: [DONE]\n\n";
    auto run = guard("openai", api_endpoint::chat, up, stages, 1000,
                     stream_format::chat);
    CHECK(run.out.find("4111") == std::string::npos);
    CHECK(chat_text_of(run.out) == "card [REDACTED:CARD]");
  }
  SECTION("content in a Messages message_start") {
    std::string up
      = "event: message_start\ndata: "
        R"({"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"card 4111 1111 1111 1111"}],"usage":{"input_tokens":1,"output_tokens":1}}})"
        "\n\nevent: message_stop\ndata: "
        R"({"type":"message_stop"})"
        "\n\n";
    auto run = guard("anthropic", api_endpoint::messages, up, stages, 1000,
                     stream_format::messages);
    CHECK(run.out.find("4111") == std::string::npos);
    CHECK(run.out.find(R"("content":[])") != std::string::npos);
  }
}

TEST_CASE("a block in the text held when the upstream broke off is not a "
          "policy cut: the model failed",
          "[stream-guard]") {
  auto stages = stages_of({regex_rule(
    R"({rules: [{pattern: 'secret project', block: 403, message: "no"}]})")});
  std::string up = openai_stream("Hi. The secret project.", 1);
  up = up.substr(0, up.find("\"finish_reason\":\"stop\""));
  up = up.substr(0, up.rfind("data: "));
  stream_options options{"m", false, "r", max_kept_stream_text};
  auto inner_options = options;
  inner_options.keep_text = 0;
  auto decoder
    = hold_stream(adapters::adapter_for("openai").make_stream_decoder(
                    model("openai"), inner_options),
                  stream_format::chat, options, stages);
  std::string out;
  decoder->feed(up, out);
  decoder->abort(out, "The upstream stream broke off");
  CHECK(decoder->state() == stream_state::failed);
  CHECK_FALSE(decoder->summary().policy_cut);
  CHECK(decoder->summary().error == "The upstream stream broke off");
  CHECK(out.find("secret project") == std::string::npos);
  CHECK(chat_text_of(out) == "Hi. The ");
  // What the policy did is still recorded.
  REQUIRE(decoder->summary().held.size() == 1);
  CHECK(decoder->summary().held[0].cut);
}
