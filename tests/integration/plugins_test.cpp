// Plugins and fail-closed tag routing through the real binary: tagged data
// never reaches a model outside its chain (counted at the fake upstreams),
// blocks reach no upstream, PII is redacted upstream and only hashed in the
// audit log, the audit chain verifies after a mixed load and catches
// tampering, and the `http` plugin obeys a fake decision service.

#include "tests/integration/common.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

using namespace pw::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string ssn_text = "my SSN is 123-45-6789, please help";

std::string completion(const std::string& text) {
  nlohmann::json c
    = {{"id", "c1"},
       {"object", "chat.completion"},
       {"created", 1},
       {"model", "upstream"},
       {"choices",
        {{{"index", 0},
          {"message", {{"role", "assistant"}, {"content", text}}},
          {"finish_reason", "stop"}}}},
       {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 2}}}};
  return c.dump();
}

std::vector<fake_chunk> sse(const std::string& text) {
  auto event = [](const nlohmann::json& j) {
    return fake_chunk{0ms, "data: " + j.dump() + "\n\n"};
  };
  nlohmann::json delta = {{"id", "c1"},
                          {"object", "chat.completion.chunk"},
                          {"created", 1},
                          {"model", "upstream"},
                          {"choices",
                           {{{"index", 0},
                             {"delta", {{"content", text}}},
                             {"finish_reason", nullptr}}}}};
  nlohmann::json stop = delta;
  stop["choices"][0]["delta"] = nlohmann::json::object();
  stop["choices"][0]["finish_reason"] = "stop";
  return {event(delta), event(stop), {0ms, "data: [DONE]\n\n"}};
}

/// An OpenAI-compatible upstream that answers streams and whole answers.
fake_handler answer_chat(const std::string& text = "fine") {
  return [text](const fake_request& req) {
    fake_response r;
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_object() && body.value("stream", false)) {
      r.content_type = "text/event-stream";
      r.chunks = sse(text);
    } else {
      r.body = completion(text);
    }
    return r;
  };
}

std::string body_with(const std::string& model, const std::string& text,
                      bool stream = false) {
  nlohmann::json body
    = {{"model", model}, {"messages", {{{"role", "user"}, {"content", text}}}}};
  if (stream)
    body["stream"] = true;
  return body.dump();
}

http_response ask(const gateway_process& gw, const std::string& model,
                  const std::string& text, bool stream = false) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      body_with(model, text, stream), auth_json(full_key));
}

const std::string regex_middleware = R"(middleware:
  pre_request:
    - plugin: regex
      config:
        rules:
          - pattern: '\b\d{3}-\d{2}-\d{4}\b'
            tag: client-data
          - pattern: 'DROP TABLE'
            block: 451
)";

/// external (A), and the chain local-only = [local (B), local2 (C)] that
/// client-data may use.
std::string policy_config(const fake_upstream& a, const fake_upstream& b,
                          const fake_upstream& c, const std::string& routing,
                          const std::string& middleware) {
  return make_config(openai_model("external", a.base_url() + "/v1")
                       + openai_model("local", b.base_url() + "/v1")
                       + openai_model("local2", c.base_url() + "/v1"),
                     "external", "",
                     "  fallback_chains:\n"
                     "    local-only: [\"local\", \"local2\"]\n"
                     "  rules:\n"
                     "    - match: {tag: client-data}\n"
                     "      route_to_chain: local-only\n"
                       + routing + middleware);
}

std::string read_all(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

std::string sha256_hex(const std::string& data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

/// The audit files of `dir` in verification order: rotated ones by number,
/// the live file last.
std::vector<std::string> audit_files(const fs::path& dir) {
  std::vector<std::string> rotated;
  for (const auto& e : fs::directory_iterator{dir})
    if (e.path().filename().string().starts_with("audit.jsonl."))
      rotated.push_back(e.path().string());
  std::sort(rotated.begin(), rotated.end());
  rotated.push_back((dir / "audit.jsonl").string());
  return rotated;
}

} // namespace

TEST_CASE("a tagged request naming an external model never reaches it, "
          "also during fallback") {
  fake_upstream a{answer_chat("external")};
  fake_upstream b{answer_chat("local")};
  fake_upstream c{answer_chat("local2")};
  gateway_process gw{policy_config(a, b, c, "", regex_middleware)};

  auto r = ask(gw, "external", ssn_text);
  REQUIRE(r.status == 200);
  CHECK(r.json()["model"] == "local");
  CHECK(r.header("x-route-reason")
        == "tag:client-data->chain:local-only (rerouted from external)");
  CHECK(chats(b) == 1);

  // The first model of the chain fails: fallback stays inside the chain.
  b.set_handler([](const fake_request&) {
    fake_response f;
    f.status = 500;
    return f;
  });
  r = ask(gw, "external", ssn_text);
  REQUIRE(r.status == 200);
  CHECK(r.json()["choices"][0]["message"]["content"] == "local2");
  CHECK(chats(c) == 1);

  // Streams too.
  r = ask(gw, "external", ssn_text, true);
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/event-stream");
  CHECK(r.header("x-route-reason").starts_with("tag:client-data->chain:"));
  CHECK(r.body.find("local2") != std::string::npos);
  CHECK(chats(c) == 2);

  // The whole chain down: a 502, still never the external model.
  c.set_handler([](const fake_request&) {
    fake_response f;
    f.status = 503;
    return f;
  });
  r = ask(gw, "external", ssn_text);
  CHECK(r.status == 502);
  CHECK(chats(a) == 0);

  // Untagged traffic is untouched.
  r = ask(gw, "external", "hello");
  REQUIRE(r.status == 200);
  CHECK(r.header("x-route-reason") == "model:external");
  CHECK(chats(a) == 1);
}

TEST_CASE("tag_override: reject refuses a tagged request for an outside "
          "model with 403") {
  fake_upstream a{answer_chat()};
  fake_upstream b{answer_chat()};
  fake_upstream c{answer_chat()};
  gateway_process gw{
    policy_config(a, b, c, "  tag_override: reject\n", regex_middleware)};
  auto r = ask(gw, "external", ssn_text);
  CHECK(r.status == 403);
  auto e = r.json()["error"];
  CHECK(e["type"] == "policy_error");
  CHECK(e["code"] == "policy_forbidden");
  CHECK(e["message"].get<std::string>().find("'external'")
        != std::string::npos);
  r = ask(gw, "local2", ssn_text);
  CHECK(r.status == 200);
  CHECK(chats(a) == 0);
  CHECK(chats(b) == 0);
  CHECK(chats(c) == 1);
}

TEST_CASE("a blocked request reaches no upstream") {
  fake_upstream a{answer_chat()};
  fake_upstream b{answer_chat()};
  fake_upstream c{answer_chat()};
  gateway_process gw{policy_config(a, b, c, "", regex_middleware)};
  for (bool stream : {false, true}) {
    auto r = ask(gw, "external", "please DROP TABLE users", stream);
    CHECK(r.status == 451);
    auto e = r.json()["error"];
    CHECK(e["type"] == "policy_error");
    CHECK(e["message"] == "blocked by policy");
    CHECK(e["code"] == "policy_blocked");
  }
  CHECK(chats(a) + chats(b) + chats(c) == 0);
  CHECK(gw.running());
}

TEST_CASE("PII is redacted upstream and the audit log holds only hashes") {
  temp_dir dir;
  fake_upstream a{answer_chat("Reach me at support@vendor.example")};
  fake_upstream b{answer_chat()};
  fake_upstream c{answer_chat()};
  auto middleware = "middleware:\n"
                    "  pre_request:\n"
                    "    - plugin: pii\n"
                    "      config: {action: redact}\n"
                    + audit_log_stage(dir.path / "audit.jsonl");
  gateway_process gw{policy_config(a, b, c, "", middleware)};
  const std::string secret
    = "I am jane.roe@example.com, card 4111 1111 1111 1111";
  auto sent = body_with("external", secret);
  auto r = http_request(gw.port(), "POST", "/v1/chat/completions", sent,
                        auth_json(full_key));
  REQUIRE(r.status == 200);
  REQUIRE(chats(a) == 1);
  auto upstream_body = nlohmann::json::parse(a.requests()[0].body);
  CHECK(upstream_body["messages"][0]["content"]
        == "I am [REDACTED:EMAIL], card [REDACTED:CARD]");
  REQUIRE(gw.stop() == 0);
  auto text = read_all(dir.path / "audit.jsonl");
  CHECK(text.find("jane.roe") == std::string::npos);
  CHECK(text.find("4111") == std::string::npos);
  auto lines = lines_of(dir.path / "audit.jsonl");
  REQUIRE(lines.size() == 2);
  auto line = nlohmann::json::parse(lines[1]);
  CHECK(line["request_sha256"] == sha256_hex(sent));
  CHECK(line["response_sha256"] == sha256_hex(r.body));
  CHECK(line["metadata"]["pii_request"]["email"] == 1);
  CHECK(line["metadata"]["pii_request"]["card"] == 1);
  CHECK(line["status"] == 200);
  CHECK(line["model"] == "external");
  CHECK(line["client"] == "full");
  CHECK(line.find("request") == line.end());
  // Nor do the gateway's own logs carry the data or any key.
  for (const auto* needle :
       {"jane.roe", "4111", full_key.c_str(), upstream_key.c_str()})
    CHECK(gw.output().find(needle) == std::string::npos);
}

TEST_CASE("a SIGHUP that changes an audit_log entry is refused, and the "
          "running chain keeps recording") {
  temp_dir dir;
  fake_upstream up{answer_chat()};
  auto config_with = [&](const std::string& file) {
    return make_config(openai_model("m", up.base_url()), "m", "",
                       audit_log_middleware(dir.path / file, "fsync: every"));
  };
  gateway_process gw{config_with("first.jsonl")};
  auto chat = [&] {
    return http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_body("m"), auth_json(full_key))
      .status;
  };
  REQUIRE(chat() == 200);
  auto sha_before = health_of(gw.port())["config_sha256"].get<std::string>();
  gw.rewrite_config(config_with("second.jsonl"));
  gw.signal(SIGHUP);
  REQUIRE(gw.wait_for_output("\"event\":\"reload_rejected\""));
  CHECK(gw.output().find("audit_log entries changed; restart pw-router")
        != std::string::npos);
  CHECK(health_of(gw.port())["config_sha256"] == sha_before);
  REQUIRE(chat() == 200);
  // One writer per chain: the running entry recorded both requests (after
  // its header line), and no second file was opened.
  auto lines = lines_of(dir.path / "first.jsonl");
  REQUIRE(lines.size() == 3);
  CHECK(nlohmann::json::parse(lines[1])["status"] == 200);
  CHECK(nlohmann::json::parse(lines[2])["status"] == 200);
  CHECK_FALSE(fs::exists(dir.path / "second.jsonl"));
  CHECK(gw.running());
}

TEST_CASE("after a crash tore its last line the audit log recovers, serves "
          "and verifies") {
  temp_dir dir;
  fake_upstream up{answer_chat()};
  auto log = dir.path / "audit.jsonl";
  auto config = make_config(openai_model("m", up.base_url()), "m", "",
                            audit_log_middleware(log, "fsync: every"));
  {
    gateway_process gw{config};
    for (int i = 0; i < 3; ++i)
      REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                           chat_body("m"), auth_json(full_key))
                .status
              == 200);
  }
  // The crash: half a line, no newline.
  auto whole = read_all(log);
  const std::string torn = R"({"prev":"5f1e","time":"2026-12-05T10:00)";
  {
    std::ofstream out{log, std::ios::binary | std::ios::app};
    out << torn;
  }
  gateway_process gw{config};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("m"), auth_json(full_key));
  CHECK(res.status == 200);
  CHECK(gw.wait_for_output("\"event\":\"audit_recovered\""));
  REQUIRE(gw.stop() == 0);
  auto lines = lines_of(log);
  REQUIRE(lines.size() == 6); // header, 3 records, the recovery, 1 record
  auto note = nlohmann::json::parse(lines[4]);
  CHECK(note["event"] == "audit_recovered");
  CHECK(note["torn_sha256"] == sha256_hex(torn));
  CHECK(read_all(dir.path / note["torn_file"].get<std::string>()) == torn);
  CHECK(read_all(log).starts_with(whole));
  auto verified = run_pw_router({"verify-audit", log.string()});
  CHECK(verified.exit_code == 0);
  CHECK(verified.out == "ok 6 lines\n");
}

TEST_CASE("the audit chain verifies after 1,000 mixed requests and catches "
          "tampering") {
  temp_dir dir;
  fake_upstream a{answer_chat("answer")};
  fake_upstream b{answer_chat("local answer")};
  fake_upstream c{answer_chat()};
  auto middleware
    = regex_middleware
      + audit_log_stage(dir.path / "audit.jsonl",
                        "fsync: interval, interval_ms: 50, max_bytes: 200000");
  gateway_process gw{policy_config(a, b, c, "", middleware)};
  constexpr int clients = 4;
  constexpr int per_client = 250;
  std::atomic<int> ok{0};
  std::atomic<int> blocked{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t)
    threads.emplace_back([&, t] {
      http_client client{gw.port()};
      for (int i = 0; i < per_client; ++i) {
        auto kind = (t * per_client + i) % 5;
        auto text = kind == 3   ? std::string{"DROP TABLE t"}
                    : kind == 4 ? ssn_text
                                : "question " + std::to_string(i);
        auto r = client.request("POST", "/v1/chat/completions",
                                body_with("external", text, kind % 2 == 0),
                                auth_json(full_key));
        (r.status == 200 ? ok : r.status == 451 ? blocked : other)++;
      }
    });
  for (auto& th : threads)
    th.join();
  CHECK(ok == 800);
  CHECK(blocked == 200);
  CHECK(other == 0);
  REQUIRE(gw.stop() == 0);

  auto files = audit_files(dir.path);
  CHECK(files.size() > 2); // rotated at 200 kB
  std::vector<std::string> args{"verify-audit"};
  args.insert(args.end(), files.begin(), files.end());
  auto verified = run_pw_router(args);
  INFO(verified.err);
  CHECK(verified.exit_code == 0);
  CHECK(verified.out
        == "ok " + std::to_string(1000 + files.size()) + " lines\n");
  // Every request has its line: ids are unique, statuses add up.
  size_t streamed = 0;
  size_t statuses_451 = 0;
  std::set<std::string> ids;
  for (const auto& f : files)
    for (const auto& l : lines_of(f)) {
      auto j = nlohmann::json::parse(l);
      if (!j.contains("request_id"))
        continue;
      ids.insert(j["request_id"].get<std::string>());
      streamed += j["stream"].get<bool>() ? 1 : 0;
      statuses_451 += j["status"] == 451 ? 1 : 0;
    }
  CHECK(ids.size() == 1000);
  CHECK(streamed == 600); // kinds 0, 2 and 4 ask for a stream
  CHECK(statuses_451 == 200);

  // Edit one line of the live file: verification fails and names it.
  auto live = dir.path / "audit.jsonl";
  auto lines = lines_of(live);
  REQUIRE(lines.size() > 5);
  size_t edited = 1;
  while (edited + 1 < lines.size()
         && lines[edited].find("\"status\":200") == std::string::npos)
    ++edited;
  auto pos = lines[edited].find("\"status\":200");
  REQUIRE(pos != std::string::npos);
  lines[edited].replace(pos, 12, "\"status\":201");
  {
    std::ofstream out{live, std::ios::trunc};
    for (const auto& l : lines)
      out << l << "\n";
  }
  auto tampered = run_pw_router(args);
  CHECK(tampered.exit_code == 1);
  // The edited line still parses: the next line's `prev` exposes it.
  CHECK(tampered.err.find("audit.jsonl:" + std::to_string(edited + 2) + ":")
        != std::string::npos);
  // A rotated file left out breaks the chain too.
  std::vector<std::string> missing{"verify-audit"};
  missing.insert(missing.end(), files.begin() + 1, files.end());
  lines[edited].replace(pos, 12, "\"status\":200");
  {
    std::ofstream out{live, std::ios::trunc};
    for (const auto& l : lines)
      out << l << "\n";
  }
  CHECK(run_pw_router(args).exit_code == 0);
  CHECK(run_pw_router(missing).exit_code == 0); // a suffix verifies alone
  std::vector<std::string> gap{"verify-audit", files[0]};
  gap.insert(gap.end(), files.begin() + 2, files.end());
  CHECK(run_pw_router(gap).exit_code == 1);
}

TEST_CASE("the http plugin obeys a decision service: block, tag, timeout") {
  fake_upstream decider{[](const fake_request& req) {
    fake_response r;
    auto ctx = nlohmann::json::parse(req.body);
    auto text = ctx["body"]["messages"][0]["content"].get<std::string>();
    if (text == "block me")
      r.body
        = R"({"action":"block","status":403,"message":"denied by engine"})";
    else if (text == "tag me")
      r.body = R"({"action":"continue","tags":["client-data"]})";
    else if (text == "slow")
      r.delay = 2000ms;
    else if (text == "garbage")
      r.body = "not json";
    else
      r.body = R"({"action":"continue"})";
    return r;
  }};
  fake_upstream a{answer_chat()};
  fake_upstream b{answer_chat()};
  fake_upstream c{answer_chat()};
  auto middleware = "middleware:\n"
                    "  pre_request:\n"
                    "    - plugin: http\n"
                    "      timeout_ms: 500\n"
                    "      config:\n"
                    "        url: \""
                    + decider.base_url()
                    + "/decide\"\n"
                      "        timeout_ms: 300\n"
                      "        headers:\n"
                      "          Authorization: \"Bearer ${DECIDER_TOKEN}\"\n"
                      "          Content-Type: \"text/plain\"\n";
  gateway_process gw{policy_config(a, b, c, "", middleware),
                     {{"DECIDER_TOKEN", "decider-secret-81f2"}}};

  auto r = ask(gw, "external", "hello");
  CHECK(r.status == 200);
  REQUIRE(decider.requests().size() == 1);
  auto seen = decider.requests()[0];
  CHECK(seen.target == "/decide");
  CHECK(seen.headers["authorization"] == "Bearer decider-secret-81f2");
  // One Content-Type, the gateway's: a configured one is left out.
  CHECK(seen.headers["content-type"] == "application/json");
  CHECK(seen.headers["accept"] == "application/json");
  auto ctx = nlohmann::json::parse(seen.body);
  CHECK(ctx["client"] == "full");
  CHECK(ctx["body"]["model"] == "external");

  r = ask(gw, "external", "block me");
  CHECK(r.status == 403);
  CHECK(r.json()["error"]["message"] == "denied by engine");
  CHECK(r.json()["error"]["type"] == "policy_error");

  r = ask(gw, "external", "tag me");
  CHECK(r.status == 200);
  CHECK(r.header("x-route-reason").starts_with("tag:client-data->"));
  CHECK(chats(b) == 1);

  for (const auto* failing : {"slow", "garbage"}) {
    INFO(failing);
    r = ask(gw, "external", failing);
    CHECK(r.status == 503);
    CHECK(r.json()["error"]["code"] == "plugin_unavailable");
  }
  CHECK(chats(a) == 1); // only "hello"
  CHECK(gw.output().find("decider-secret-81f2") == std::string::npos);
}

TEST_CASE("http plugin calls go to the io threads in turn, each through "
          "its own connection pool") {
  fake_upstream decider{[](const fake_request&) {
    fake_response r;
    r.body = R"({"action":"continue"})";
    return r;
  }};
  auto middleware = "middleware:\n"
                    "  pre_request:\n"
                    "    - plugin: http\n"
                    "      config:\n"
                    "        url: \""
                    + decider.base_url() + "/decide\"\n";
  gateway_process gw{
    make_config(echo_model, "echo", "  io_threads: 2\n", middleware)};
  for (int i = 0; i < 4; ++i)
    REQUIRE(ask(gw, "echo", "hello").status == 200);
  // One after the other: one io thread would have used one keep-alive
  // connection for all four; two threads in turn use one each.
  std::set<size_t> connections;
  for (const auto& req : decider.requests())
    connections.insert(req.connection);
  CHECK(decider.requests().size() == 4);
  CHECK(connections.size() == 2);
  CHECK(decider.connections_opened() == 2);
}

TEST_CASE("plugin config errors stop the start with their YAML path") {
  auto base = make_config(echo_model, "echo");
  auto check = [&](const std::string& middleware) {
    return run_pw_router(
      {"--check-config", write_temp_file(base + middleware)});
  };
  auto r = check("middleware:\n  pre_request:\n"
                 "    - plugin: plugins.example_redact\n");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("middleware.pre_request[0].plugin: unknown plugin "
                   "'plugins.example_redact'")
        != std::string::npos);
  CHECK(r.err.find("built-in plugins: regex, pii, audit_log, http")
        != std::string::npos);
  r = check("middleware:\n  pre_request:\n    - plugin: regex\n"
            "      config:\n        rules:\n          - pattern: 'a(('\n"
            "            tag: x\n");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("middleware.pre_request[0].config.rules[0].pattern: "
                   "invalid pattern")
        != std::string::npos);
  r = check("middleware:\n  pre_request:\n    - plugin: regex\n"
            "      on_error: maybe\n      config: {rules: [{pattern: x, "
            "tag: y}]}\n");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("middleware.pre_request[0].on_error: expected block or "
                   "continue")
        != std::string::npos);
}
