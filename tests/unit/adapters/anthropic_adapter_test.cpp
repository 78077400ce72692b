// The Anthropic translation against golden files in tests/data/anthropic/:
// request/<case>.in.json (OpenAI) -> .out.json (Anthropic) or .error.json,
// response/<case>.in.json (Anthropic) -> .out.json (OpenAI), and
// stream/<case>.in.sse (Anthropic events) -> .out.sse (OpenAI events), the
// streams fed whole, one byte at a time and in uneven pieces.

#include "adapters/anthropic/anthropic_adapter.hpp"
#include "core/errc.hpp"
#include "tests/support/chat_bodies.hpp"
#include "tests/support/golden.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace pw;
using namespace pw::test;
namespace fs = std::filesystem;

namespace {

const fs::path dir = fs::path{PW_TEST_DATA_DIR} / "anthropic";

model_config_ptr claude() {
  auto m = std::make_shared<model_config>();
  m->alias = "claude";
  m->provider = "anthropic";
  m->model = "claude-test";
  m->api_key = redacted_string{"sk-ant-secret-key"};
  std::string why;
  m->target = *parse_base_url("https://api.anthropic.com", why);
  return m;
}

std::string translate_stream(const std::string& input, bool include_usage,
                             const std::vector<size_t>& cuts,
                             stream_summary* summary = nullptr) {
  auto decoder = adapters::anthropic::make_decoder(
    claude(),
    stream_options{"claude", include_usage, "req-1", max_kept_stream_text},
    1700000000);
  std::string out;
  size_t pos = 0;
  for (auto cut : cuts) {
    if (cut <= pos || cut >= input.size())
      continue;
    decoder->feed(std::string_view{input}.substr(pos, cut - pos), out);
    pos = cut;
  }
  decoder->feed(std::string_view{input}.substr(pos), out);
  decoder->finish(out);
  if (summary != nullptr)
    *summary = decoder->summary();
  return out;
}

} // namespace

TEST_CASE("OpenAI requests translate to Anthropic Messages requests") {
  auto names = golden_cases(dir, "request");
  REQUIRE(names.size() >= 15);
  for (const auto& name : names) {
    INFO("case " << name);
    auto in = nlohmann::ordered_json::parse(
      slurp(dir / "request" / (name + ".in.json")));
    auto out = adapters::anthropic::to_messages_request(in, *claude());
    auto error_file = dir / "request" / (name + ".error.json");
    if (fs::exists(error_file)) {
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::invalid_request);
      CHECK(param_of(out.error()) == load_json(error_file)["param"]);
      continue;
    }
    REQUIRE(out);
    CHECK(nlohmann::json::parse(out->dump())
          == load_json(dir / "request" / (name + ".out.json")));
  }
}

TEST_CASE("Anthropic answers translate to OpenAI chat completions") {
  auto names = golden_cases(dir, "response");
  REQUIRE(names.size() >= 7);
  for (const auto& name : names) {
    INFO("case " << name);
    auto in = json::read(slurp(dir / "response" / (name + ".in.json")),
                         json::upstream_limits);
    REQUIRE(in);
    auto out = adapters::anthropic::to_chat_completion(in->root(), *claude(),
                                                       1700000000);
    REQUIRE(out);
    auto expected = load_json(dir / "response" / (name + ".out.json"));
    CHECK(nlohmann::json::parse(out->body) == expected);
    CHECK(out->prompt_tokens == expected["usage"]["prompt_tokens"]);
    CHECK(out->completion_tokens == expected["usage"]["completion_tokens"]);
  }
}

TEST_CASE("Anthropic streams translate to OpenAI chunks at any byte "
          "boundary") {
  auto names = golden_cases(dir, "stream");
  REQUIRE(names.size() >= 6);
  for (const auto& name : names) {
    INFO("case " << name);
    auto input = slurp(dir / "stream" / (name + ".in.sse"));
    auto expected = slurp(dir / "stream" / (name + ".out.sse"));
    bool include_usage = false;
    auto options = dir / "stream" / (name + ".options.json");
    if (fs::exists(options))
      include_usage = load_json(options).value("include_usage", false);
    CHECK(translate_stream(input, include_usage, {}) == expected);
    std::vector<size_t> every_byte(input.size());
    for (size_t i = 0; i < input.size(); ++i)
      every_byte[i] = i;
    CHECK(translate_stream(input, include_usage, every_byte) == expected);
    std::vector<size_t> uneven;
    for (size_t i = 1; i < input.size(); i += 1 + (i * 7) % 13)
      uneven.push_back(i);
    CHECK(translate_stream(input, include_usage, uneven) == expected);
  }
}

TEST_CASE("the stream summary holds the assembled text and usage") {
  stream_summary summary;
  translate_stream(slurp(dir / "stream" / "01_text_usage.in.sse"), true, {},
                   &summary);
  CHECK(summary.complete);
  CHECK(summary.text == "Hello, w\xc3\xb6rld");
  CHECK(summary.finish_reason == "stop");
  CHECK(summary.prompt_tokens == 25);
  CHECK(summary.completion_tokens == 15);
  stream_summary cut;
  translate_stream(slurp(dir / "stream" / "04_truncated.in.sse"), false, {},
                   &cut);
  CHECK_FALSE(cut.complete);
  CHECK(cut.text == "cut");
}

TEST_CASE("the request carries Anthropic's headers and path") {
  const auto& adapter = adapters::adapter_for("anthropic");
  chat_payload in{
    R"({"model":"claude","messages":[{"role":"user","content":"x"}],"stream":true})"};
  auto req = adapter.to_provider_request(in, *claude());
  REQUIRE(req);
  CHECK(req->path == "/v1/messages");
  auto header = [&](const std::string& name) {
    for (const auto& h : req->headers)
      if (h.name == name)
        return h.value;
    return std::string{};
  };
  CHECK(header("x-api-key") == "sk-ant-secret-key");
  CHECK(header("anthropic-version") == "2023-06-01");
  CHECK(header("Authorization").empty());
  CHECK(nlohmann::json::parse(req->body)["stream"] == true);
}

TEST_CASE("Anthropic error envelopes map to the OpenAI envelope") {
  auto model = claude();
  upstream_result r;
  r.status = 400;
  r.body
    = R"({"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}})";
  auto e = adapters::upstream_error(r, *model);
  CHECK(e.status == 400);
  CHECK(e.type == "invalid_request_error");
  CHECK(e.message == "messages: roles must alternate");
  r.status = 529;
  r.body
    = R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
  CHECK(adapters::upstream_error(r, *model).code == errc::upstream_overloaded);
  r.status = 429;
  CHECK(adapters::upstream_error(r, *model).code
        == errc::upstream_rate_limited);
  for (unsigned s : {401u, 403u, 404u, 413u})
    CHECK(adapters::upstream_error((r.status = s, r), *model).status == s);
  r.status = 500;
  CHECK(adapters::upstream_error(r, *model).code == errc::upstream_failed);
}

TEST_CASE("the usual request written from its bytes is the document form's, "
          "byte for byte") {
  // Every request the golden files and the fuzz corpus hold, and variants
  // of the shapes the fast path takes: where it answers, its bytes are
  // those of the document translation; where it does not, that one runs.
  auto bodies = chat_request_bodies();
  size_t fast = 0;
  size_t compared = 0;
  for (const auto& body : bodies) {
    INFO(body);
    auto doc = json::parse(body, json::client_limits);
    if (!doc || !doc->is_object() || !doc->contains("messages"))
      continue;
    auto slow = adapters::anthropic::to_messages_request(*doc, *claude());
    auto quick = adapters::anthropic::simple_messages_request(body, *claude());
    ++compared;
    if (!quick)
      continue;
    ++fast;
    REQUIRE(slow);
    CHECK(*quick == json::dump(*slow));
  }
  CHECK(compared >= 40);
  CHECK(fast >= 8);
}

TEST_CASE("an Anthropic stream translates at most max_stream_tool_calls "
          "tool calls") {
  auto blocks = [](size_t n) {
    std::string in
      = "event: message_start\ndata: "
        R"({"type":"message_start","message":{"id":"m","usage":{}}})"
        "\n\n";
    for (size_t i = 0; i < n; ++i)
      in
        += "event: content_block_start\ndata: "
           R"({"type":"content_block_start","index":)"
           + std::to_string(i)
           + R"(,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}})"
           + "\n\n";
    return in + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  };
  stream_summary most;
  auto out = translate_stream(blocks(max_stream_tool_calls), false, {}, &most);
  CHECK(most.complete);
  CHECK(out.ends_with("data: [DONE]\n\n"));
  stream_summary over;
  out = translate_stream(blocks(max_stream_tool_calls + 1), false, {}, &over);
  CHECK_FALSE(over.complete);
  CHECK(over.error
        == "The upstream sent more than 4096 tool calls in one "
           "answer");
  CHECK(out.find("[DONE]") == std::string::npos);
}
