// The built-in plugins as pure logic: golden inputs in, verdicts out.

#include "core/sha256.hpp"
#include "plugins/audit_log/audit_plugin.hpp"
#include "plugins/pii/pii_plugin.hpp"
#include "plugins/plugin.hpp"
#include "plugins/regex/regex_plugin.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

using namespace pw;
using namespace pw::plugins;
using json = nlohmann::ordered_json;

namespace {

plugin_entry entry_of(std::string plugin, const std::string& config_yaml) {
  plugin_entry e;
  e.plugin = std::move(plugin);
  e.path = "middleware.pre_request[0]";
  e.config = std::make_shared<const YAML::Node>(YAML::Load(config_yaml));
  return e;
}

plugin_logic_ptr regex_of(const std::string& config_yaml) {
  std::vector<std::string> errors;
  auto p = make_regex_plugin(entry_of("regex", config_yaml), errors);
  INFO(errors.size());
  REQUIRE(errors.empty());
  REQUIRE(p);
  return p;
}

plugin_logic_ptr pii_of(const std::string& config_yaml) {
  std::vector<std::string> errors;
  auto p = make_pii_plugin(entry_of("pii", config_yaml), errors);
  REQUIRE(errors.empty());
  REQUIRE(p);
  return p;
}

std::vector<std::string> errors_of(const std::string& plugin,
                                   const std::string& config_yaml) {
  plugin_entry e = entry_of(plugin, config_yaml);
  gateway_config cfg;
  cfg.middleware.pre_request.push_back(e);
  return check_middleware(cfg);
}

actors::plugin_request request_with(json body) {
  actors::plugin_request r;
  r.request_id = "req-1";
  r.client = "team-a";
  r.body = std::make_shared<const json>(std::move(body));
  return r;
}

json chat(std::initializer_list<std::pair<const char*, json>> messages) {
  json out = {{"model", "gpt"}, {"messages", json::array()}};
  for (const auto& [role, content] : messages)
    out["messages"].push_back({{"role", role}, {"content", content}});
  return out;
}

const char* rules_yaml = R"(
rules:
  - pattern: '\b\d{3}-\d{2}-\d{4}\b'
    tag: client-data
  - pattern: 'DROP TABLE'
    block: 451
    message: "blocked by policy"
)";

} // namespace

TEST_CASE("regex: a tag rule adds its tag, a block rule blocks") {
  auto p = regex_of(rules_yaml);
  auto v = p->on_request(request_with(chat({{"user", "my id 123-45-6789"}})));
  CHECK_FALSE(v.block);
  CHECK(v.tags == std::vector<std::string>{"client-data"});
  CHECK(v.body == nullptr);
  v = p->on_request(request_with(chat({{"user", "hello"}})));
  CHECK(v.tags.empty());
  CHECK_FALSE(v.block);
  v = p->on_request(
    request_with(chat({{"system", "x"}, {"user", "please DROP TABLE users"}})));
  CHECK(v.block);
  CHECK(v.status == 451);
  CHECK(v.message == "blocked by policy");
}

TEST_CASE("regex: text parts of array content and every role are searched") {
  auto p = regex_of(rules_yaml);
  json parts = json::array(
    {{{"type", "image_url"}, {"image_url", {{"url", "DROP TABLE"}}}},
     {{"type", "text"}, {"text", "id 987-65-4321"}}});
  auto v = p->on_request(request_with(chat({{"user", parts}})));
  CHECK(v.tags == std::vector<std::string>{"client-data"});
  // An image URL is not text: the block rule does not see it.
  CHECK_FALSE(v.block);
  v = p->on_request(request_with(chat({{"assistant", "DROP TABLE"}})));
  CHECK(v.block);
}

TEST_CASE("regex: every rule is judged on every text, in rule order") {
  // The rules are searched together (one automaton per text): anchors,
  // flags and the order of rules still count as for each rule alone.
  auto p = regex_of("rules:\n"
                    "  - pattern: '^hello'\n    tag: start\n"
                    "  - pattern: 'world$'\n    tag: end\n"
                    "  - pattern: '(?i)secret'\n    tag: s\n"
                    "  - pattern: 'x{3}'\n    block: 403\n"
                    "  - pattern: 'unused'\n    tag: never\n");
  auto v = p->on_request(request_with(
    chat({{"user", "a SeCrEt"}, {"user", "big world"}, {"user", "hello"}})));
  CHECK_FALSE(v.block);
  CHECK(v.tags == std::vector<std::string>{"start", "end", "s"});
  // Anchors hold per text: "world" not at the end, "hello" not at the start.
  v = p->on_request(request_with(chat({{"user", "say hello world!"}})));
  CHECK(v.tags.empty());
  v = p->on_request(request_with(chat({{"user", "hello"}, {"user", "xxx"}})));
  CHECK(v.block);
  CHECK(v.status == 403);
  CHECK(v.tags.empty());
}

TEST_CASE("regex: a pathological pattern on a 1 MB body finishes") {
  // (a+)+$ is exponential for backtracking engines; RE2 is linear.
  auto p = regex_of("rules:\n  - pattern: '(a+)+$'\n    tag: t\n"
                    "  - pattern: '(x*)*y'\n    tag: u\n");
  std::string text(1 << 20, 'a');
  text += "!";
  auto v = p->on_request(request_with(chat({{"user", text}})));
  CHECK(v.tags.empty());
  std::string xs(1 << 20, 'x');
  v = p->on_request(request_with(chat({{"user", xs}})));
  CHECK(v.tags.empty());
}

TEST_CASE("regex: config errors name their YAML path") {
  auto errors = errors_of("regex", "rules:\n  - pattern: 'a(b'\n    tag: t\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with(
    "middleware.pre_request[0].config.rules[0].pattern: invalid pattern"));
  errors = errors_of("regex", "rules:\n  - pattern: 'x'\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with("middleware.pre_request[0].config.rules[0]: "
                              "needs a tag"));
  errors = errors_of("regex", "rules:\n  - pattern: 'x'\n    block: 200\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with(
    "middleware.pre_request[0].config.rules[0].block: must be between 400"));
  errors = errors_of("regex", "rulez: []\n");
  REQUIRE_FALSE(errors.empty());
  CHECK(errors[0].starts_with("middleware.pre_request[0].config.rulez: "
                              "unknown key (allowed: rules)"));
  CHECK_FALSE(errors_of("regex", "{}").empty());
}

TEST_CASE("registry: names, stages and pw-router module names") {
  CHECK(builtin_names()
        == std::vector<std::string_view>{"regex", "pii", "audit_log", "http"});
  auto errors = errors_of("audit_log", "path: /tmp/x.jsonl\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]
        == "middleware.pre_request[0].plugin: audit_log runs only in "
           "middleware.post_response");
  errors = errors_of("plugins.example_redact", "{}");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("built-in plugins: regex, pii, audit_log, http")
        != std::string::npos);
}

TEST_CASE("registry: two audit logs may not share a file") {
  gateway_config cfg;
  for (int i = 0; i < 2; ++i) {
    auto e = entry_of("audit_log", "path: /tmp/../tmp/pw-same-audit.jsonl\n");
    e.path = "middleware.post_response[" + std::to_string(i) + "]";
    cfg.middleware.post_response.push_back(e);
  }
  auto errors = check_middleware(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]
        == "middleware.post_response[1].config.path: the same file as "
           "middleware.post_response[0] (one audit_log entry per file)");
}

TEST_CASE("pii: tag adds the tag and counts kinds, never values") {
  auto p = pii_of("action: tag\ntag: personal\n");
  auto v = p->on_request(request_with(chat(
    {{"user", "mail me at jane.doe@example.com or call (212) 555-0123"}})));
  CHECK(v.tags == std::vector<std::string>{"personal"});
  CHECK(v.metadata["pii_request"]["email"] == 1);
  CHECK(v.metadata["pii_request"]["phone"] == 1);
  CHECK(v.metadata.dump().find("jane") == std::string::npos);
  CHECK(v.body == nullptr);
}

TEST_CASE("pii: redact rewrites what goes upstream and nothing else") {
  auto p = pii_of("action: redact\n");
  auto body = chat({{"system", "be brief"},
                    {"user", "card 4111 1111 1111 1111, ssn 123-45-6789"}});
  auto v = p->on_request(request_with(body));
  REQUIRE(v.body);
  CHECK((*v.body)["messages"][1]["content"]
        == "card [REDACTED:CARD], ssn [REDACTED:SSN]");
  CHECK((*v.body)["messages"][0]["content"] == "be brief");
  CHECK((*v.body)["model"] == "gpt");
  CHECK(v.tags.empty());
}

TEST_CASE("pii: block refuses with its status, ordinary text passes") {
  auto p = pii_of("action: block\nstatus: 422\nkinds: [iban]\n");
  auto v = p->on_request(
    request_with(chat({{"user", "pay to GB82 WEST 1234 5698 7654 32"}})));
  CHECK(v.block);
  CHECK(v.status == 422);
  CHECK(v.message == "blocked by policy: personal data (iban) in the request");
  // Only the enabled kinds count.
  v = p->on_request(request_with(chat({{"user", "jane@example.com"}})));
  CHECK_FALSE(v.block);
  for (const char* text :
       {"Order #4481923 shipped on 2024-01-15 at 10:30 for $1,234.56",
        "Invoice INV-2024-00042, total 99.95 EUR, due 15/02/2024",
        "Version 1.2.3 of the API, see 10.0.0.1 and ticket 12345678"}) {
    auto any = pii_of("action: block\n");
    CHECK_FALSE(any->on_request(request_with(chat({{"user", text}}))).block);
  }
}

TEST_CASE("pii: post stage redacts a whole answer, records a stream") {
  auto p = pii_of("action: redact\n");
  actors::plugin_outcome out;
  json response = {
    {"id", "x"},
    {"choices", json::array({{{"index", 0},
                              {"message",
                               {{"role", "assistant"},
                                {"content", "Write to bob@example.org"}}}}})}};
  out.response_body = std::make_shared<const std::string>(response.dump());
  auto v = p->on_response(out);
  REQUIRE(v.body);
  CHECK((*v.body)["choices"][0]["message"]["content"]
        == "Write to [REDACTED:EMAIL]");
  actors::plugin_outcome streamed;
  streamed.streamed = true;
  streamed.stream_text = "Write to bob@example.org";
  v = p->on_response(streamed);
  CHECK(v.body == nullptr);
  CHECK(v.metadata["pii_response"]["email"] == 1);
}

TEST_CASE("pii: config errors") {
  auto errors = errors_of("pii", "action: scrub\nkinds: [email, dna]\n");
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].starts_with("middleware.pre_request[0].config.action: "
                              "expected tag, redact or block"));
  CHECK(errors[1].starts_with("middleware.pre_request[0].config.kinds[1]: "
                              "unknown kind 'dna'"));
}

TEST_CASE("pii: phone_regions and ssn_context are checked and used") {
  auto errors = errors_of("pii", "phone_regions: [GB, UK, XX]\n"
                                 "ssn_context: [ssn, 'Tax ID']\n");
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].starts_with(
    "middleware.pre_request[0].config.phone_regions[1]: unknown region 'UK': "
    "the ISO 3166 code of the United Kingdom is GB"));
  CHECK(errors[1].starts_with(
    "middleware.pre_request[0].config.phone_regions[2]: unknown region 'XX' "
    "(known: AT, AU, BE,"));
  CHECK(errors[2].starts_with(
    "middleware.pre_request[0].config.ssn_context[1]: 'Tax ID' must be "
    "lower-case words"));
  auto count = [](const plugin_logic_ptr& p, const std::string& text) {
    auto v = p->on_request(request_with(chat({{"user", text}})));
    return v.metadata.dump();
  };
  // Default: national formats of GB are found; an empty list keeps only
  // international numbers.
  auto defaults = pii_of("action: tag\n");
  CHECK(count(defaults, "call 020 7946 0958")
        == R"({"pii_request":{"phone":1}})");
  auto international = pii_of("action: tag\nphone_regions: []\n");
  CHECK(count(international, "call 020 7946 0958") == "null");
  CHECK(count(international, "call +44 20 7946 0958")
        == R"({"pii_request":{"phone":1}})");
  // Plain SSN digits count only after a configured context word.
  auto tax = pii_of("action: tag\nssn_context: [tax id]\n");
  CHECK(count(tax, "tax id 536228913") == R"({"pii_request":{"ssn":1}})");
  CHECK(count(defaults, "tax id 536228913") == "null");
  CHECK(count(defaults, "ssn 536228913") == R"({"pii_request":{"ssn":1}})");
}

TEST_CASE("request and response texts point at every string") {
  json body = chat({{"user", "a"}, {"assistant", nullptr}});
  body["messages"].push_back(
    {{"role", "user"},
     {"content", json::array({{{"type", "text"}, {"text", "b"}}})}});
  auto texts = request_texts(body, api_endpoint::chat);
  REQUIRE(texts.size() == 2);
  CHECK(texts[0].where.to_string() == "/messages/0/content");
  CHECK(*texts[1].text == "b");
  CHECK(texts[1].where.to_string() == "/messages/2/content/0/text");
}

TEST_CASE("audit record: what happened, hashes, no bodies by default") {
  actors::plugin_outcome out;
  out.request = request_with(chat({{"user", "secret plan"}}));
  out.request.tags = {"client-data"};
  out.request_sha256 = to_hex(sha256("{}"));
  out.status = 200;
  out.model = "llama";
  out.attempts = {{"claude", "skipped (circuit open)", "skipped"},
                  {"llama", "ok", "success"}};
  out.route_reason = "tag:client-data->chain:local";
  out.response_body = std::make_shared<const std::string>("{\"a\":1}");
  out.prompt_tokens = 3;
  out.completion_tokens = 5;
  out.latency = std::chrono::microseconds{12345};
  auto line = json::parse(audit_record(out, false, "2026-12-08T10:00:00.000Z"));
  CHECK(line["time"] == "2026-12-08T10:00:00.000Z");
  CHECK(line["request_id"] == "req-1");
  CHECK(line["client"] == "team-a");
  CHECK(line["status"] == 200);
  CHECK(line["model"] == "llama");
  CHECK(line["attempts"].size() == 2);
  CHECK(line["attempts"][0]["outcome"] == "skipped (circuit open)");
  CHECK(line["tags"] == json::array({"client-data"}));
  CHECK(line["route_reason"] == "tag:client-data->chain:local");
  CHECK(line["usage"]["completion_tokens"] == 5);
  CHECK(line["latency_ms"] == Approx(12.34));
  CHECK(line["response_sha256"] == to_hex(sha256("{\"a\":1}")));
  CHECK(line.dump().find("secret plan") == std::string::npos);
  auto with_bodies
    = json::parse(audit_record(out, true, "2026-12-08T10:00:00.000Z"));
  CHECK(with_bodies["request"]["messages"][0]["content"] == "secret plan");
  CHECK(with_bodies["response"]["a"] == 1);
}

TEST_CASE("embeddings texts are the strings of input, wherever they are") {
  auto one = json::parse(R"({"input":"a@b.example"})");
  auto texts = request_texts(one, api_endpoint::embeddings);
  REQUIRE(texts.size() == 1);
  CHECK(texts[0].where.to_string() == "/input");
  CHECK(*texts[0].text == "a@b.example");
  auto many = json::parse(R"({"input":["x","y"],"messages":"ignored"})");
  texts = request_texts(many, api_endpoint::embeddings);
  REQUIRE(texts.size() == 2);
  CHECK(texts[1].where.to_string() == "/input/1");
  CHECK(*texts[1].text == "y");
  CHECK(
    request_texts(json::parse(R"({"input":[1,2]})"), api_endpoint::embeddings)
      .empty());
  // A chat body's `input` is not its text.
  CHECK(request_texts(json::parse(R"({"input":"x","messages":[]})"),
                      api_endpoint::chat)
          .empty());
}

TEST_CASE("completions texts are the prompt strings and the suffix, and the "
          "answer's texts") {
  auto body = json::parse(R"({"prompt":["p0","p1"],"suffix":"s"})");
  auto texts = request_texts(body, api_endpoint::completions);
  REQUIRE(texts.size() == 3);
  CHECK(texts[0].where.to_string() == "/prompt/0");
  CHECK(texts[2].where.to_string() == "/suffix");
  CHECK(*texts[2].text == "s");
  auto answer = json::parse(
    R"({"choices":[{"text":"t0","index":0},{"text":"t1","index":1}]})");
  auto out = response_texts(answer, api_endpoint::completions);
  REQUIRE(out.size() == 2);
  CHECK(out[1].where.to_string() == "/choices/1/text");
  CHECK(*out[1].text == "t1");
  CHECK(response_texts(answer, api_endpoint::chat).empty());
  CHECK(response_texts(json::parse(R"({"data":[],"choices":[{"text":"x"}]})"),
                       api_endpoint::embeddings)
          .empty());
}

TEST_CASE("a text deeper than the steps a path keeps in place is found and "
          "redacted at its place") {
  // Tool results inside tool results: the text sits 11 steps deep, past
  // the 8 a text_path keeps in place.
  auto body = json::parse(R"({"messages":[{"role":"user","content":[
    {"type":"tool_result","tool_use_id":"a","content":[
      {"type":"tool_result","tool_use_id":"b","content":[
        {"type":"tool_result","tool_use_id":"c","content":[
          {"type":"text","text":"mail bob@example.com"}]}]}]}]}]})");
  auto texts = request_texts(body, api_endpoint::messages);
  REQUIRE(texts.size() == 1);
  CHECK(texts[0].where.to_string()
        == "/messages/0/content/0/content/0/content/0/content/0/text");
  actors::plugin_request req = request_with(body);
  req.endpoint = api_endpoint::messages;
  auto v = pii_of("action: redact\n")->on_request(req);
  REQUIRE(v.body);
  CHECK((*v.body)["messages"][0]["content"][0]["content"][0]["content"][0]
                 ["content"][0]["text"]
        == "mail [REDACTED:EMAIL]");
}

TEST_CASE("Messages texts are the system prompt and every text and tool "
          "result") {
  auto body = json::parse(R"({"system":[{"type":"text","text":"sys"}],
    "messages":[{"role":"user","content":"plain"},
                {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"q":"not text"}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"result"},
                                          {"type":"tool_result","tool_use_id":"u","content":[{"type":"text","text":"nested"}]},
                                          {"type":"image","source":{}},
                                          {"type":"text","text":"last"}]}]})");
  std::vector<std::string> where;
  for (const auto& t : request_texts(body, api_endpoint::messages))
    where.push_back(t.where.to_string() + "=" + *t.text);
  CHECK(where
        == std::vector<std::string>{
          "/system/0/text=sys", "/messages/0/content=plain",
          "/messages/2/content/0/content=result",
          "/messages/2/content/1/content/0/text=nested",
          "/messages/2/content/3/text=last"});
  CHECK(request_texts(json::parse(R"({"system":"s","messages":[]})"),
                      api_endpoint::count_tokens)
          .size()
        == 1);
  auto answer
    = json::parse(R"({"type":"message","content":[{"type":"text","text":"a"},
    {"type":"tool_use","id":"t","name":"f","input":{}},{"type":"text","text":"b"}]})");
  auto out = response_texts(answer, api_endpoint::messages);
  REQUIRE(out.size() == 2);
  CHECK(out[1].where.to_string() == "/content/2/text");
  CHECK(*out[1].text == "b");
}
