// POST /v1/embeddings end to end: the real binary, fake upstreams and the
// echo model. Keys and allowlists as for chat, the body checks, routing
// that only picks models serving embeddings (`models.<alias>.endpoints`),
// the upstream call and its failures, the echo model's vectors (float and
// base64), plugins reading `input`, the models list and the audit line.

#include "tests/integration/common.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <vector>

using namespace pw::test;

namespace {

const std::string both = "    endpoints: [chat, embeddings]\n";
const std::string embeddings_only = "    endpoints: [embeddings]\n";
const std::string echo_both = "  echo:\n    provider: echo\n" + both;

/// What the fakes answer to /embeddings, with `model` as received.
nlohmann::json embeddings_answer(const std::string& model) {
  auto j = nlohmann::json::parse(
    R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"","usage":{"prompt_tokens":3,"total_tokens":3}})");
  j["model"] = model;
  return j;
}

/// An OpenAI-compatible upstream: an embeddings list on /embeddings, a
/// chat completion elsewhere.
fake_handler answer_both() {
  return [](const fake_request& req) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    auto model
      = body.is_object() && body.contains("model") && body["model"].is_string()
          ? body["model"].get<std::string>()
          : std::string{"unknown"};
    fake_response r;
    r.body = req.target.ends_with("/embeddings")
               ? embeddings_answer(model).dump()
               : openai_completion(model, "hi from upstream");
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

http_response embed(const gateway_process& gw, const std::string& body,
                    const std::string& key = full_key) {
  return http_request(gw.port(), "POST", "/v1/embeddings", body,
                      auth_json(key));
}

http_response embed(const gateway_process& gw, const nlohmann::json& body,
                    const std::string& key = full_key) {
  return embed(gw, body.dump(), key);
}

/// The body of the only POST `u` received.
nlohmann::json only_post(const fake_upstream& u) {
  std::vector<fake_request> posts;
  for (const auto& r : u.requests())
    if (r.method == "POST")
      posts.push_back(r);
  REQUIRE(posts.size() == 1);
  CHECK(posts[0].target.ends_with("/embeddings"));
  return nlohmann::json::parse(posts[0].body);
}

using vector_t = std::vector<double>;

/// The `embedding` of each item of a float answer, checking the items'
/// shape and order on the way.
std::vector<vector_t> vectors_of(nlohmann::json answer) {
  REQUIRE(answer.is_object());
  CHECK(answer["object"] == "list");
  REQUIRE(answer["data"].is_array());
  std::vector<vector_t> out;
  for (size_t i = 0; i < answer["data"].size(); ++i) {
    auto item = answer["data"][i];
    CHECK(item["object"] == "embedding");
    CHECK(item["index"] == i);
    REQUIRE(item["embedding"].is_array());
    vector_t v;
    for (const auto& x : item["embedding"]) {
      REQUIRE(x.is_number());
      v.push_back(x.get<double>());
    }
    out.push_back(v);
  }
  return out;
}

double sum_of_squares(const vector_t& v) {
  double s = 0;
  for (auto x : v)
    s += x * x;
  return s;
}

std::string base64_decode(const std::string& in) {
  static const std::string alphabet
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=')
      break;
    auto pos = alphabet.find(c);
    REQUIRE(pos != std::string::npos);
    acc = (acc << 6) | static_cast<uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

/// Little-endian float32 values, whatever the host's byte order.
vector_t float32_le(const std::string& bytes) {
  REQUIRE(bytes.size() % 4 == 0);
  vector_t out;
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint32_t u = 0;
    for (size_t b = 0; b < 4; ++b)
      u |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + b]))
           << (8 * b);
    out.push_back(std::bit_cast<float>(u));
  }
  return out;
}

const std::string pii_redact = "middleware:\n"
                               "  pre_request:\n"
                               "    - plugin: pii\n"
                               "      config: {action: redact}\n";

} // namespace

// -- the upstream call -------------------------------------------------------

TEST_CASE("an embeddings request reaches the upstream as sent, with only the "
          "model replaced, and comes back under the alias") {
  fake_upstream upstream{answer_both()};
  gateway_process gw{
    make_config(openai_model("vec", upstream.base_url() + "/v1", both), "vec")};
  nlohmann::json sent = {{"model", "vec"},
                         {"input", {"first text", "second text"}},
                         {"encoding_format", "float"},
                         {"dimensions", 2},
                         {"user", "user-1234"}};
  auto res = embed(gw, sent);
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.header("content-type") == "application/json");
  CHECK_FALSE(res.header("x-route-reason").empty());
  auto body = res.json();
  auto expected = embeddings_answer("upstream-vec");
  CHECK(body["model"] == "vec");
  CHECK(body["object"] == "list");
  CHECK(body["data"] == expected["data"]);
  CHECK(body["usage"] == expected["usage"]);
  REQUIRE(upstream.requests().size() == 1);
  auto got = upstream.requests().front();
  CHECK(got.method == "POST");
  CHECK(got.target == "/v1/embeddings");
  CHECK(got.headers["authorization"] == "Bearer " + upstream_key);
  CHECK(got.headers["content-type"] == "application/json");
  auto forwarded = nlohmann::json::parse(got.body);
  CHECK(forwarded["model"] == "upstream-vec");
  for (auto& [key, value] : sent.items()) {
    if (key == "model")
      continue;
    INFO("field " << key);
    CHECK(forwarded[key] == value);
  }
  CHECK(forwarded.size() == sent.size());
}

TEST_CASE("ollama and vllm models send embeddings to the embeddings path of "
          "their base_url") {
  fake_upstream upstream{answer_both()};
  auto models
    = openai_model("olla", upstream.base_url() + "/v1/", both, "ollama")
      + openai_model("vl", upstream.base_url() + "/prefix/v1", both, "vllm");
  gateway_process gw{make_config(models, "olla")};
  for (const auto* alias : {"olla", "vl"}) {
    INFO(alias);
    auto res = embed(gw, nlohmann::json{{"model", alias}, {"input", "hi"}});
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == alias);
  }
  auto got = upstream.requests();
  REQUIRE(got.size() == 2);
  CHECK(got[0].target == "/v1/embeddings");
  CHECK(got[1].target == "/prefix/v1/embeddings");
  CHECK(nlohmann::json::parse(got[0].body)["model"] == "upstream-olla");
  CHECK(nlohmann::json::parse(got[1].body)["model"] == "upstream-vl");
}

TEST_CASE("token id inputs pass through to the upstream when no pre plugin "
          "is configured") {
  fake_upstream upstream{answer_both()};
  gateway_process gw{
    make_config(openai_model("vec", upstream.base_url() + "/v1", both), "vec")};
  auto ids = nlohmann::json::parse("[15339, 1917, 0]");
  auto lists = nlohmann::json::parse("[[15339, 1917], [0]]");
  for (const auto& input : {ids, lists}) {
    INFO(input.dump());
    auto res = embed(gw, nlohmann::json{{"model", "vec"}, {"input", input}});
    CHECK(res.status == 200);
  }
  auto got = upstream.requests();
  REQUIRE(got.size() == 2);
  CHECK(nlohmann::json::parse(got[0].body)["input"] == ids);
  CHECK(nlohmann::json::parse(got[1].body)["input"] == lists);
}

TEST_CASE("an upstream 5xx on embeddings falls back along the chain to the "
          "next model that serves embeddings") {
  fake_upstream failing{answer_with(503, "{}")};
  fake_upstream chat_only{answer_both()};
  fake_upstream good{answer_both()};
  auto models = openai_model("vec1", failing.base_url() + "/v1", both)
                + openai_model("gpt", chat_only.base_url() + "/v1")
                + openai_model("vec2", good.base_url() + "/v1", both);
  gateway_process gw{make_config(
    models, "vec1", "", "  fallback_chains:\n    main: [vec1, gpt, vec2]\n")};
  auto res = embed(gw, nlohmann::json{{"model", "vec1"}, {"input", "x"}});
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "vec2");
  CHECK(chats(failing) == 1);
  CHECK(chats(chat_only) == 0);
  auto forwarded = only_post(good);
  CHECK(forwarded["model"] == "upstream-vec2");
  CHECK(forwarded["input"] == "x");
}

TEST_CASE("an upstream 2xx that is not an embeddings list becomes 502 "
          "upstream_invalid") {
  fake_upstream upstream{answer_both()};
  // Every case is one failure: keep the breaker closed throughout.
  gateway_process gw{make_config(
    openai_model("vec", upstream.base_url() + "/v1", both), "vec", "",
    "health:\n  check_interval_seconds: 0\n  unhealthy_threshold: 100\n")};
  for (const std::string& answer :
       {std::string{"<html>gateway page</html>"}, std::string{"[]"},
        std::string{R"({"object":"list"})"},
        std::string{R"({"object":"list","data":"nope"})"},
        std::string{R"({"object":"list","data":[0.1,0.2]})"},
        std::string{R"({"object":"list","data":[[0.1,0.2]]})"},
        openai_completion("upstream-vec", "a chat answer")}) {
    INFO(answer);
    upstream.set_handler(answer_with(200, answer));
    auto res = embed(gw, nlohmann::json{{"model", "vec"}, {"input", "x"}});
    CHECK(res.status == 502);
    auto e = error_of(res);
    CHECK(e["type"] == "upstream_error");
    CHECK(e["code"] == "upstream_invalid");
    CHECK(e["message"].get<std::string>().find("malformed")
          != std::string::npos);
  }
  // The same model still serves a good answer.
  upstream.set_handler(answer_both());
  CHECK(embed(gw, nlohmann::json{{"model", "vec"}, {"input", "x"}}).status
        == 200);
}

// -- keys and body checks ----------------------------------------------------

TEST_CASE("embeddings requests without a valid key get 401") {
  fake_upstream upstream{answer_both()};
  gateway_process gw{
    make_config(openai_model("vec", upstream.base_url() + "/v1", both), "vec")};
  auto body = nlohmann::json{{"model", "vec"}, {"input", "x"}}.dump();
  auto res = http_request(gw.port(), "POST", "/v1/embeddings", body,
                          {{"Content-Type", "application/json"}});
  CHECK(res.status == 401);
  CHECK(error_of(res)["type"] == "authentication_error");
  CHECK(res.header("www-authenticate") == "Bearer");
  res = embed(gw, body, "sk-not-a-key");
  CHECK(res.status == 401);
  CHECK(error_of(res)["code"] == "invalid_api_key");
  CHECK(upstream.requests().empty());
}

TEST_CASE("a key's allowlist is checked before the model's endpoints") {
  fake_upstream upstream{answer_both()};
  auto models = echo_both + openai_model("gpt", upstream.base_url() + "/v1")
                + openai_model("vec", upstream.base_url() + "/v1", both);
  gateway_process gw{make_config(models, "echo")};
  // gpt serves no embeddings, vec does: the key may use neither.
  for (const auto* model : {"gpt", "vec"}) {
    INFO(model);
    auto res = embed(gw, nlohmann::json{{"model", model}, {"input", "x"}},
                     limited_key);
    CHECK(res.status == 403);
    auto e = error_of(res);
    CHECK(e["code"] == "model_not_allowed");
    CHECK(e["type"] == "permission_error");
  }
  auto res
    = embed(gw, nlohmann::json{{"model", "echo"}, {"input", "x"}}, limited_key);
  CHECK(res.status == 200);
  CHECK(upstream.requests().empty());
}

TEST_CASE("malformed embeddings bodies get 400 with the field at fault and "
          "the upstream sees nothing") {
  fake_upstream upstream{answer_both()};
  gateway_process gw{
    make_config(openai_model("vec", upstream.base_url() + "/v1", both), "vec")};
  struct bad_case {
    std::string body;
    std::string param; // "" = null; "input*" = starts with "input"
  };
  auto with_input = [](const std::string& input) {
    return R"({"model":"vec","input":)" + input + "}";
  };
  auto with_field = [](const std::string& field, const std::string& value) {
    return R"({"model":"vec","input":"x",")" + field + "\":" + value + "}";
  };
  std::string too_many = "[";
  for (int i = 0; i < 2049; ++i)
    too_many += std::string{i == 0 ? "" : ","} + "\"x\"";
  too_many += "]";
  std::vector<bad_case> cases = {
    // The body is not an object.
    {"{not json", ""},
    {"[1,2,3]", ""},
    {"\"just a string\"", ""},
    {"42", ""},
    // `model` is neither a string nor null.
    {R"({"model":7,"input":"x"})", "model"},
    {R"({"model":["vec"],"input":"x"})", "model"},
    {R"({"model":true,"input":"x"})", "model"},
    // `input`.
    {R"({"model":"vec"})", "input"},
    {with_input("\"\""), "input*"},
    {with_input("[]"), "input*"},
    {with_input(R"(["a",""])"), "input*"},
    {with_input(R"(["a",1])"), "input*"},
    {with_input(R"([1,"a"])"), "input*"},
    {with_input("[1,-2]"), "input*"},
    {with_input("[1,2.5]"), "input*"},
    {with_input("[[1,2],[]]"), "input*"},
    {with_input("[[1,2],[3,-1]]"), "input*"},
    {with_input(R"([[1],"a"])"), "input*"},
    {with_input(R"([["a"]])"), "input*"},
    {with_input(too_many), "input*"},
    {with_input("5"), "input*"},
    {with_input("true"), "input*"},
    {with_input(R"({"text":"x"})"), "input*"},
    // `encoding_format`.
    {with_field("encoding_format", "\"int8\""), "encoding_format"},
    {with_field("encoding_format", "\"\""), "encoding_format"},
    {with_field("encoding_format", "1"), "encoding_format"},
    // `dimensions`.
    {with_field("dimensions", "0"), "dimensions"},
    {with_field("dimensions", "-3"), "dimensions"},
    {with_field("dimensions", "65537"), "dimensions"},
    {with_field("dimensions", "2.5"), "dimensions"},
    {with_field("dimensions", "\"8\""), "dimensions"},
    {with_field("dimensions", "true"), "dimensions"},
  };
  for (const auto& c : cases) {
    INFO(c.body.substr(0, 80));
    auto res = embed(gw, c.body);
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["code"] == "invalid_request");
    if (c.param.empty())
      CHECK(e["param"].is_null());
    else if (c.param == "input*")
      CHECK((e["param"].is_string()
             && e["param"].get<std::string>().starts_with("input")));
    else
      CHECK(e["param"] == c.param);
  }
  CHECK(upstream.requests().empty());
  CHECK(gw.running());
}

TEST_CASE("every input shape the API allows is accepted, up to 2048 items") {
  gateway_process gw{make_config(echo_both, "echo")};
  std::string many = "[";
  for (int i = 0; i < 2048; ++i)
    many
      += std::string{i == 0 ? "" : ","} + "\"item " + std::to_string(i) + "\"";
  many += "]";
  struct good_case {
    std::string input;
    size_t items;
  };
  std::vector<good_case> cases = {
    {"\"one text\"", 1},     {R"(["a","b","c"])", 3},
    {"[15339, 1917, 0]", 1}, {"[[15339, 1917], [0], [7]]", 3},
    {R"(["only one"])", 1},  {many, 2048},
  };
  for (const auto& c : cases) {
    INFO(c.input.substr(0, 80));
    auto res = embed(gw, R"({"model":"echo","input":)" + c.input + "}");
    REQUIRE(res.status == 200);
    auto j = res.json();
    CHECK(j["model"] == "echo");
    CHECK(vectors_of(j).size() == c.items);
  }
}

// -- routing by endpoint -----------------------------------------------------

TEST_CASE("a model that does not serve embeddings is refused with "
          "endpoint_unsupported and never called") {
  fake_upstream upstream{answer_both()};
  // Neither entry has `endpoints`: both serve chat only.
  gateway_process gw{make_config(
    echo_model + openai_model("gpt", upstream.base_url() + "/v1"), "gpt")};
  for (const auto* model : {"gpt", "echo"}) {
    INFO(model);
    auto res = embed(gw, nlohmann::json{{"model", model}, {"input", "x"}});
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["code"] == "endpoint_unsupported");
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["param"] == "model");
  }
  CHECK(upstream.requests().empty());
  // Chat still works on the same model.
  CHECK(http_request(gw.port(), "POST", "/v1/chat/completions",
                     chat_body("gpt"), auth_json(full_key))
          .status
        == 200);
}

TEST_CASE("a chat request naming an embeddings-only model is refused with "
          "endpoint_unsupported") {
  fake_upstream upstream{answer_both()};
  gateway_process gw{make_config(
    echo_model
      + openai_model("vec", upstream.base_url() + "/v1", embeddings_only),
    "echo")};
  auto res = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("vec"), auth_json(full_key));
  CHECK(res.status == 400);
  auto e = error_of(res);
  CHECK(e["code"] == "endpoint_unsupported");
  CHECK(e["type"] == "invalid_request_error");
  CHECK(e["param"] == "model");
  CHECK(upstream.requests().empty());
  // Embeddings go through.
  CHECK(embed(gw, nlohmann::json{{"model", "vec"}, {"input", "x"}}).status
        == 200);
  CHECK(chats(upstream) == 1);
}

TEST_CASE("an embeddings request without a model takes the first model of "
          "the default route that serves embeddings") {
  fake_upstream chat_only{answer_both()};
  fake_upstream vectors{answer_both()};
  auto models = openai_model("gpt", chat_only.base_url() + "/v1")
                + openai_model("vec", vectors.base_url() + "/v1", both);
  gateway_process gw{make_config(models, "gpt", "",
                                 "  fallback_chains:\n    main: [gpt, vec]\n")};
  for (const auto& body :
       {nlohmann::json{{"input", "x"}},
        nlohmann::json{{"model", nullptr}, {"input", "x"}}}) {
    INFO(body.dump());
    auto res = embed(gw, body);
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == "vec");
  }
  CHECK(chats(vectors) == 2);
  CHECK(chats(chat_only) == 0);
  // A chat without a model still goes to the default model.
  auto chat = http_request(gw.port(), "POST", "/v1/chat/completions",
                           chat_body(""), auth_json(full_key));
  REQUIRE(chat.status == 200);
  CHECK(chat.json()["model"] == "gpt");
}

TEST_CASE("an embeddings request without a model is refused when nothing on "
          "the default route serves embeddings") {
  fake_upstream chat_only{answer_both()};
  fake_upstream vectors{answer_both()};
  // vec serves embeddings but is not on the default route.
  auto models = openai_model("gpt", chat_only.base_url() + "/v1")
                + openai_model("gpt2", chat_only.base_url() + "/v1")
                + openai_model("vec", vectors.base_url() + "/v1", both);
  gateway_process gw{make_config(
    models, "gpt", "", "  fallback_chains:\n    main: [gpt, gpt2]\n")};
  auto res = embed(gw, nlohmann::json{{"input", "x"}});
  CHECK(res.status == 400);
  auto e = error_of(res);
  CHECK(e["code"] == "endpoint_unsupported");
  CHECK(e["type"] == "invalid_request_error");
  CHECK(chat_only.requests().empty());
  CHECK(vectors.requests().empty());
}

TEST_CASE("a fallback chain named for embeddings goes straight to its "
          "member that serves them") {
  fake_upstream chat_only{answer_both()};
  fake_upstream vectors{answer_both()};
  auto models = openai_model("gpt", chat_only.base_url() + "/v1")
                + openai_model("vec", vectors.base_url() + "/v1", both);
  gateway_process gw{make_config(
    models, "gpt", "", "  fallback_chains:\n    mixed: [gpt, vec]\n")};
  auto res = embed(gw, nlohmann::json{{"model", "mixed"}, {"input", "x"}});
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "vec");
  CHECK_FALSE(res.header("x-route-reason").empty());
  CHECK(only_post(vectors)["model"] == "upstream-vec");
  CHECK(chat_only.requests().empty());
  // A chat naming the chain still starts with gpt.
  auto chat = http_request(gw.port(), "POST", "/v1/chat/completions",
                           chat_body("mixed"), auth_json(full_key));
  REQUIRE(chat.status == 200);
  CHECK(chat.json()["model"] == "gpt");
}

// -- the echo model ----------------------------------------------------------

TEST_CASE("the echo model embeds each input into a deterministic unit "
          "vector of 16 floats") {
  gateway_process gw{make_config(echo_both, "echo")};
  auto ask = [&](const std::string& input) {
    auto res = embed(gw, R"({"model":"echo","input":)" + input + "}");
    INFO(res.body.substr(0, 200));
    REQUIRE(res.status == 200);
    CHECK(res.header("content-type") == "application/json");
    auto j = res.json();
    CHECK(j["model"] == "echo");
    CHECK(j["usage"]["prompt_tokens"].is_number_integer());
    CHECK(j["usage"]["prompt_tokens"].get<int>() > 0);
    CHECK(j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"]);
    auto vs = vectors_of(j);
    for (const auto& v : vs) {
      CHECK(v.size() == 16);
      CHECK(std::abs(sum_of_squares(v) - 1.0) < 1e-5);
    }
    return vs;
  };
  auto hello = ask("\"hello\"");
  REQUIRE(hello.size() == 1);
  CHECK(ask("\"hello\"") == hello);
  auto list = ask(R"(["hello","world","hello"])");
  REQUIRE(list.size() == 3);
  CHECK(list[0] == hello[0]);
  CHECK(list[2] == hello[0]);
  CHECK(list[1] != hello[0]);
  auto tokens = ask("[[1,2],[3],[1,2]]");
  REQUIRE(tokens.size() == 3);
  CHECK(tokens[0] == tokens[2]);
  CHECK(tokens[0] != tokens[1]);
  auto single_tokens = ask("[1,2]");
  REQUIRE(single_tokens.size() == 1);
  CHECK(single_tokens[0] == tokens[0]);
}

TEST_CASE("the echo model gives vectors of the requested dimensions") {
  gateway_process gw{make_config(echo_both, "echo")};
  for (int dims : {8, 1, 300}) {
    INFO("dimensions " << dims);
    auto res = embed(gw, nlohmann::json{{"model", "echo"},
                                        {"input", {"first", "second"}},
                                        {"dimensions", dims}});
    REQUIRE(res.status == 200);
    auto vs = vectors_of(res.json());
    REQUIRE(vs.size() == 2);
    for (const auto& v : vs) {
      CHECK(v.size() == static_cast<size_t>(dims));
      CHECK(std::abs(sum_of_squares(v) - 1.0) < 1e-5);
    }
    if (dims > 1)
      CHECK(vs[0] != vs[1]);
  }
}

TEST_CASE("the echo model's base64 answer decodes to the float answer") {
  gateway_process gw{make_config(echo_both, "echo")};
  for (const auto& extra :
       {nlohmann::json::object(), nlohmann::json{{"dimensions", 8}}}) {
    INFO(extra.dump());
    nlohmann::json body = {{"model", "echo"}, {"input", {"alpha", "beta"}}};
    body.update(extra);
    auto as_floats = body;
    as_floats["encoding_format"] = "float";
    auto floats = embed(gw, as_floats);
    REQUIRE(floats.status == 200);
    auto expected = vectors_of(floats.json());
    REQUIRE(expected.size() == 2);
    auto as_base64 = body;
    as_base64["encoding_format"] = "base64";
    auto res = embed(gw, as_base64);
    REQUIRE(res.status == 200);
    auto j = res.json();
    CHECK(j["object"] == "list");
    CHECK(j["model"] == "echo");
    REQUIRE(j["data"].size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      auto item = j["data"][i];
      CHECK(item["object"] == "embedding");
      CHECK(item["index"] == i);
      REQUIRE(item["embedding"].is_string());
      auto decoded
        = float32_le(base64_decode(item["embedding"].get<std::string>()));
      REQUIRE(decoded.size() == expected[i].size());
      for (size_t k = 0; k < decoded.size(); ++k)
        CHECK(decoded[k] == Approx(expected[i][k]).margin(1e-6));
    }
  }
}

// -- plugins -----------------------------------------------------------------

TEST_CASE("PII in embeddings input is redacted before it reaches the "
          "upstream") {
  fake_upstream upstream{answer_both()};
  gateway_process gw{
    make_config(openai_model("vec", upstream.base_url() + "/v1", both), "vec",
                "", pii_redact)};
  auto res
    = embed(gw, nlohmann::json{{"model", "vec"},
                               {"input", "write to jane.roe@example.com"}});
  REQUIRE(res.status == 200);
  res = embed(
    gw,
    nlohmann::json{{"model", "vec"},
                   {"input", {"plain text", "mail jane.roe@example.com now"}}});
  REQUIRE(res.status == 200);
  auto got = upstream.requests();
  REQUIRE(got.size() == 2);
  CHECK(nlohmann::json::parse(got[0].body)["input"]
        == "write to [REDACTED:EMAIL]");
  CHECK(nlohmann::json::parse(got[1].body)["input"]
        == nlohmann::json{"plain text", "mail [REDACTED:EMAIL] now"});
  for (const auto& r : got)
    CHECK(r.body.find("jane.roe") == std::string::npos);
}

TEST_CASE("a PII-tagged embeddings request naming an external model is "
          "served inside its chain") {
  fake_upstream external{answer_both()};
  fake_upstream local{answer_both()};
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
  for (const auto& input :
       {nlohmann::json("contact jane.roe@example.com"),
        nlohmann::json{"plain", "contact jane.roe@example.com"}}) {
    INFO(input.dump());
    auto res
      = embed(gw, nlohmann::json{{"model", "external"}, {"input", input}});
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == "local");
    CHECK(res.header("x-route-reason").starts_with("tag:pii->"));
  }
  CHECK(chats(external) == 0);
  CHECK(chats(local) == 2);
  // Without PII the named model serves.
  auto res
    = embed(gw, nlohmann::json{{"model", "external"}, {"input", "hello"}});
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "external");
  CHECK(chats(external) == 1);
}

TEST_CASE("token id inputs are refused when a pre plugin is configured") {
  fake_upstream upstream{answer_both()};
  gateway_process gw{
    make_config(openai_model("vec", upstream.base_url() + "/v1", both), "vec",
                "", pii_redact)};
  for (const auto* input : {"[15339, 1917]", "[[15339], [1917, 0]]"}) {
    INFO(input);
    auto res
      = embed(gw, std::string{R"({"model":"vec","input":)"} + input + "}");
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["code"] == "invalid_request");
    CHECK(e["param"] == "input");
  }
  CHECK(upstream.requests().empty());
  // Text still goes through.
  CHECK(embed(gw, nlohmann::json{{"model", "vec"}, {"input", "hello"}}).status
        == 200);
  CHECK(chats(upstream) == 1);
}

// -- models list, audit log, config ------------------------------------------

TEST_CASE("/v1/models lists the endpoints each model serves") {
  auto models = echo_both + openai_model("gpt", "http://127.0.0.1:1/v1")
                + openai_model("vec", "http://127.0.0.1:1/v1", embeddings_only);
  gateway_process gw{make_config(models, "echo")};
  auto res
    = http_request(gw.port(), "GET", "/v1/models", "", auth_json(full_key));
  REQUIRE(res.status == 200);
  std::map<std::string, nlohmann::json> endpoints;
  auto body = res.json();
  for (const auto& m : body["data"])
    endpoints[m["id"].get<std::string>()] = m["endpoints"];
  REQUIRE(endpoints.size() == 3);
  CHECK(endpoints["echo"] == nlohmann::json{"chat", "embeddings"});
  CHECK(endpoints["gpt"] == nlohmann::json::array({"chat"}));
  CHECK(endpoints["vec"] == nlohmann::json::array({"embeddings"}));
}

TEST_CASE("the audit log records which endpoint a request used") {
  temp_dir dir;
  auto log = dir.path / "audit.jsonl";
  gateway_process gw{
    make_config(echo_both, "echo", "", audit_log_middleware(log))};
  REQUIRE(http_request(gw.port(), "POST", "/v1/chat/completions",
                       chat_body("echo"), with_request_id("audit-chat-1"))
            .status
          == 200);
  REQUIRE(http_request(gw.port(), "POST", "/v1/embeddings",
                       R"({"model":"echo","input":"hello"})",
                       with_request_id("audit-embed-1"))
            .status
          == 200);
  REQUIRE(gw.stop() == 0);
  auto by_id = audit_records_by_id(log);
  REQUIRE(by_id.count("audit-chat-1") == 1);
  REQUIRE(by_id.count("audit-embed-1") == 1);
  CHECK(by_id["audit-chat-1"]["endpoint"] == "chat");
  CHECK(by_id["audit-embed-1"]["endpoint"] == "embeddings");
  CHECK(by_id["audit-embed-1"]["status"] == 200);
  CHECK(by_id["audit-embed-1"]["model"] == "echo");
}

TEST_CASE("endpoints config errors stop the start with their YAML path") {
  auto config_with = [](const std::string& model) {
    return write_temp_file(make_config(echo_model + model, "echo"));
  };
  const std::string claude
    = "  claude:\n    provider: anthropic\n    model: \"c\"\n"
      "    api_key: \"k\"\n";
  // An Anthropic model cannot serve embeddings.
  auto anthropic = config_with(claude + both);
  auto r = run_pw_router({"--check-config", anthropic});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("models.claude.endpoints") != std::string::npos);
  r = run_pw_router({"--config", anthropic, "--port", "0"}, {},
                    std::chrono::seconds{10});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("listening") == std::string::npos);
  CHECK(r.err.find("models.claude.endpoints") != std::string::npos);
  // An endpoint nobody knows.
  auto unknown = config_with("  m:\n    provider: openai\n    model: m\n    "
                             "endpoints: [chat, images]\n");
  r = run_pw_router({"--check-config", unknown});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("models.m.endpoints") != std::string::npos);
  // What is allowed loads.
  auto good = config_with(
    claude + "    endpoints: [chat]\n"
    + "  o:\n    provider: openai\n    model: m\n" + both
    + "  v:\n    provider: vllm\n    model: m\n    base_url: "
      "\"http://127.0.0.1:1/v1\"\n"
    + embeddings_only + "  l:\n    provider: ollama\n    model: m\n" + both
    + "  e:\n    provider: echo\n" + both);
  r = run_pw_router({"--check-config", good});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  for (const auto& f : {anthropic, unknown, good})
    std::remove(f.c_str());
}
