// Anthropic's Messages API to OpenAI-compatible models, against golden
// files in tests/data/messages_chat/: request/<case>.in.json (Messages) ->
// .out.json (chat completions) or .error.json (with a .model.json naming
// the provider when it is not openai), response/<case>.in.json
// (chat.completion) -> .out.json (Anthropic message) or .error.json, and
// stream/<case>.in.sse (OpenAI chunks) -> .out.sse (Anthropic events), the
// streams fed whole, one byte at a time and in uneven pieces. A case
// without its expected file fails and writes what it got to
// golden-actual/ in the working directory, for review.

#include "adapters/anthropic/messages_adapter.hpp"
#include "adapters/openai/messages_chat.hpp"
#include "core/errc.hpp"
#include "tests/support/golden.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace pw;
using namespace pw::test;
namespace fs = std::filesystem;

namespace {

/// The Messages adapter of the model's provider (its dialect decides
/// max_tokens and top_k).
const adapters::openai::messages_chat_adapter&
messages_of(const model_config& model) {
  return static_cast<const adapters::openai::messages_chat_adapter&>(
    adapters::adapter_for(model, api_endpoint::messages));
}

const fs::path dir = fs::path{PW_TEST_DATA_DIR} / "messages_chat";

/// The expected text in `file`, or a failure that leaves `actual` in
/// golden-actual/ for review.
std::optional<std::string> expected_or_dump(const fs::path& file,
                                            const std::string& actual) {
  if (fs::exists(file))
    return slurp(file);
  auto out = fs::path{"golden-actual"} / file.parent_path().filename()
             / file.filename();
  fs::create_directories(out.parent_path());
  std::ofstream{out, std::ios::binary} << actual;
  FAIL_CHECK("no " << file << "; what the translation gave is in " << out);
  return std::nullopt;
}

model_config_ptr gpt(std::string provider = "openai") {
  auto m = std::make_shared<model_config>();
  m->alias = "gpt";
  m->provider = provider;
  m->model = "gpt-test";
  m->api_key = redacted_string{"sk-openai-secret-key"};
  std::string why;
  m->target = *parse_base_url("https://api.openai.com/v1", why);
  return m;
}

std::string provider_of(const fs::path& file) {
  if (!fs::exists(file))
    return "openai";
  auto name = load_json(file).value("provider", "openai");
  if (name == "vllm")
    return "vllm";
  if (name == "ollama")
    return "ollama";
  return "openai";
}

std::string translate_stream(const std::string& input,
                             const std::vector<size_t>& cuts,
                             stream_summary* summary = nullptr) {
  auto decoder = adapters::openai::make_messages_decoder(
    gpt(), stream_options{"gpt", false, "req-1", max_kept_stream_text});
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

TEST_CASE("Messages requests translate to chat completion requests") {
  auto names = golden_cases(dir, "request");
  REQUIRE(names.size() >= 17);
  for (const auto& name : names) {
    INFO("case " << name);
    auto base = dir / "request" / name;
    auto in = nlohmann::ordered_json::parse(slurp(base.string() + ".in.json"));
    auto model = gpt(provider_of(base.string() + ".model.json"));
    auto out = messages_of(*model).chat_request(in, *model);
    auto error_file = fs::path{base.string() + ".error.json"};
    if (fs::exists(error_file)) {
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::invalid_request);
      CHECK(param_of(out.error()) == load_json(error_file)["param"]);
      continue;
    }
    REQUIRE(out);
    auto expected
      = expected_or_dump(base.string() + ".out.json", out->dump(2) + "\n");
    if (expected)
      CHECK(nlohmann::json::parse(out->dump())
            == nlohmann::json::parse(*expected));
  }
}

TEST_CASE("chat completions translate to Anthropic messages") {
  auto names = golden_cases(dir, "response");
  REQUIRE(names.size() >= 13);
  for (const auto& name : names) {
    INFO("case " << name);
    auto base = dir / "response" / name;
    auto in
      = json::read(slurp(base.string() + ".in.json"), json::upstream_limits);
    REQUIRE(in);
    auto out
      = adapters::openai::to_anthropic_message(in->root(), *gpt(), "req-1");
    if (fs::exists(base.string() + ".error.json")) {
      REQUIRE_FALSE(out);
      CHECK(code_of(out.error()) == errc::upstream_invalid);
      continue;
    }
    REQUIRE(out);
    auto body = nlohmann::json::parse(out->body);
    auto expected
      = expected_or_dump(base.string() + ".out.json", body.dump(2) + "\n");
    if (!expected)
      continue;
    auto want = nlohmann::json::parse(*expected);
    CHECK(body == want);
    // The counts the gateway records: prompt tokens include cached ones.
    auto usage = want["usage"];
    CHECK(out->prompt_tokens
          == usage.value("input_tokens", uint64_t{0})
               + usage.value("cache_read_input_tokens", uint64_t{0}));
    CHECK(out->completion_tokens == usage.value("output_tokens", uint64_t{0}));
  }
}

TEST_CASE("OpenAI streams translate to Anthropic events at any byte "
          "boundary") {
  auto names = golden_cases(dir, "stream");
  REQUIRE(names.size() >= 12);
  for (const auto& name : names) {
    INFO("case " << name);
    auto input = slurp(dir / "stream" / (name + ".in.sse"));
    auto whole = translate_stream(input, {});
    auto expected
      = expected_or_dump(dir / "stream" / (name + ".out.sse"), whole);
    if (!expected)
      continue;
    CHECK(whole == *expected);
    std::vector<size_t> every_byte(input.size());
    for (size_t i = 0; i < input.size(); ++i)
      every_byte[i] = i;
    CHECK(translate_stream(input, every_byte) == *expected);
    std::vector<size_t> uneven;
    for (size_t i = 1; i < input.size(); i += 1 + (i * 7) % 13)
      uneven.push_back(i);
    CHECK(translate_stream(input, uneven) == *expected);
  }
}

TEST_CASE("a translated stream's summary holds its text, stop reason and "
          "usage") {
  stream_summary summary;
  translate_stream(slurp(dir / "stream" / "01_text_usage.in.sse"), {},
                   &summary);
  CHECK(summary.complete);
  CHECK(summary.text == "Hello, w\xc3\xb6rld");
  CHECK(summary.finish_reason == "end_turn");
  CHECK(summary.prompt_tokens == 25);
  CHECK(summary.completion_tokens == 15);
  stream_summary failed;
  translate_stream(slurp(dir / "stream" / "03_error_chunk.in.sse"), {},
                   &failed);
  CHECK_FALSE(failed.complete);
  CHECK(failed.provider_error);
  stream_summary cut;
  translate_stream(slurp(dir / "stream" / "04_truncated.in.sse"), {}, &cut);
  CHECK_FALSE(cut.complete);
  CHECK_FALSE(cut.provider_error);
  CHECK(cut.text == "cut");
}

TEST_CASE("an upstream error in a translated stream never shows the "
          "model's key") {
  auto input = std::string{R"(data: {"error":{"message":"bad key )"}
               + "sk-openai-secret-key" + R"(","type":"invalid_request"}})"
               + "\n\n";
  auto out = translate_stream(input, {});
  CHECK(out.find("sk-openai-secret-key") == std::string::npos);
  CHECK(out.find("event: error\n") == 0);
  CHECK(out.find(R"("type":"api_error")") != std::string::npos);
}

TEST_CASE("the Messages API to an OpenAI-compatible model posts a chat "
          "completion with the model's bearer key") {
  const auto& adapter = adapters::adapter_for("openai", api_endpoint::messages);
  CHECK(dynamic_cast<const adapters::openai::messages_chat_adapter*>(&adapter)
        != nullptr);
  chat_payload in{
    R"({"model":"gpt","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":true})"};
  auto req = adapter.to_provider_request(in, *gpt());
  REQUIRE(req);
  CHECK(req->method == "POST");
  CHECK(req->path == "/v1/chat/completions");
  std::map<std::string, std::string> headers;
  for (const auto& h : req->headers)
    headers[h.name] = h.value;
  CHECK(headers["Authorization"] == "Bearer sk-openai-secret-key");
  CHECK(headers.count("x-api-key") == 0);
  CHECK(headers.count("anthropic-version") == 0);
  auto body = nlohmann::json::parse(req->body);
  CHECK(body["model"] == "gpt-test");
  CHECK(body["stream_options"]["include_usage"] == true);
  // A refused request never reaches the wire.
  chat_payload server_tool{
    R"({"model":"gpt","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"bash_20250124","name":"bash"}]})"};
  auto refused = adapter.to_provider_request(server_tool, *gpt());
  REQUIRE_FALSE(refused);
  CHECK(param_of(refused.error()) == "tools.0");
}

TEST_CASE("a whole translated answer streams as Anthropic's events") {
  auto in = json::read(slurp(dir / "response" / "02_tool_calls.in.json"),
                       json::upstream_limits);
  REQUIRE(in);
  auto message
    = adapters::openai::to_anthropic_message(in->root(), *gpt(), "req-1");
  REQUIRE(message);
  const auto& adapter = adapters::adapter_for("vllm", api_endpoint::messages);
  auto sse = adapter.whole_to_sse(message->body,
                                  stream_options{"gpt", false, "req-1", 0});
  auto at = [&](std::string_view what) { return sse.find(what); };
  CHECK(at("event: message_start\n") == 0);
  CHECK(at(R"("partial_json":"{\"city\":\"Paris\"}")") != std::string::npos);
  CHECK(at(R"("stop_reason":"tool_use")") != std::string::npos);
  CHECK(at("event: message_stop\n") != std::string::npos);
}

TEST_CASE("a translated stream follows at most max_stream_tool_calls tool "
          "calls") {
  auto calls = [](size_t n) {
    std::string in;
    for (size_t i = 0; i < n; ++i)
      in += R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":)"
            + std::to_string(i)
            + R"(,"id":"c","function":{"name":"f","arguments":"{}"}}]}}]})"
            + "\n\n";
    return in + "data: [DONE]\n\n";
  };
  stream_summary most;
  auto out = translate_stream(calls(max_stream_tool_calls), {}, &most);
  CHECK(most.complete);
  CHECK(out.ends_with(
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
  stream_summary over;
  out = translate_stream(calls(max_stream_tool_calls + 1), {}, &over);
  CHECK_FALSE(over.complete);
  CHECK(over.error
        == "The upstream sent more than 4096 tool calls in one "
           "answer");
  CHECK(out.find("event: message_stop") == std::string::npos);
}
