// Hostile input against the real binary: every shape that once killed,
// stalled or slipped past the gateway (issue 13), from clients and from
// upstreams. Each one gets a clear OpenAI error (or the attempt falls
// back), the process lives on, and the next ordinary request is answered.
// gateway_process fails the test if the gateway did not exit 0 at the end
// or a sanitizer spoke.

#include "tests/integration/common.hpp"

#include <filesystem>
#include <fstream>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

std::string nested_array(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

std::string nested_object(size_t depth) {
  std::string out;
  for (size_t i = 0; i < depth; ++i)
    out += "{\"a\":";
  out += "1";
  out += std::string(depth, '}');
  return out;
}

fake_response json_answer(std::string body) {
  fake_response r;
  r.body = std::move(body);
  return r;
}

/// An ordinary Anthropic Messages answer.
const std::string anthropic_ok
  = R"({"id":"m","type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}})";

/// A fake upstream that answers the first chat with `hostile` and every
/// later one with `normal` (by default an OpenAI completion).
fake_handler hostile_first(fake_response hostile,
                           std::string normal
                           = openai_completion("upstream-m", "fine")) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  return [calls, hostile, normal](const fake_request&) {
    if (calls->fetch_add(1) == 0)
      return hostile;
    return json_answer(normal);
  };
}

http_response post(const gateway_process& gw, const std::string& body) {
  return http_request(gw.port(), "POST", "/v1/chat/completions", body,
                      auth_json(full_key));
}

/// The next ordinary request on `model` is answered.
void check_served(const gateway_process& gw, const std::string& model) {
  auto res = post(gw, chat_body(model));
  CHECK(res.status == 200);
  CHECK(gw.running());
}

} // namespace

TEST_CASE("tool arguments nested 300,000 deep are a 400 for an Anthropic "
          "model") {
  fake_upstream up{
    [](const fake_request&) { return json_answer(anthropic_ok); }};
  gateway_process gw{
    make_config(anthropic_model("claude", up.base_url()), "claude")};
  nlohmann::json body
    = {{"model", "claude"},
       {"messages",
        {{{"role", "user"}, {"content", "weather?"}},
         {{"role", "assistant"},
          {"content", nullptr},
          {"tool_calls",
           {{{"id", "t1"},
             {"type", "function"},
             {"function",
              {{"name", "f"},
               {"arguments", "{\"x\":" + nested_array(300'000) + "}"}}}}}}},
         {{"role", "tool"}, {"tool_call_id", "t1"}, {"content", "x"}}}}};
  auto res = post(gw, body.dump());
  CHECK(res.status == 400);
  auto err = error_of(res);
  CHECK(err["param"] == "messages[1].tool_calls[0].function.arguments");
  CHECK(err["message"].get<std::string>().find("nests deeper than 64")
        != std::string::npos);
  CHECK(chats(up) == 0);
  check_served(gw, "claude");
}

TEST_CASE("a duplicate key never walks past a blocking plugin") {
  fake_upstream up{answer_ok()};
  gateway_process gw{make_config(openai_model("m", up.base_url()), "m", "",
                                 "middleware:\n"
                                 "  pre_request:\n"
                                 "    - plugin: pii\n"
                                 "      config: {action: block}\n")};
  const std::string card
    = R"([{"role":"user","content":"card 4111 1111 1111 1111"}])";
  const std::string clean = R"([{"role":"user","content":"hello"}])";
  struct shape {
    std::string body;
    std::string param;
  };
  for (
    const auto& [body, param] : {
      shape{R"({"model":"m","messages":)" + card + R"(,"messages":)" + clean
              + "}",
            "messages"},
      // The same key spelled with an escape is the same key.
      shape{R"({"model":"m","messages":)" + clean + R"(,"mess\u0061ges":)"
              + card + "}",
            "messages"},
      shape{
        R"({"model":"m","messages":[{"role":"user","content":"card 4111 1111 1111 1111","content":"hello"}]})",
        "messages[0].content"},
    }) {
    INFO(body);
    auto res = post(gw, body);
    CHECK(res.status == 400);
    CHECK(error_of(res)["param"] == param);
  }
  // An escaped key alone is read as the key it spells: the plugin sees it.
  auto escaped = post(gw, R"({"model":"m","mess\u0061ges":)" + card + "}");
  CHECK(escaped.status == 403);
  CHECK(chats(up) == 0);
  check_served(gw, "m");
}

TEST_CASE("600,000 small keys are refused at once, and others are served "
          "meanwhile") {
  gateway_process gw{make_config(echo_model, "echo")};
  std::string body
    = R"({"model":"echo","messages":[{"role":"user","content":"x"}],"metadata":{)";
  for (int i = 0; i < 600'000; ++i)
    body += "\"" + std::to_string(i) + "\":0,";
  body.back() = '}';
  body += "}";
  REQUIRE(body.size() < 10 * 1024 * 1024);
  auto res = post(gw, body);
  CHECK(res.status == 400);
  auto err = error_of(res);
  CHECK(err["param"] == "metadata");
  CHECK(err["message"].get<std::string>().find("more than 10000 members")
        != std::string::npos);
  check_served(gw, "echo");
}

TEST_CASE("an upstream answer the JSON layer refuses fails the attempt, and "
          "the fallback serves") {
  struct shape {
    std::string name;
    fake_response answer;
  };
  std::vector<shape> shapes = {
    {"deep JSON",
     json_answer(R"({"choices":[],"x":)" + nested_array(300'000) + "}")},
    {"a duplicate key",
     json_answer(
       R"({"choices":[{"message":{"role":"assistant","content":"a"}}],"choices":[]})")},
    {"a tool call that is not an object",
     json_answer(
       R"({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[7]},"finish_reason":"tool_calls"}]})")},
    {"invalid UTF-8", json_answer("{\"choices\":[],\"x\":\"\xff\"}")},
  };
  for (const auto& [name, answer] : shapes) {
    INFO(name);
    fake_upstream bad{[answer](const fake_request&) { return answer; }};
    fake_upstream good{answer_ok("from the fallback")};
    // `lonely` calls the same upstream but belongs to no chain.
    auto config
      = make_config(openai_model("bad", bad.base_url())
                      + openai_model("good", good.base_url())
                      + openai_model("lonely", bad.base_url()),
                    "bad", "", "  fallback_chains:\n    main: [bad, good]\n");
    gateway_process gw{config};
    for (bool stream : {false, true}) {
      // Streamed too: the upstream ignores "stream" and answers JSON,
      // which the gateway reads whole before anything reaches the client.
      auto body = nlohmann::json::parse(chat_body("main"));
      body["stream"] = stream;
      auto res = post(gw, body.dump());
      CHECK(res.status == 200);
      CHECK(res.body.find("from the fallback") != std::string::npos);
    }
    // Without a fallback the client gets the clear 502.
    auto alone = post(gw, chat_body("lonely"));
    CHECK(alone.status == 502);
    CHECK(error_of(alone)["code"] == "upstream_invalid");
    CHECK(gw.running());
  }
}

TEST_CASE("deep JSON in an upstream stream event ends that stream cleanly") {
  fake_response stream;
  stream.content_type = "text/event-stream";
  stream.chunks = openai_stream({"a"});
  auto deep = fake_chunk{
    0ms, sse("{\"choices\":[],\"x\":" + nested_array(300'000) + "}")};
  auto body = nlohmann::json::parse(chat_body("m"));
  body["stream"] = true;
  SECTION("after the first token: one error event ends the stream") {
    // The role, "a", then the deep event.
    stream.chunks.insert(stream.chunks.begin() + 2, deep);
    fake_upstream up{hostile_first(stream)};
    gateway_process gw{make_config(openai_model("m", up.base_url()), "m")};
    auto res = post(gw, body.dump());
    CHECK(res.status == 200);
    CHECK(res.body.find("malformed stream event (nests deeper than 128")
          != std::string::npos);
    CHECK(res.body.find("[DONE]") == std::string::npos);
    check_served(gw, "m");
  }
  SECTION("before it: a failed attempt, 502 without a fallback") {
    stream.chunks.insert(stream.chunks.begin() + 1, deep);
    fake_upstream up{hostile_first(stream)};
    gateway_process gw{make_config(openai_model("m", up.base_url()), "m")};
    auto res = post(gw, body.dump());
    CHECK(res.status == 502);
    CHECK(res.body.find("before its first token") != std::string::npos);
    CHECK(res.body.find("nests deeper than 128") != std::string::npos);
    check_served(gw, "m");
  }
}

TEST_CASE(
  "a very deep Anthropic tool_use.input is refused, not re-serialised") {
  auto answer = json_answer(
    R"({"id":"m","type":"message","role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":)"
    + nested_object(300'000)
    + R"(}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}})");
  fake_upstream up{hostile_first(answer, anthropic_ok)};
  gateway_process gw{
    make_config(anthropic_model("claude", up.base_url()), "claude")};
  auto res = post(gw, chat_body("claude"));
  CHECK(res.status == 502);
  CHECK(error_of(res)["code"] == "upstream_invalid");
  check_served(gw, "claude");
}

TEST_CASE("a decision service's hostile answer fails its request closed") {
  // The http plugin's service answers deep JSON, then a duplicate action.
  auto calls = std::make_shared<std::atomic<int>>(0);
  fake_upstream service{[calls](const fake_request&) {
    auto n = calls->fetch_add(1);
    if (n == 0)
      return json_answer(R"({"action":"continue","x":)" + nested_array(300'000)
                         + "}");
    if (n == 1)
      return json_answer(R"({"action":"continue","action":"block"})");
    return json_answer(R"({"action":"continue"})");
  }};
  gateway_process gw{make_config(echo_model, "echo", "",
                                 "middleware:\n"
                                 "  pre_request:\n"
                                 "    - plugin: http\n"
                                 "      config: {url: \""
                                   + service.base_url() + "/decide\"}\n")};
  for (int i = 0; i < 2; ++i) {
    auto res = post(gw, chat_body("echo"));
    CHECK(res.status == 503);
    CHECK(error_of(res)["code"] == "plugin_unavailable");
  }
  check_served(gw, "echo");
}

TEST_CASE("a 128 MB stream is relayed in bounded memory, its text kept only "
          "up to the bound") {
  // A post plugin (audit_log) reads the stream's text: the gateway keeps at
  // most 1 MiB of it, and relays the rest piece by piece.
  char dir_template[] = "/tmp/pw-stream-XXXXXX";
  std::string dir = ::mkdtemp(dir_template);
  const std::string piece(64 * 1024, 'x');
  std::vector<std::string> pieces(2048, piece); // 128 MiB of text
  fake_response stream;
  stream.content_type = "text/event-stream";
  stream.chunks = openai_stream(pieces);
  fake_upstream up{[stream](const fake_request& req) {
    if (req.body.find("\"stream\":true") != std::string::npos)
      return stream;
    return json_answer(openai_completion("upstream-m", "fine"));
  }};
  // ASan keeps freed memory in a quarantine; a small one makes the
  // resident size show what the gateway holds, not what it freed.
  gateway_process gw{make_config(openai_model("m", up.base_url()), "m", "",
                                 audit_log_middleware(dir + "/audit.jsonl")),
                     {{"ASAN_OPTIONS", "quarantine_size_mb=8"}}};
  auto peak_kb = [&] {
    std::ifstream status{"/proc/" + std::to_string(gw.pid()) + "/status"};
    std::string line;
    while (std::getline(status, line))
      if (line.starts_with("VmHWM:"))
        return std::stol(line.substr(6));
    return 0L;
  };
  check_served(gw, "m"); // warm: pools, parsers, the audit file
  auto before = peak_kb();
  auto body = nlohmann::json::parse(chat_body("m"));
  body["stream"] = true;
  http_client client{gw.port(), 120s};
  auto res = client.request("POST", "/v1/chat/completions", body.dump(),
                            auth_json(full_key));
  REQUIRE(res.status == 200);
  CHECK(res.body.size() > 128u * 1024 * 1024);
  CHECK(res.body.ends_with("data: [DONE]\n\n"));
  auto grew_mb = (peak_kb() - before) / 1024;
  INFO("peak resident size grew by " << grew_mb << " MB");
  CHECK(grew_mb < 64);
  REQUIRE(gw.stop() == 0);
  std::ifstream audit{dir + "/audit.jsonl"};
  std::string line, last;
  while (std::getline(audit, line))
    last = line;
  auto record = nlohmann::json::parse(last);
  CHECK(record["stream_complete"] == true);
  CHECK(record["response_truncated"] == true);
  std::filesystem::remove_all(dir);
}
