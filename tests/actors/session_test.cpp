// The SESSION on the deterministic scheduler: a real ROUTER, a mock MODEL,
// and a fake upstream_fn the test answers by hand.

#include "actors/router.hpp"
#include "actors/session.hpp"
#include "core/sha256.hpp"
#include "tests/actors/mock_model.hpp"
#include "tests/support/actor_fixture.hpp"

#include <catch2/catch.hpp>

using namespace pw;
using namespace pw::actors;
using namespace pw::test;

namespace {

struct session_fixture : actor_fixture {
  std::shared_ptr<gateway_config> config = std::make_shared<gateway_config>();
  std::shared_ptr<mock_model_log> model_log
    = std::make_shared<mock_model_log>();
  router_actor router_handle;
  /// What the fake upstream_fn received, and how to answer it.
  std::vector<upstream_request> upstream_calls;
  upstream_done answer_upstream;
  /// What the SESSION answered through reply_fn.
  std::vector<http_reply> replies;

  explicit session_fixture(provider_kind provider = provider_kind::openai) {
    api_key_config k;
    k.name = "client";
    k.key_digest = sha256("sk");
    k.allowed_models = {"*"};
    config->server.api_keys = {k};
    config->models = {test_model("gpt", provider)};
    config->routing.default_model = "gpt";
    std::vector<std::pair<std::string, model_actor>> models{
      {"gpt", spawn(mock_model, config->models[0], model_log)}};
    router_handle = spawn(router, gateway_config_ptr{config}, models);
    run();
  }

  session_actor start(std::string body_text) {
    chat_context ctx;
    ctx.request_id = "req-1";
    ctx.client = "client";
    ctx.requested_model
      = nlohmann::json::parse(body_text).value("model", std::string{});
    ctx.body = chat_payload{std::move(body_text)};
    auto reply = [this](http_reply r) { replies.push_back(std::move(r)); };
    auto upstream = [this](upstream_request req, upstream_done done) {
      upstream_calls.push_back(std::move(req));
      answer_upstream = std::move(done);
    };
    auto s = sys.spawn(session, std::move(ctx), router_handle, reply_fn{reply},
                       upstream_fn{upstream});
    run();
    return s;
  }

  void answer(unsigned status, std::string body) {
    REQUIRE(answer_upstream);
    upstream_result r;
    r.status = status;
    r.body = std::move(body);
    r.elapsed = std::chrono::microseconds{1500};
    answer_upstream(std::move(r));
    run();
  }
};

const std::string chat
  = R"({"model":"gpt","messages":[{"role":"user","content":"hi"}]})";

const std::string completion
  = R"({"id":"c1","object":"chat.completion","model":"upstream-gpt","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})";

struct echo_session_fixture : session_fixture {
  echo_session_fixture() : session_fixture(provider_kind::echo) {
    // nop
  }
};

} // namespace

TEST_CASE_METHOD(session_fixture, "happy path: resolve, call, report, reply") {
  start(chat);
  REQUIRE(upstream_calls.size() == 1);
  CHECK(upstream_calls[0].path == "/v1/chat/completions");
  CHECK(nlohmann::json::parse(upstream_calls[0].body)["model"]
        == "upstream-gpt");
  CHECK(replies.empty());
  CHECK(model_log->admits == 1);
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  auto& r = replies[0];
  CHECK(r.status == 200);
  CHECK_FALSE(r.error);
  auto body = nlohmann::json::parse(r.body);
  CHECK(body["model"] == "gpt");
  CHECK(body["choices"][0]["message"]["content"] == "hello");
  CHECK(r.model == "gpt");
  CHECK(r.upstream_status == 200);
  CHECK(r.prompt_tokens == 3);
  REQUIRE(model_log->outcomes.size() == 1);
  CHECK(model_log->outcomes[0].result == call_result::success);
  CHECK(model_log->outcomes[0].latency_us == 1500);
}

TEST_CASE_METHOD(session_fixture, "an upstream 5xx is a 502 and a model "
                                  "failure") {
  start(chat);
  answer(503, "down");
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::upstream_failed);
  REQUIRE(model_log->outcomes.size() == 1);
  CHECK(model_log->outcomes[0].result == call_result::failure);
  CHECK(model_log->outcomes[0].error == "HTTP 503");
}

TEST_CASE_METHOD(session_fixture, "an upstream 4xx is relayed and does not "
                                  "count against the model") {
  start(chat);
  answer(400, R"({"error":{"message":"bad"}})");
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::upstream_rejected);
  CHECK(replies[0].error->status == 400);
  CHECK(model_log->outcomes.at(0).result == call_result::rejected);
}

TEST_CASE_METHOD(session_fixture, "a routing error answers without calling "
                                  "anything") {
  start(R"({"model":"nope","messages":[{"role":"user","content":"x"}]})");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->code == errc::model_not_found);
  CHECK(upstream_calls.empty());
  CHECK(model_log->admits == 0);
}

TEST_CASE_METHOD(session_fixture, "a session killed mid-call still gives the "
                                  "model its slot back") {
  auto s = start(chat);
  REQUIRE(upstream_calls.size() == 1);
  self->send_exit(s, caf::exit_reason::kill);
  run();
  REQUIRE(model_log->outcomes.size() == 1);
  CHECK(model_log->outcomes[0].result == call_result::cancelled);
  // reply_fn was dropped unanswered; the bridge turns that into a 500.
  CHECK(replies.empty());
}

TEST_CASE_METHOD(echo_session_fixture, "the echo model answers without an "
                                       "upstream call") {
  start(chat);
  CHECK(upstream_calls.empty());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(
    nlohmann::json::parse(replies[0].body)["choices"][0]["message"]["content"]
    == "hi");
  CHECK(model_log->outcomes.at(0).result == call_result::success);
}
