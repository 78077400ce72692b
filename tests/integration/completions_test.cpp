// POST /v1/completions (legacy text completions) end to end: the real binary,
// fake upstreams and the echo model. Keys and allowlists as for chat, the
// body checks, routing that only picks models serving completions
// (`models.<alias>.endpoints`), the upstream call and its failures, streams
// relayed event by event (errors before and after the first byte, clients
// that leave), the echo model's answers whole and streamed, plugins reading
// `prompt` and `suffix` (and `choices[].text` in the post stage), the models
// list, the audit line and the request counter.

#include "tests/integration/common.hpp"
#include "tests/support/exposition.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <vector>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

const std::string both = "    endpoints: [chat, completions]\n";
const std::string completions_only = "    endpoints: [completions]\n";
const std::string echo_cmp = "  echo:\n    provider: echo\n" + both;

/// A whole `text_completion` as an OpenAI-compatible server returns it.
nlohmann::json completion_answer(const std::string& model,
                                 const std::string& text = "hi") {
  auto j = nlohmann::json::parse(
    R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"","choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})");
  j["model"] = model;
  j["choices"][0]["text"] = text;
  return j;
}

/// One event of a completions stream.
nlohmann::json completion_chunk(const std::string& text,
                                const nlohmann::json& finish = nullptr) {
  return {{"id", "cmpl-1"},
          {"object", "text_completion"},
          {"created", 1},
          {"model", "upstream-model"},
          {"choices",
           {{{"text", text},
             {"index", 0},
             {"logprobs", nullptr},
             {"finish_reason", finish}}}}};
}

const nlohmann::json stream_usage
  = {{"prompt_tokens", 5}, {"completion_tokens", 3}, {"total_tokens", 8}};

/// The events of a completions stream that says `pieces`: one event per
/// piece, one with finish_reason "stop", a usage event (choices: []) when
/// `usage`, then [DONE].
std::vector<fake_chunk>
completions_stream(const std::vector<std::string>& pieces, bool usage = false,
                   std::chrono::milliseconds gap = 0ms) {
  std::vector<fake_chunk> out;
  for (const auto& p : pieces)
    out.push_back({gap, sse(completion_chunk(p).dump())});
  out.push_back({gap, sse(completion_chunk("", "stop").dump())});
  if (usage) {
    auto last = completion_chunk("");
    last["choices"] = nlohmann::json::array();
    last["usage"] = stream_usage;
    out.push_back({gap, sse(last.dump())});
  }
  out.push_back({gap, sse("[DONE]")});
  return out;
}

/// The model a request body names ("unknown" when none).
std::string model_of(const fake_request& req) {
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  return body.is_object() && body.contains("model") && body["model"].is_string()
           ? body["model"].get<std::string>()
           : std::string{"unknown"};
}

bool is_completions(const fake_request& req) {
  return req.target.ends_with("/v1/completions");
}

/// An OpenAI-compatible upstream: a text completion on /v1/completions (a
/// stream when the body asks, with a usage event when it asks for that
/// too), a chat completion elsewhere.
fake_handler answer_all(const std::string& text = "hi",
                        std::vector<std::string> pieces = {"he", "llo"}) {
  return [=](const fake_request& req) {
    fake_response r;
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    bool stream = body.is_object() && body.value("stream", false);
    if (!is_completions(req)) {
      r.body = openai_completion(model_of(req), "hi from upstream");
    } else if (stream) {
      bool usage = body.contains("stream_options")
                   && body["stream_options"].is_object()
                   && body["stream_options"].value("include_usage", false);
      r.content_type = "text/event-stream";
      r.chunks = completions_stream(pieces, usage);
    } else {
      r.body = completion_answer(model_of(req), text).dump();
    }
    return r;
  };
}

fake_handler answer_with(unsigned status, std::string body) {
  return [=](const fake_request&) {
    fake_response r;
    r.status = status;
    r.body = body;
    return r;
  };
}

fake_handler stream_with(std::vector<fake_chunk> chunks, bool finish = true) {
  return [=](const fake_request&) {
    fake_response r;
    r.content_type = "text/event-stream";
    r.chunks = chunks;
    r.finish = finish;
    return r;
  };
}

http_response complete(const gateway_process& gw, const std::string& body,
                       const std::string& key = full_key) {
  return http_request(gw.port(), "POST", "/v1/completions", body,
                      auth_json(key));
}

http_response complete(const gateway_process& gw, const nlohmann::json& body,
                       const std::string& key = full_key) {
  return complete(gw, body.dump(), key);
}

/// POSTs `u` received (health checks are GETs).
std::vector<fake_request> posts_of(const fake_upstream& u) {
  std::vector<fake_request> posts;
  for (const auto& r : u.requests())
    if (r.method == "POST")
      posts.push_back(r);
  return posts;
}

/// The body of the only POST `u` received, which went to /v1/completions.
nlohmann::json only_post(const fake_upstream& u) {
  auto posts = posts_of(u);
  REQUIRE(posts.size() == 1);
  CHECK(is_completions(posts[0]));
  return nlohmann::json::parse(posts[0].body);
}

/// The texts of a whole text_completion, checking its shape on the way.
std::vector<std::string> texts_of(const nlohmann::json& answer,
                                  const std::string& model) {
  REQUIRE(answer.is_object());
  CHECK(answer["object"] == "text_completion");
  CHECK(answer["model"] == model);
  REQUIRE(answer["choices"].is_array());
  std::vector<std::string> out;
  for (size_t i = 0; i < answer["choices"].size(); ++i) {
    auto c = answer["choices"][i];
    CHECK(c["index"] == i);
    CHECK(c["finish_reason"] == "stop");
    REQUIRE(c["text"].is_string());
    out.push_back(c["text"].get<std::string>());
  }
  return out;
}

// -- raw streams -------------------------------------------------------------

/// The JSON events of an OpenAI-style stream (everything but [DONE]).
std::vector<nlohmann::json> json_events(const raw_response& r) {
  std::vector<nlohmann::json> out;
  for (const auto& e : r.events()) {
    if (e.data == "[DONE]")
      continue;
    out.push_back(e.json());
  }
  return out;
}

/// The completion text of choice `index`, assembled from the events.
std::string completion_text(const raw_response& r, size_t index = 0) {
  std::string out;
  for (const auto& e : json_events(r)) {
    if (!e.is_object() || !e.contains("choices") || !e["choices"].is_array())
      continue;
    for (const auto& c : e["choices"])
      if (c.value("index", size_t{0}) == index && c.contains("text")
          && c["text"].is_string())
        out += c["text"].get<std::string>();
  }
  return out;
}

/// A completions request on the wire.
std::string raw_completions(const nlohmann::json& body) {
  auto text = body.dump();
  return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
         + full_key
         + "\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Content-Length: "
         + std::to_string(text.size()) + "\r\n\r\n" + text;
}

/// A streamed completions body for `model`.
nlohmann::json stream_body(const std::string& model,
                           const nlohmann::json& prompt = "Say hello",
                           bool usage = false) {
  nlohmann::json body
    = {{"model", model}, {"prompt", prompt}, {"stream", true}};
  if (usage)
    body["stream_options"] = {{"include_usage", true}};
  return body;
}

/// Sends `body` on a new connection and reads until it closes.
raw_response stream_once(uint16_t port, const nlohmann::json& body) {
  return send_once(port, raw_completions(body));
}

// -- config ------------------------------------------------------------------

const std::string pii_redact = "middleware:\n"
                               "  pre_request:\n"
                               "    - plugin: pii\n"
                               "      config: {action: redact}\n";

} // namespace

// -- the upstream call -------------------------------------------------------

TEST_CASE("a completions request reaches the upstream as sent, with only the "
          "model replaced, and comes back under the alias") {
  fake_upstream upstream{answer_all("hi")};
  gateway_process gw{
    make_config(openai_model("cmp", upstream.base_url() + "/v1", both), "cmp")};
  nlohmann::json sent = {{"model", "cmp"},
                         {"prompt", "Once upon a time"},
                         {"suffix", "The end."},
                         {"max_tokens", 16},
                         {"temperature", 0.7},
                         {"top_p", 0.9},
                         {"n", 2},
                         {"stop", {"\n\n", "END"}},
                         {"echo", true},
                         {"logprobs", 2},
                         {"best_of", 3},
                         {"presence_penalty", 0.5},
                         {"frequency_penalty", -0.5},
                         {"logit_bias", {{"50256", -100}}},
                         {"seed", 42},
                         {"user", "user-1234"}};
  auto res = complete(gw, sent);
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type") == "application/json");
  CHECK_FALSE(res.header("x-route-reason").empty());
  auto body = res.json();
  auto expected = completion_answer("upstream-cmp", "hi");
  CHECK(body["model"] == "cmp");
  CHECK(body["object"] == "text_completion");
  CHECK(body["id"] == expected["id"]);
  CHECK(body["choices"] == expected["choices"]);
  CHECK(body["usage"] == expected["usage"]);
  REQUIRE(upstream.requests().size() == 1);
  auto got = upstream.requests().front();
  CHECK(got.method == "POST");
  CHECK(got.target == "/v1/completions");
  CHECK(got.headers["authorization"] == "Bearer " + upstream_key);
  CHECK(got.headers["content-type"] == "application/json");
  auto forwarded = nlohmann::json::parse(got.body);
  CHECK(forwarded["model"] == "upstream-cmp");
  for (auto& [key, value] : sent.items()) {
    if (key == "model")
      continue;
    INFO("field " << key);
    CHECK(forwarded[key] == value);
  }
  CHECK(forwarded.size() == sent.size());
}

TEST_CASE("ollama and vllm models send completions to the completions path "
          "of their base_url") {
  fake_upstream upstream{answer_all()};
  auto models
    = openai_model("olla", upstream.base_url() + "/v1/", both, "ollama")
      + openai_model("vl", upstream.base_url() + "/prefix/v1", both, "vllm");
  gateway_process gw{make_config(models, "olla")};
  for (const auto* alias : {"olla", "vl"}) {
    INFO(alias);
    auto res = complete(gw, nlohmann::json{{"model", alias}, {"prompt", "hi"}});
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == alias);
  }
  auto got = upstream.requests();
  REQUIRE(got.size() == 2);
  CHECK(got[0].target == "/v1/completions");
  CHECK(got[1].target == "/prefix/v1/completions");
  CHECK(nlohmann::json::parse(got[0].body)["model"] == "upstream-olla");
  CHECK(nlohmann::json::parse(got[1].body)["model"] == "upstream-vl");
  for (const auto& r : got)
    CHECK(r.headers.at("authorization") == "Bearer " + upstream_key);
}

TEST_CASE("every prompt shape passes through to the upstream when no pre "
          "plugin is configured") {
  fake_upstream upstream{answer_all()};
  gateway_process gw{
    make_config(openai_model("cmp", upstream.base_url() + "/v1", both), "cmp")};
  std::vector<nlohmann::json> prompts = {
    nlohmann::json(""),
    nlohmann::json::parse(R"(["first", "second"])"),
    nlohmann::json::parse("[15339, 1917, 0]"),
    nlohmann::json::parse("[[15339, 1917], [0]]"),
  };
  for (const auto& prompt : prompts) {
    INFO(prompt.dump());
    auto res
      = complete(gw, nlohmann::json{{"model", "cmp"}, {"prompt", prompt}});
    CHECK(res.status == 200);
  }
  auto got = upstream.requests();
  REQUIRE(got.size() == prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i)
    CHECK(nlohmann::json::parse(got[i].body)["prompt"] == prompts[i]);
}

TEST_CASE("an upstream 5xx on completions falls back along the chain to the "
          "next model that serves completions") {
  fake_upstream failing{answer_with(503, "{}")};
  fake_upstream chat_only{answer_all()};
  fake_upstream good{answer_all("from the backup")};
  auto models = openai_model("cmp1", failing.base_url() + "/v1", both)
                + openai_model("gpt", chat_only.base_url() + "/v1")
                + openai_model("cmp2", good.base_url() + "/v1", both);
  gateway_process gw{make_config(
    models, "cmp1", "", "  fallback_chains:\n    main: [cmp1, gpt, cmp2]\n")};
  auto res = complete(gw, nlohmann::json{{"model", "cmp1"}, {"prompt", "x"}});
  INFO(res.body);
  REQUIRE(res.status == 200);
  auto body = res.json();
  CHECK(body["model"] == "cmp2");
  CHECK(body["choices"][0]["text"] == "from the backup");
  CHECK(chats(failing) == 1);
  CHECK(is_completions(failing.requests().at(0)));
  CHECK(chats(chat_only) == 0);
  auto forwarded = only_post(good);
  CHECK(forwarded["model"] == "upstream-cmp2");
  CHECK(forwarded["prompt"] == "x");
}

TEST_CASE("an upstream 2xx that is not a text completion becomes 502 "
          "upstream_invalid") {
  fake_upstream upstream{answer_all()};
  // Every case is one failure: keep the breaker closed throughout.
  gateway_process gw{make_config(
    openai_model("cmp", upstream.base_url() + "/v1", both), "cmp", "",
    "health:\n  check_interval_seconds: 0\n  unhealthy_threshold: 100\n")};
  for (const std::string& answer :
       {std::string{"<html>gateway page</html>"}, std::string{"[]"},
        std::string{"\"text\""}, std::string{R"({"object":"text_completion"})"},
        std::string{R"({"object":"text_completion","choices":"nope"})"},
        std::string{R"({"object":"text_completion","choices":{"text":"x"}})"},
        std::string{R"({"object":"text_completion","choices":[1,2]})"},
        std::string{R"({"object":"text_completion","choices":["hi"]})"},
        std::string{
          R"({"object":"text_completion","choices":[{"text":"a"},3]})"}}) {
    INFO(answer);
    upstream.set_handler(answer_with(200, answer));
    auto res = complete(gw, nlohmann::json{{"model", "cmp"}, {"prompt", "x"}});
    CHECK(res.status == 502);
    auto e = error_of(res);
    CHECK(e["type"] == "upstream_error");
    CHECK(e["code"] == "upstream_invalid");
  }
  // The same model still serves a good answer.
  upstream.set_handler(answer_all());
  CHECK(complete(gw, nlohmann::json{{"model", "cmp"}, {"prompt", "x"}}).status
        == 200);
}

// -- keys and body checks ----------------------------------------------------

TEST_CASE("completions requests without a valid key get 401") {
  fake_upstream upstream{answer_all()};
  gateway_process gw{
    make_config(openai_model("cmp", upstream.base_url() + "/v1", both), "cmp")};
  auto body = nlohmann::json{{"model", "cmp"}, {"prompt", "x"}}.dump();
  auto res = http_request(gw.port(), "POST", "/v1/completions", body,
                          {{"Content-Type", "application/json"}});
  CHECK(res.status == 401);
  CHECK(error_of(res)["type"] == "authentication_error");
  CHECK(res.header("www-authenticate") == "Bearer");
  res = complete(gw, body, "sk-not-a-key");
  CHECK(res.status == 401);
  CHECK(error_of(res)["code"] == "invalid_api_key");
  CHECK(upstream.requests().empty());
}

TEST_CASE("a key's allowlist is checked before the model's endpoints for "
          "completions") {
  fake_upstream upstream{answer_all()};
  auto models = echo_cmp + openai_model("gpt", upstream.base_url() + "/v1")
                + openai_model("cmp", upstream.base_url() + "/v1", both);
  gateway_process gw{make_config(models, "echo")};
  // gpt serves no completions, cmp does: the key may use neither.
  for (const auto* model : {"gpt", "cmp"}) {
    INFO(model);
    auto res = complete(gw, nlohmann::json{{"model", model}, {"prompt", "x"}},
                        limited_key);
    CHECK(res.status == 403);
    auto e = error_of(res);
    CHECK(e["code"] == "model_not_allowed");
    CHECK(e["type"] == "permission_error");
  }
  auto res = complete(gw, nlohmann::json{{"model", "echo"}, {"prompt", "x"}},
                      limited_key);
  CHECK(res.status == 200);
  CHECK(upstream.requests().empty());
}

TEST_CASE("malformed completions bodies get 400 with the field at fault and "
          "the upstream sees nothing") {
  fake_upstream upstream{answer_all()};
  gateway_process gw{
    make_config(openai_model("cmp", upstream.base_url() + "/v1", both), "cmp")};
  struct bad_case {
    std::string body;
    std::string param; // "" = null
  };
  auto with_prompt = [](const std::string& prompt) {
    return R"({"model":"cmp","prompt":)" + prompt + "}";
  };
  auto with_field = [](const std::string& field, const std::string& value) {
    return R"({"model":"cmp","prompt":"x",")" + field + "\":" + value + "}";
  };
  std::string too_many = "[";
  for (int i = 0; i < 2049; ++i)
    too_many += std::string{i == 0 ? "" : ","} + "\"x\"";
  too_many += "]";
  std::string too_many_lists = "[";
  for (int i = 0; i < 2049; ++i)
    too_many_lists += std::string{i == 0 ? "" : ","} + "[1]";
  too_many_lists += "]";
  std::vector<bad_case> cases = {
    // The body is not an object.
    {"{not json", ""},
    {"[1,2,3]", ""},
    {"\"just a string\"", ""},
    {"42", ""},
    {"null", ""},
    // `model` is neither a string nor null.
    {R"({"model":7,"prompt":"x"})", "model"},
    {R"({"model":["cmp"],"prompt":"x"})", "model"},
    {R"({"model":true,"prompt":"x"})", "model"},
    {R"({"model":{"id":"cmp"},"prompt":"x"})", "model"},
    // `prompt`.
    {R"({"model":"cmp"})", "prompt"},
    {R"({"model":"cmp","suffix":"x"})", "prompt"},
    {with_prompt("[]"), "prompt"},
    {with_prompt(R"(["a",1])"), "prompt"},
    {with_prompt(R"([1,"a"])"), "prompt"},
    {with_prompt("[1,-2]"), "prompt"},
    {with_prompt("[1,2.5]"), "prompt"},
    {with_prompt("[[1,2],[]]"), "prompt"},
    {with_prompt("[[]]"), "prompt"},
    {with_prompt("[[1,2],[3,-1]]"), "prompt"},
    {with_prompt("[[1],2]"), "prompt"},
    {with_prompt(R"([[1],"a"])"), "prompt"},
    {with_prompt(R"(["a",[1]])"), "prompt"},
    {with_prompt(R"([["a"]])"), "prompt"},
    {with_prompt("[null]"), "prompt"},
    {with_prompt(too_many), "prompt"},
    {with_prompt(too_many_lists), "prompt"},
    {with_prompt("5"), "prompt"},
    {with_prompt("true"), "prompt"},
    {with_prompt(R"({"text":"x"})"), "prompt"},
    // `stream`.
    {with_field("stream", "\"yes\""), "stream"},
    {with_field("stream", "1"), "stream"},
    {with_field("stream", "{}"), "stream"},
    // `suffix`.
    {with_field("suffix", "1"), "suffix"},
    {with_field("suffix", R"(["a"])"), "suffix"},
    {with_field("suffix", "true"), "suffix"},
    // Sampling fields.
    {with_field("temperature", "-0.1"), "temperature"},
    {with_field("temperature", "2.5"), "temperature"},
    {with_field("temperature", "\"1\""), "temperature"},
    {with_field("top_p", "1.5"), "top_p"},
    {with_field("top_p", "-0.1"), "top_p"},
    {with_field("max_tokens", "0"), "max_tokens"},
    {with_field("max_tokens", "-1"), "max_tokens"},
    {with_field("max_tokens", "2.5"), "max_tokens"},
    {with_field("max_tokens", "\"10\""), "max_tokens"},
    {with_field("n", "0"), "n"},
    {with_field("n", "129"), "n"},
    {with_field("n", "1.5"), "n"},
  };
  for (const auto& c : cases) {
    INFO(c.body.substr(0, 80));
    auto res = complete(gw, c.body);
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["code"] == "invalid_request");
    if (c.param.empty())
      CHECK(e["param"].is_null());
    else
      CHECK(e["param"] == c.param);
  }
  CHECK(upstream.requests().empty());
  CHECK(gw.running());
}

TEST_CASE("every prompt shape the API allows is accepted, an empty string "
          "and 2048 items too") {
  gateway_process gw{make_config(echo_cmp, "echo")};
  std::string many = "[";
  for (int i = 0; i < 2048; ++i)
    many
      += std::string{i == 0 ? "" : ","} + "\"item " + std::to_string(i) + "\"";
  many += "]";
  struct good_case {
    std::string prompt;
    size_t choices;
  };
  std::vector<good_case> cases = {
    {"\"\"", 1},
    {"\"one text\"", 1},
    {R"(["a","b","c"])", 3},
    {R"(["only one"])", 1},
    {"[15339,1917,0]", 1},
    {"[[15339,1917],[0],[7]]", 3},
    {many, 2048},
  };
  for (const auto& c : cases) {
    INFO(c.prompt.substr(0, 80));
    auto res = complete(gw, R"({"model":"echo","prompt":)" + c.prompt + "}");
    REQUIRE(res.status == 200);
    CHECK(texts_of(res.json(), "echo").size() == c.choices);
  }
  // Optional fields at the edges of their ranges, and null.
  for (const std::string& extra :
       {std::string{R"("stream":null)"}, std::string{R"("stream":false)"},
        std::string{R"("suffix":null)"}, std::string{R"("suffix":"")"},
        std::string{R"("model":null)"}, std::string{R"("temperature":0)"},
        std::string{R"("temperature":2)"}, std::string{R"("top_p":0)"},
        std::string{R"("top_p":1)"}, std::string{R"("max_tokens":1)"},
        std::string{R"("n":1)"}, std::string{R"("n":128)"}}) {
    INFO(extra);
    auto body = std::string{R"({"prompt":"x",)"} + extra + "}";
    if (extra.find("\"model\"") == std::string::npos)
      body = std::string{R"({"model":"echo","prompt":"x",)"} + extra + "}";
    auto res = complete(gw, body);
    CHECK(res.status == 200);
  }
}

// -- routing by endpoint -----------------------------------------------------

TEST_CASE("a model that does not serve completions is refused with "
          "endpoint_unsupported and never called") {
  fake_upstream upstream{answer_all()};
  // gpt and echo have no `endpoints`: they serve chat only.
  gateway_process gw{
    make_config(echo_model + openai_model("gpt", upstream.base_url() + "/v1")
                  + openai_model("vec", upstream.base_url() + "/v1",
                                 "    endpoints: [chat, embeddings]\n"),
                "gpt")};
  for (const auto* model : {"gpt", "echo", "vec"}) {
    INFO(model);
    auto res = complete(gw, nlohmann::json{{"model", model}, {"prompt", "x"}});
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["code"] == "endpoint_unsupported");
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["param"] == "model");
  }
  // A stream request is refused the same way, before any event.
  auto r = stream_once(gw.port(), stream_body("gpt"));
  CHECK(r.head.starts_with("HTTP/1.1 400"));
  CHECK(r.head.find("application/json") != std::string::npos);
  CHECK(nlohmann::json::parse(r.body)["error"]["code"]
        == "endpoint_unsupported");
  CHECK(upstream.requests().empty());
  // Chat still works on the same model.
  CHECK(http_request(gw.port(), "POST", "/v1/chat/completions",
                     chat_body("gpt"), auth_json(full_key))
          .status
        == 200);
}

TEST_CASE("a chat request naming a completions-only model is refused with "
          "endpoint_unsupported") {
  fake_upstream upstream{answer_all()};
  gateway_process gw{make_config(
    echo_model
      + openai_model("cmp", upstream.base_url() + "/v1", completions_only),
    "echo")};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("cmp"), auth_json(full_key));
  CHECK(res.status == 400);
  auto e = error_of(res);
  CHECK(e["code"] == "endpoint_unsupported");
  CHECK(e["param"] == "model");
  res = http_request(gw.port(), "POST", "/v1/embeddings",
                     R"({"model":"cmp","input":"x"})", auth_json(full_key));
  CHECK(res.status == 400);
  CHECK(error_of(res)["code"] == "endpoint_unsupported");
  CHECK(upstream.requests().empty());
  // Completions go through.
  CHECK(complete(gw, nlohmann::json{{"model", "cmp"}, {"prompt", "x"}}).status
        == 200);
  CHECK(only_post(upstream)["model"] == "upstream-cmp");
}

TEST_CASE("a completions request without a model takes the first model of "
          "the default route that serves completions") {
  fake_upstream chat_only{answer_all()};
  fake_upstream texts{answer_all()};
  auto models = openai_model("gpt", chat_only.base_url() + "/v1")
                + openai_model("cmp", texts.base_url() + "/v1", both);
  gateway_process gw{make_config(models, "gpt", "",
                                 "  fallback_chains:\n    main: [gpt, cmp]\n")};
  for (const auto& body :
       {nlohmann::json{{"prompt", "x"}},
        nlohmann::json{{"model", nullptr}, {"prompt", "x"}}}) {
    INFO(body.dump());
    auto res = complete(gw, body);
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == "cmp");
  }
  CHECK(chats(texts) == 2);
  CHECK(chats(chat_only) == 0);
  // A chat without a model still goes to the default model.
  auto chat = http_request(gw.port(), "POST", "/v1/chat/completions",
                           chat_body(""), auth_json(full_key));
  REQUIRE(chat.status == 200);
  CHECK(chat.json()["model"] == "gpt");
}

TEST_CASE("a fallback chain named for completions goes straight to its "
          "member that serves them") {
  fake_upstream chat_only{answer_all()};
  fake_upstream texts{answer_all()};
  auto models = openai_model("gpt", chat_only.base_url() + "/v1")
                + openai_model("cmp", texts.base_url() + "/v1", both);
  gateway_process gw{make_config(
    models, "gpt", "", "  fallback_chains:\n    mixed: [gpt, cmp]\n")};
  auto res = complete(gw, nlohmann::json{{"model", "mixed"}, {"prompt", "x"}});
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "cmp");
  CHECK_FALSE(res.header("x-route-reason").empty());
  CHECK(only_post(texts)["model"] == "upstream-cmp");
  CHECK(chat_only.requests().empty());
  // A chat naming the chain still starts with gpt.
  auto chat = http_request(gw.port(), "POST", "/v1/chat/completions",
                           chat_body("mixed"), auth_json(full_key));
  REQUIRE(chat.status == 200);
  CHECK(chat.json()["model"] == "gpt");
}

// -- streams -----------------------------------------------------------------

TEST_CASE("completions streams pass through event by event with the alias "
          "and one [DONE]") {
  fake_upstream upstream{answer_all("unused", {"Hel", "lo", " there"})};
  for (const auto* provider : {"openai", "vllm", "ollama"}) {
    INFO(provider);
    gateway_process gw{make_config(
      openai_model("m", upstream.base_url() + "/v1", both, provider), "m")};
    auto r = stream_once(gw.port(), stream_body("m"));
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.head.find("Content-Type: text/event-stream") != std::string::npos);
    CHECK(r.head.find("Content-Length") == std::string::npos);
    CHECK(completion_text(r) == "Hello there");
    CHECK(r.count("data: [DONE]") == 1);
    CHECK(r.body.ends_with("data: [DONE]\n\n"));
    CHECK_FALSE(r.has("upstream-model"));
    // Each upstream event arrives as one event, in order, under the alias.
    auto events = json_events(r);
    REQUIRE(events.size() == 4);
    for (const auto& e : events) {
      CHECK(e["object"] == "text_completion");
      CHECK(e["model"] == "m");
      CHECK(e["id"] == "cmpl-1");
      REQUIRE(e["choices"].size() == 1);
    }
    CHECK(events[0]["choices"][0]["text"] == "Hel");
    CHECK(events[1]["choices"][0]["text"] == "lo");
    CHECK(events[2]["choices"][0]["text"] == " there");
    CHECK(events[2]["choices"][0]["finish_reason"].is_null());
    CHECK(events[3]["choices"][0]["finish_reason"] == "stop");
    // The last of the three requests is the one this gateway sent.
    auto got = upstream.requests().back();
    CHECK(got.target == "/v1/completions");
    CHECK(got.headers["authorization"] == "Bearer " + upstream_key);
    auto forwarded = nlohmann::json::parse(got.body);
    CHECK(forwarded["stream"] == true);
    CHECK(forwarded["model"] == "upstream-m");
    CHECK(forwarded["prompt"] == "Say hello");
  }
}

TEST_CASE("stream_options.include_usage passes through to the upstream and "
          "its usage event comes back") {
  fake_upstream upstream{answer_all("unused", {"a", "b"})};
  gateway_process gw{
    make_config(openai_model("m", upstream.base_url() + "/v1", both), "m")};
  auto r = stream_once(gw.port(), stream_body("m", "x", true));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(completion_text(r) == "ab");
  CHECK(r.count("data: [DONE]") == 1);
  auto forwarded = only_post(upstream);
  CHECK(forwarded["stream_options"] == nlohmann::json{{"include_usage", true}});
  auto events = json_events(r);
  REQUIRE_FALSE(events.empty());
  auto last = events.back();
  CHECK(last["model"] == "m");
  CHECK(last["choices"] == nlohmann::json::array());
  CHECK(last["usage"] == stream_usage);
}

TEST_CASE("an upstream failure before the first byte of a completions stream "
          "is a plain HTTP error") {
  fake_upstream upstream{answer_with(503, R"({"error":{"message":"busy"}})")};
  gateway_process gw{
    make_config(openai_model("m", upstream.base_url() + "/v1", both), "m")};
  auto r = stream_once(gw.port(), stream_body("m"));
  CHECK_FALSE(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.starts_with("HTTP/1.1 502"));
  CHECK(r.head.find("application/json") != std::string::npos);
  CHECK(r.head.find("text/event-stream") == std::string::npos);
  CHECK(nlohmann::json::parse(r.body)["error"]["type"] == "upstream_error");
  CHECK_FALSE(r.has("[DONE]"));
}

TEST_CASE("an upstream failure before a completions stream falls back to "
          "the next chain member, which streams") {
  fake_upstream failing{answer_with(503, "{}")};
  fake_upstream good{answer_all("unused", {"from ", "backup"})};
  auto models = openai_model("cmp1", failing.base_url() + "/v1", both)
                + openai_model("cmp2", good.base_url() + "/v1", both);
  gateway_process gw{make_config(
    models, "cmp1", "", "  fallback_chains:\n    main: [cmp1, cmp2]\n")};
  auto r = stream_once(gw.port(), stream_body("cmp1"));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.head.find("text/event-stream") != std::string::npos);
  CHECK(completion_text(r) == "from backup");
  CHECK(r.count("data: [DONE]") == 1);
  for (const auto& e : json_events(r))
    CHECK(e["model"] == "cmp2");
  CHECK(chats(failing) == 1);
  auto forwarded = only_post(good);
  CHECK(forwarded["model"] == "upstream-cmp2");
  CHECK(forwarded["stream"] == true);
}

TEST_CASE("a completions stream that breaks off ends with one error event, "
          "never [DONE]") {
  auto chunks = completions_stream({"par", "tial", "never"});
  chunks.resize(2); // "par", "tial": no finish, no [DONE]
  fake_upstream upstream{stream_with(chunks, false)};
  gateway_process gw{
    make_config(openai_model("m", upstream.base_url() + "/v1", both), "m")};
  auto r = stream_once(gw.port(), stream_body("m"));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(completion_text(r) == "partial");
  CHECK_FALSE(r.has("[DONE]"));
  CHECK_FALSE(r.has("\"finish_reason\":\"stop\""));
  CHECK(r.closed);
  auto events = json_events(r);
  size_t errors = 0;
  for (const auto& e : events)
    errors += e.is_object() && e.contains("error") ? 1 : 0;
  CHECK(errors == 1);
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().contains("error"));
  CHECK(events.back()["error"].is_object());
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 1);
}

TEST_CASE("a client that leaves a completions stream cancels the upstream at "
          "once") {
  // The upstream would stream for 10 s.
  fake_upstream upstream{stream_with(
    completions_stream(std::vector<std::string>(400, "tok"), false, 25ms))};
  gateway_process gw{
    make_config(openai_model("m", upstream.base_url() + "/v1", both), "m")};
  {
    raw_connection conn{gw.port()};
    REQUIRE(conn.send(raw_completions(stream_body("m"))));
    auto first = conn.read_until("\"tok\"", 10s);
    REQUIRE(first.find("\"tok\"") != std::string::npos);
  } // the client closes its connection here
  // A bound, not a latency figure: ASan on 2 busy cores is slow.
  CHECK(upstream.wait_for_cut(5s));
  CHECK(gw.wait_for_output("\"error\":\"client_closed\""));
  auto health = health_of(gw.port());
  CHECK(health["models"]["m"]["failures"] == 0);
  CHECK(health["models"]["m"]["in_flight"] == 0);
}

// -- the echo model ----------------------------------------------------------

TEST_CASE("the echo model answers a completion with the prompt as its text") {
  gateway_process gw{make_config(echo_cmp, "echo")};
  // The texts of the answer to `prompt`; its usage on the way: for a text
  // prompt as many completion tokens as prompt tokens (the text comes back
  // as it went), for token ids at least one of each.
  auto ask = [&](const std::string& prompt, bool text_prompt) {
    auto res = complete(gw, R"({"model":"echo","prompt":)" + prompt + "}");
    INFO(res.body.substr(0, 300));
    REQUIRE(res.status == 200);
    CHECK(res.header("content-type") == "application/json");
    auto j = res.json();
    CHECK(j["id"].is_string());
    CHECK(j["created"].is_number_integer());
    REQUIRE(j["usage"].is_object());
    auto u = j["usage"];
    REQUIRE(u["prompt_tokens"].is_number_integer());
    REQUIRE(u["completion_tokens"].is_number_integer());
    auto prompt_tokens = u["prompt_tokens"].get<int>();
    auto completion_tokens = u["completion_tokens"].get<int>();
    CHECK(u["total_tokens"] == prompt_tokens + completion_tokens);
    if (text_prompt) {
      CHECK(prompt_tokens == completion_tokens);
    } else {
      CHECK(prompt_tokens > 0);
      CHECK(completion_tokens > 0);
    }
    return std::make_pair(texts_of(j, "echo"), prompt_tokens);
  };
  auto [one, one_tokens] = ask("\"hello from the prompt\"", true);
  CHECK(one == std::vector<std::string>{"hello from the prompt"});
  CHECK(one_tokens > 0);
  auto [list, list_tokens] = ask(R"(["first", "second text", "third"])", true);
  CHECK(list == std::vector<std::string>{"first", "second text", "third"});
  CHECK(list_tokens > 0);
  auto [ids, ids_tokens] = ask("[1,2,3]", false);
  CHECK(ids == std::vector<std::string>{"[1,2,3]"});
  auto [id_lists, id_lists_tokens] = ask("[[1,2],[3]]", false);
  CHECK(id_lists == std::vector<std::string>{"[1,2]", "[3]"});
  auto [empty, empty_tokens] = ask("\"\"", true);
  CHECK(empty == std::vector<std::string>{""});
  (void)ids_tokens;
  (void)id_lists_tokens;
  (void)empty_tokens;
}

TEST_CASE("the echo model streams a completion with the same text") {
  gateway_process gw{make_config(echo_cmp, "echo")};
  for (const auto& prompt : {nlohmann::json("stream me back"),
                             nlohmann::json{"one", "two words", "three"}}) {
    INFO(prompt.dump());
    auto whole
      = complete(gw, nlohmann::json{{"model", "echo"}, {"prompt", prompt}});
    REQUIRE(whole.status == 200);
    auto texts = texts_of(whole.json(), "echo");
    auto r = stream_once(gw.port(), stream_body("echo", prompt));
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(r.head.find("text/event-stream") != std::string::npos);
    CHECK(r.head.find("Content-Length") == std::string::npos);
    CHECK(r.count("data: [DONE]") == 1);
    CHECK(r.body.ends_with("data: [DONE]\n\n"));
    // One event per choice, each whole, and nothing else.
    auto events = json_events(r);
    REQUIRE(events.size() == texts.size());
    for (size_t i = 0; i < events.size(); ++i) {
      auto e = events[i];
      CHECK(e["object"] == "text_completion");
      CHECK(e["model"] == "echo");
      REQUIRE(e["choices"].size() == 1);
      CHECK(e["choices"][0]["text"] == texts[i]);
      CHECK(e["choices"][0]["index"] == i);
      CHECK(e["choices"][0]["finish_reason"] == "stop");
      CHECK((!e.contains("usage") || e["usage"].is_null()));
    }
  }
}

TEST_CASE("the echo model's completion stream ends with a usage event when "
          "asked") {
  gateway_process gw{make_config(echo_cmp, "echo")};
  auto r = stream_once(gw.port(), stream_body("echo", "count my tokens", true));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(r.count("data: [DONE]") == 1);
  CHECK(r.body.ends_with("data: [DONE]\n\n"));
  auto events = json_events(r);
  REQUIRE(events.size() == 2);
  CHECK(events[0]["choices"][0]["text"] == "count my tokens");
  CHECK(events[0]["choices"][0]["finish_reason"] == "stop");
  auto last = events[1];
  CHECK(last["object"] == "text_completion");
  CHECK(last["model"] == "echo");
  CHECK(last["choices"] == nlohmann::json::array());
  REQUIRE(last["usage"].is_object());
  CHECK(last["usage"]["prompt_tokens"].get<int>() > 0);
  CHECK(last["usage"]["completion_tokens"] == last["usage"]["prompt_tokens"]);
}

// -- plugins -----------------------------------------------------------------

TEST_CASE("PII in a completions prompt and suffix is redacted before it "
          "reaches the upstream") {
  fake_upstream upstream{answer_all()};
  gateway_process gw{
    make_config(openai_model("cmp", upstream.base_url() + "/v1", both), "cmp",
                "", pii_redact)};
  std::vector<nlohmann::json> sent = {
    {{"model", "cmp"}, {"prompt", "write to jane.roe@example.com"}},
    {{"model", "cmp"},
     {"prompt", {"plain text", "mail jane.roe@example.com now"}}},
    {{"model", "cmp"},
     {"prompt", "Dear"},
     {"suffix", "Regards, jane.roe@example.com"}},
  };
  for (const auto& body : sent) {
    INFO(body.dump());
    REQUIRE(complete(gw, body).status == 200);
  }
  // A stream request is redacted too.
  auto r = stream_once(gw.port(),
                       stream_body("cmp", "stream to jane.roe@example.com"));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  auto got = posts_of(upstream);
  REQUIRE(got.size() == 4);
  CHECK(nlohmann::json::parse(got[0].body)["prompt"]
        == "write to [REDACTED:EMAIL]");
  CHECK(nlohmann::json::parse(got[1].body)["prompt"]
        == nlohmann::json{"plain text", "mail [REDACTED:EMAIL] now"});
  auto third = nlohmann::json::parse(got[2].body);
  CHECK(third["prompt"] == "Dear");
  CHECK(third["suffix"] == "Regards, [REDACTED:EMAIL]");
  CHECK(nlohmann::json::parse(got[3].body)["prompt"]
        == "stream to [REDACTED:EMAIL]");
  for (const auto& req : got) {
    CHECK(is_completions(req));
    CHECK(req.body.find("jane.roe") == std::string::npos);
  }
}

TEST_CASE("a PII-tagged completions request naming an external model is "
          "served inside its chain") {
  fake_upstream external{answer_all()};
  fake_upstream local{answer_all()};
  auto models = openai_model("external", external.base_url() + "/v1", both)
                + openai_model("local", local.base_url() + "/v1", both);
  gateway_process gw{make_config(models, "external", "",
                                 "  fallback_chains:\n"
                                 "    local-only: [local]\n"
                                 "  rules:\n"
                                 "    - match: {tag: pii}\n"
                                 "      route_to_chain: local-only\n"
                                 "middleware:\n"
                                 "  pre_request:\n"
                                 "    - plugin: pii\n"
                                 "      config: {action: tag, tag: pii}\n")};
  std::vector<nlohmann::json> bodies = {
    {{"model", "external"}, {"prompt", "contact jane.roe@example.com"}},
    {{"model", "external"},
     {"prompt", {"plain", "contact jane.roe@example.com"}}},
    {{"model", "external"},
     {"prompt", "plain"},
     {"suffix", "contact jane.roe@example.com"}},
  };
  for (const auto& body : bodies) {
    INFO(body.dump());
    auto res = complete(gw, body);
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == "local");
    CHECK(res.header("x-route-reason").starts_with("tag:pii->"));
  }
  // Streamed, the same.
  auto r = stream_once(gw.port(),
                       stream_body("external", "contact jane.roe@example.com"));
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  for (const auto& e : json_events(r))
    CHECK(e["model"] == "local");
  CHECK(chats(external) == 0);
  CHECK(chats(local) == 4);
  // Without PII the named model serves.
  auto res
    = complete(gw, nlohmann::json{{"model", "external"}, {"prompt", "hello"}});
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "external");
  CHECK(chats(external) == 1);
}

TEST_CASE("token id prompts are refused when a pre plugin is configured") {
  fake_upstream upstream{answer_all()};
  gateway_process gw{
    make_config(openai_model("cmp", upstream.base_url() + "/v1", both), "cmp",
                "", pii_redact)};
  for (const auto* prompt : {"[15339, 1917]", "[[15339], [1917, 0]]"}) {
    for (bool stream : {false, true}) {
      INFO(prompt << (stream ? " streamed" : ""));
      auto res
        = complete(gw, std::string{R"({"model":"cmp","prompt":)"} + prompt
                         + ",\"stream\":" + (stream ? "true" : "false") + "}");
      CHECK(res.status == 400);
      auto e = error_of(res);
      CHECK(e["type"] == "invalid_request_error");
      CHECK(e["code"] == "invalid_request");
      CHECK(e["param"] == "prompt");
    }
  }
  CHECK(upstream.requests().empty());
  // Text still goes through.
  CHECK(
    complete(gw, nlohmann::json{{"model", "cmp"}, {"prompt", "hello"}}).status
    == 200);
  CHECK(chats(upstream) == 1);
}

TEST_CASE("a pii post plugin redacts the text of a completions answer") {
  fake_upstream upstream{answer_all("Reach me at support@vendor.example")};
  gateway_process gw{make_config(
    echo_cmp + openai_model("cmp", upstream.base_url() + "/v1", both), "cmp",
    "",
    "middleware:\n"
    "  post_response:\n"
    "    - plugin: pii\n"
    "      config: {action: redact}\n")};
  auto res = complete(gw, nlohmann::json{{"model", "cmp"}, {"prompt", "x"}});
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(texts_of(res.json(), "cmp")
        == std::vector<std::string>{"Reach me at [REDACTED:EMAIL]"});
  CHECK(res.body.find("support@vendor.example") == std::string::npos);
  // No pre plugin: the echo model gets the address and answers with it; the
  // post stage redacts every choice that holds one, and only those.
  res = complete(
    gw,
    nlohmann::json{{"model", "echo"},
                   {"prompt", {"nothing here", "mail jane.roe@example.com"}}});
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(texts_of(res.json(), "echo")
        == std::vector<std::string>{"nothing here", "mail [REDACTED:EMAIL]"});
  CHECK(res.body.find("jane.roe") == std::string::npos);
}

// -- models list, audit log, metrics, config ---------------------------------

TEST_CASE("/v1/models lists completions among the endpoints a model serves") {
  auto models
    = "  echo:\n    provider: echo\n"
      "    endpoints: [embeddings, completions, chat]\n"
      + openai_model("gpt", "http://127.0.0.1:1/v1")
      + openai_model("cmp", "http://127.0.0.1:1/v1", completions_only)
      + openai_model("mixed", "http://127.0.0.1:1/v1",
                     "    endpoints: [completions, chat]\n", "vllm")
      + openai_model("texts", "http://127.0.0.1:1/v1",
                     "    endpoints: [embeddings, completions]\n", "ollama");
  gateway_process gw{make_config(models, "echo")};
  auto res
    = http_request(gw.port(), "GET", "/v1/models", "", auth_json(full_key));
  REQUIRE(res.status == 200);
  std::map<std::string, nlohmann::json> endpoints;
  auto body = res.json();
  for (const auto& m : body["data"])
    endpoints[m["id"].get<std::string>()] = m["endpoints"];
  REQUIRE(endpoints.size() == 5);
  CHECK(endpoints["echo"]
        == nlohmann::json{"chat", "completions", "embeddings"});
  CHECK(endpoints["gpt"] == nlohmann::json::array({"chat"}));
  CHECK(endpoints["cmp"] == nlohmann::json::array({"completions"}));
  CHECK(endpoints["mixed"] == nlohmann::json{"chat", "completions"});
  CHECK(endpoints["texts"] == nlohmann::json{"completions", "embeddings"});
}

TEST_CASE("the audit log records a completions request under its endpoint") {
  temp_dir dir;
  auto log = dir.path / "audit.jsonl";
  gateway_process gw{
    make_config(echo_cmp, "echo", "", audit_log_middleware(log))};
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("echo"), with_request_id("audit-chat-1"))
            .status
          == 200);
  REQUIRE(http_request(gw.port(), "POST", "/v1/completions",
                       R"({"model":"echo","prompt":"hello"})",
                       with_request_id("audit-cmpl-1"))
            .status
          == 200);
  REQUIRE(gw.stop() == 0);
  auto by_id = audit_records_by_id(log);
  REQUIRE(by_id.count("audit-chat-1") == 1);
  REQUIRE(by_id.count("audit-cmpl-1") == 1);
  CHECK(by_id["audit-chat-1"]["endpoint"] == "chat");
  CHECK(by_id["audit-cmpl-1"]["endpoint"] == "completions");
  CHECK(by_id["audit-cmpl-1"]["status"] == 200);
  CHECK(by_id["audit-cmpl-1"]["model"] == "echo");
}

TEST_CASE("/metrics counts completions requests under their endpoint") {
  gateway_process gw{make_config(echo_cmp, "echo")};
  for (int i = 0; i < 2; ++i)
    REQUIRE(
      complete(gw, nlohmann::json{{"model", "echo"}, {"prompt", "x"}}).status
      == 200);
  auto r = stream_once(gw.port(), stream_body("echo"));
  REQUIRE(r.head.starts_with("HTTP/1.1 200"));
  REQUIRE(r.has("data: [DONE]"));
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("echo"), auth_json(full_key))
            .status
          == 200);
  auto res = http_request(gw.port(), "GET", "/metrics", "",
                          {{"Authorization", "Bearer " + full_key}});
  REQUIRE(res.status == 200);
  auto prom = parse_exposition(res.body);
  CHECK(requests_total(prom, "completions", "200") == 3);
  CHECK(requests_total(prom, "chat", "200") == 1);
}

TEST_CASE("completions config errors stop the start with their YAML path") {
  auto config_with = [](const std::string& model) {
    return write_temp_file(make_config(echo_model + model, "echo"));
  };
  const std::string claude
    = "  claude:\n    provider: anthropic\n    model: \"c\"\n"
      "    api_key: \"k\"\n";
  // An Anthropic model cannot serve completions.
  auto anthropic = config_with(claude + both);
  auto r = run_pw_router({"--check-config", anthropic});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("models.claude.endpoints: the anthropic provider cannot "
                   "serve \"completions\"")
        != std::string::npos);
  r = run_pw_router({"--config", anthropic, "--port", "0"}, {},
                    std::chrono::seconds{10});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("listening") == std::string::npos);
  CHECK(r.err.find("models.claude.endpoints") != std::string::npos);
  // Every other provider may serve completions, alone or with the others.
  auto good = config_with(
    claude + "    endpoints: [chat]\n"
    + "  o:\n    provider: openai\n    model: m\n" + completions_only
    + "  v:\n    provider: vllm\n    model: m\n    base_url: "
      "\"http://127.0.0.1:1/v1\"\n"
      "    endpoints: [chat, completions, embeddings]\n"
    + "  l:\n    provider: ollama\n    model: m\n" + both
    + "  e:\n    provider: echo\n" + both);
  r = run_pw_router({"--check-config", good});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  for (const auto& f : {anthropic, good})
    std::remove(f.c_str());
}
