// The SESSION on the deterministic scheduler: a real ROUTER, a mock MODEL,
// and a fake upstream_fn the test answers by hand.

#include "actors/router.hpp"
#include "actors/session.hpp"
#include "core/sha256.hpp"
#include "tests/actors/mock_model.hpp"
#include "tests/support/actor_fixture.hpp"

#include <catch2/catch.hpp>

#include <map>

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
  /// The PLUGINs the SESSION runs (none unless a test sets them).
  plugin_set_ptr plugins;

  explicit session_fixture(std::string provider = "openai") {
    api_key_config k;
    k.name = "client";
    k.key_digest = sha256("sk");
    k.allowed_models = {"*"};
    config->server.api_keys = {k};
    config->models = {test_model("gpt", provider)};
    config->routing.default_model = "gpt";
    std::vector<std::pair<std::string, model_actor>> models{
      {"gpt", spawn(mock_model, config->models[0], model_log)}};
    router_handle
      = spawn(router, gateway_config_ptr{config}, models, router_actor{});
    run();
  }

  session_actor start(std::string body_text) {
    chat_context ctx;
    ctx.request_id = "req-1";
    ctx.deadline = std::chrono::steady_clock::now() + std::chrono::hours{1};
    ctx.client = "client";
    ctx.requested_model
      = nlohmann::json::parse(body_text).value("model", std::string{});
    ctx.body = chat_payload{std::move(body_text)};
    auto reply = [this](http_reply r) { replies.push_back(std::move(r)); };
    auto upstream = [this](upstream_request req, upstream_done done) {
      upstream_calls.push_back(std::move(req));
      answer_upstream = std::move(done);
    };
    auto s = sys.spawn(session, std::move(ctx), gateway_config_ptr{},
                       router_handle, ledger_actor{}, plugins, reply_fn{reply},
                       upstream_fn{upstream}, tracer_actor{});
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
  echo_session_fixture() : session_fixture("echo") {
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
  CHECK(model_log->outcomes[0].lease == 101);
}

TEST_CASE_METHOD(session_fixture, "a cancel from the io thread ends a "
                                  "SESSION that waits for its provider") {
  auto s = start(chat);
  REQUIRE(upstream_calls.size() == 1);
  // The request had about an hour: the lease says so.
  REQUIRE(model_log->ttls.size() == 1);
  CHECK(model_log->ttls[0] > 3'500'000);
  self->send(s, atom::cancel_v, cancel_reason::deadline);
  run();
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::deadline_exceeded);
  // The admission goes back at once, named by its lease.
  REQUIRE(model_log->outcomes.size() == 1);
  CHECK(model_log->outcomes[0].result == call_result::cancelled);
  CHECK(model_log->outcomes[0].lease == 101);
  // The SESSION is gone: a late failure reaches nobody. (A late success
  // would be written by the io thread's fast path into the bridge, which
  // has completed already and drops it.)
  answer(503, "late");
  CHECK(replies.size() == 1);
  CHECK(model_log->outcomes.size() == 1);
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

namespace {

/// Two models in one chain: "gpt" falls back to "claude".
struct fallback_fixture : actor_fixture {
  std::shared_ptr<gateway_config> config = std::make_shared<gateway_config>();
  std::map<std::string, std::shared_ptr<mock_model_log>> logs;
  router_actor router_handle;
  std::vector<std::pair<std::string, model_actor>> models;
  std::vector<upstream_request> calls;
  upstream_done answer_upstream;
  std::vector<http_reply> replies;

  explicit fallback_fixture(uint32_t max_retries = 0) {
    api_key_config k;
    k.name = "client";
    k.key_digest = sha256("sk");
    k.allowed_models = {"*"};
    config->server.api_keys = {k};
    for (const auto* alias : {"gpt", "claude"}) {
      auto m = std::make_shared<model_config>(*test_model(alias));
      m->max_retries = max_retries;
      config->models.push_back(m);
    }
    config->routing.default_model = "gpt";
    config->routing.fallback_chains = {{"main", {"gpt", "claude"}}};
    for (const auto& m : config->models) {
      logs[m->alias] = std::make_shared<mock_model_log>();
      models.emplace_back(m->alias, spawn(mock_model, m, logs[m->alias]));
    }
    router_handle
      = spawn(router, gateway_config_ptr{config}, models, router_actor{});
    run();
  }

  session_actor start() {
    chat_context ctx;
    ctx.request_id = "req-1";
    ctx.client = "client";
    ctx.deadline = std::chrono::steady_clock::now() + std::chrono::hours{1};
    ctx.body = chat_payload{chat};
    ctx.requested_model = "gpt";
    auto reply = [this](http_reply r) { replies.push_back(std::move(r)); };
    auto upstream = [this](upstream_request req, upstream_done done) {
      calls.push_back(std::move(req));
      answer_upstream = std::move(done);
    };
    auto s = sys.spawn(session, std::move(ctx), gateway_config_ptr{},
                       router_handle, ledger_actor{}, plugin_set_ptr{},
                       reply_fn{reply}, upstream_fn{upstream}, tracer_actor{});
    run();
    return s;
  }

  void answer(unsigned status, std::string body = "{}") {
    REQUIRE(answer_upstream);
    upstream_result r;
    r.status = status;
    r.body = std::move(body);
    if (status == 429)
      r.retry_after = "9";
    auto done = std::move(answer_upstream);
    answer_upstream = nullptr;
    done(std::move(r));
    run();
  }

  void refuse_connection() {
    upstream_result r;
    r.failure = upstream_failure::connect;
    r.detail = "connecting failed: Connection refused";
    auto done = std::move(answer_upstream);
    answer_upstream = nullptr;
    done(std::move(r));
    run();
  }

  /// The io thread's answer for an exchange it cut because the client
  /// left.
  void cut_by_client() {
    upstream_result r;
    r.failure = upstream_failure::cancelled;
    r.detail = "the client closed the connection";
    r.client_gone = true;
    auto done = std::move(answer_upstream);
    answer_upstream = nullptr;
    done(std::move(r));
    run();
  }

  std::string target_model(size_t call) {
    return nlohmann::json::parse(calls.at(call).body)["model"];
  }
};

struct retry_fixture : fallback_fixture {
  retry_fixture() : fallback_fixture(1) {
    // nop
  }
};

} // namespace

TEST_CASE_METHOD(fallback_fixture, "a failure before the first byte falls "
                                   "back to the next model of the chain") {
  start();
  REQUIRE(calls.size() == 1);
  CHECK(target_model(0) == "upstream-gpt");
  refuse_connection();
  REQUIRE(calls.size() == 2);
  CHECK(target_model(1) == "upstream-claude");
  CHECK(replies.empty());
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(nlohmann::json::parse(replies[0].body)["model"] == "claude");
  CHECK(logs["gpt"]->outcomes.at(0).result == call_result::failure);
  CHECK(logs["claude"]->outcomes.at(0).result == call_result::success);
}

TEST_CASE_METHOD(fallback_fixture, "a model that refuses admission is "
                                   "skipped during fallback") {
  start();
  logs["claude"]->admit = false;
  answer(503);
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::upstream_failed);
  CHECK(replies[0].error->message.find("claude: skipped") != std::string::npos);
  CHECK(calls.size() == 1);
}

TEST_CASE_METHOD(fallback_fixture, "a first candidate that refuses is "
                                   "passed over, the next one serves") {
  logs["gpt"]->admit = false;
  start();
  CHECK(logs["gpt"]->admits == 1);
  REQUIRE(calls.size() == 1);
  CHECK(target_model(0) == "upstream-claude");
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  // Before the first admission a refusal is not an attempt.
  REQUIRE(replies[0].attempts.size() == 1);
  CHECK(replies[0].attempts[0].model == "claude");
  CHECK(replies[0].attempts[0].outcome == "success");
}

TEST_CASE_METHOD(fallback_fixture, "a first MODEL that is dead when asked "
                                   "for admission is passed over") {
  self->send_exit(models.at(0).second, caf::exit_reason::kill);
  run();
  start();
  REQUIRE(calls.size() == 1);
  CHECK(target_model(0) == "upstream-claude");
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
}

TEST_CASE_METHOD(fallback_fixture, "a fallback MODEL that is dead is skipped "
                                   "as not responding") {
  start();
  self->send_exit(models.at(1).second, caf::exit_reason::kill);
  run();
  answer(503);
  CHECK(calls.size() == 1);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->message
        == "Every model of the route failed: gpt: HTTP 503; claude: skipped "
           "(not responding)");
}

TEST_CASE_METHOD(fallback_fixture, "when no candidate admits, 503 with "
                                   "Retry-After of the soonest breaker") {
  logs["gpt"]->admit = false;
  logs["gpt"]->retry_after_ms = 4'500;
  logs["claude"]->admit = false;
  logs["claude"]->retry_after_ms = 2'100;
  start();
  CHECK(calls.empty());
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::no_model_available);
  CHECK(replies[0].error->retry_after == 3);
  CHECK(logs["gpt"]->admits == 1);
  CHECK(logs["claude"]->admits == 1);
}

TEST_CASE_METHOD(fallback_fixture, "when no candidate admits and none says "
                                   "when, Retry-After is 1") {
  logs["gpt"]->admit = false;
  logs["claude"]->admit = false;
  start();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->code == errc::no_model_available);
  CHECK(replies[0].error->retry_after == 1);
}

TEST_CASE_METHOD(fallback_fixture, "when every model fails the client gets "
                                   "502 with each attempt, no secrets") {
  start();
  answer(503);
  refuse_connection();
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  auto& e = *replies[0].error;
  CHECK(e.code == errc::upstream_failed);
  CHECK(e.message
        == "Every model of the route failed: gpt: HTTP 503; claude: connect: "
           "connecting failed: Connection refused");
}

TEST_CASE_METHOD(fallback_fixture, "a client error is relayed at once, "
                                   "without fallback") {
  start();
  answer(400, R"({"error":{"message":"bad"}})");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->code == errc::upstream_rejected);
  CHECK(calls.size() == 1);
  CHECK(logs["claude"]->admits == 0);
}

TEST_CASE_METHOD(fallback_fixture, "429 falls back, on the last model it is "
                                   "relayed with Retry-After") {
  start();
  answer(429);
  REQUIRE(calls.size() == 2);
  answer(429);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->code == errc::upstream_rate_limited);
  CHECK(replies[0].error->retry_after == 9);
}

TEST_CASE_METHOD(retry_fixture, "max_retries retries the same model after a "
                                "backoff before moving on") {
  start();
  answer(502);
  CHECK(calls.size() == 1); // waiting for the backoff
  sched.advance_time(std::chrono::seconds{1});
  run();
  REQUIRE(calls.size() == 2);
  CHECK(target_model(1) == "upstream-gpt");
  answer(502);
  sched.advance_time(std::chrono::seconds{1});
  run();
  REQUIRE(calls.size() == 3);
  CHECK(target_model(2) == "upstream-claude");
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(logs["gpt"]->outcomes.size() == 2);
}

TEST_CASE_METHOD(retry_fixture, "a 429 is not retried on the same model, "
                                "the request falls back at once") {
  start();
  answer(429);
  REQUIRE(calls.size() == 2); // no backoff, no second try on gpt
  CHECK(target_model(1) == "upstream-claude");
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
}

TEST_CASE_METHOD(fallback_fixture, "an attempt cut by the request deadline "
                                   "is not the model's failure") {
  start();
  upstream_result r;
  r.failure = upstream_failure::timeout;
  r.detail = "timed out waiting for the response";
  r.past_deadline = true;
  auto done = std::move(answer_upstream);
  done(std::move(r));
  run();
  CHECK(calls.size() == 1); // no fallback after the deadline
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->code == errc::deadline_exceeded);
  REQUIRE(logs["gpt"]->outcomes.size() == 1);
  CHECK(logs["gpt"]->outcomes[0].result == call_result::cancelled);
}

TEST_CASE_METHOD(fallback_fixture, "a client that leaves during the call "
                                   "ends the request when the cut exchange "
                                   "returns, with no fallback") {
  auto s = start();
  REQUIRE(calls.size() == 1);
  self->send(s, atom::cancel_v, cancel_reason::client_left);
  run();
  // The exchange in flight was cut by the io thread; its result ends it.
  CHECK(replies.empty());
  CHECK(logs["gpt"]->outcomes.empty());
  cut_by_client();
  CHECK(calls.size() == 1); // nothing more is tried for nobody
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::client_closed);
  REQUIRE(logs["gpt"]->outcomes.size() == 1);
  CHECK(logs["gpt"]->outcomes[0].result == call_result::cancelled);
  CHECK(logs["gpt"]->outcomes[0].error == "client closed");
  REQUIRE(replies[0].attempts.size() == 1);
  CHECK(replies[0].attempts[0].outcome == "cancelled");
}

TEST_CASE_METHOD(fallback_fixture, "a failure that raced the client's leaving "
                                   "starts no fallback") {
  auto s = start();
  self->send(s, atom::cancel_v, cancel_reason::client_left);
  run();
  refuse_connection(); // came back before the cut
  CHECK(calls.size() == 1);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->code == errc::client_closed);
  // The refusal was the model's own failure, and counts as one.
  CHECK(logs["gpt"]->outcomes.at(0).result == call_result::failure);
}

TEST_CASE_METHOD(fallback_fixture, "an answer that came before the client's "
                                   "leaving is still used") {
  auto s = start();
  self->send(s, atom::cancel_v, cancel_reason::client_left);
  run();
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(replies[0].prompt_tokens == 3);
  CHECK(logs["gpt"]->outcomes.at(0).result == call_result::success);
}

TEST_CASE_METHOD(retry_fixture, "a client that leaves during the backoff "
                                "ends the request at once") {
  auto s = start();
  answer(502);
  REQUIRE(calls.size() == 1); // waiting for the backoff
  self->send(s, atom::cancel_v, cancel_reason::client_left);
  run();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error->code == errc::client_closed);
  sched.advance_time(std::chrono::seconds{1});
  run();
  CHECK(calls.size() == 1); // the retry does not run
  CHECK(replies.size() == 1);
}

TEST_CASE_METHOD(fallback_fixture, "a MODEL that dies during the upstream "
                                   "call does not stall the request") {
  start();
  REQUIRE(calls.size() == 1);
  self->send_exit(models.at(0).second, caf::exit_reason::kill);
  run();
  // The call was admitted before the MODEL died: its failure still falls
  // back, and the outcome sent to the dead MODEL is simply dropped.
  answer(503);
  REQUIRE(calls.size() == 2);
  CHECK(target_model(1) == "upstream-claude");
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
}

TEST_CASE("retry backoff doubles from 100 ms, capped, with jitter") {
  for (int i = 0; i < 50; ++i) {
    auto first = retry_backoff(1).count();
    CHECK(first >= 50);
    CHECK(first <= 150);
    auto third = retry_backoff(3).count();
    CHECK(third >= 200);
    CHECK(third <= 600);
    auto late = retry_backoff(30).count();
    CHECK(late >= 1000);
    CHECK(late <= 3000);
  }
}

// -- plugins ------------------------------------------------------------------

namespace {

using verdict_fn = std::function<plugin_verdict(const plugin_request&)>;
using post_fn = std::function<plugin_verdict(const plugin_outcome&)>;

/// A PLUGIN whose pre and post answers the test scripts.
plugin_actor::behavior_type scripted_plugin(plugin_actor::pointer,
                                            verdict_fn pre, post_fn post) {
  return {
    [pre](atom::pre, const plugin_request& r) {
      return pre ? pre(r) : plugin_verdict{};
    },
    [post](atom::post, const plugin_outcome& o) {
      return post ? post(o) : plugin_verdict{};
    },
  };
}

/// A PLUGIN that never answers (its promise is dropped).
// (The unused int: CAF 0.17 dereferences a null argument tuple for spawn
// functions without arguments, which UBSan reports.)
plugin_actor::behavior_type silent_plugin(plugin_actor::pointer self, int) {
  return {
    [self](atom::pre, const plugin_request&) -> caf::result<plugin_verdict> {
      return self->make_response_promise<plugin_verdict>();
    },
    [self](atom::post, const plugin_outcome&) -> caf::result<plugin_verdict> {
      return self->make_response_promise<plugin_verdict>();
    },
  };
}

/// A PLUGIN with a bug: its first message throws, which ends the actor.
plugin_actor::behavior_type crashing_plugin(plugin_actor::pointer, int) {
  return {
    [](atom::pre, const plugin_request&) -> plugin_verdict {
      throw std::runtime_error("plugin bug");
    },
    [](atom::post, const plugin_outcome&) -> plugin_verdict {
      throw std::runtime_error("plugin bug");
    },
  };
}

/// Appends `word` to the first message's content and adds tag `word`.
verdict_fn append(std::string word, std::vector<std::string>* seen) {
  return [word, seen](const plugin_request& r) {
    auto doc = std::make_shared<nlohmann::ordered_json>(*r.body);
    auto& content = (*doc)["messages"][0]["content"];
    seen->push_back(content.get<std::string>());
    content = content.get<std::string>() + " " + word;
    plugin_verdict v;
    v.body = std::move(doc);
    v.tags = {word};
    v.metadata = {{word, true}};
    return v;
  };
}

struct plugin_fixture : session_fixture {
  std::vector<plugin_outcome> recorded;

  plugin_slot slot(std::string name, plugin_actor actor,
                   bool fail_open = false) {
    plugin_slot out;
    out.name = std::move(name);
    out.path = "middleware.x[0]";
    out.actor = std::move(actor);
    out.timeout = std::chrono::milliseconds{1000};
    out.fail_open = fail_open;
    return out;
  }

  plugin_actor scripted(verdict_fn pre, post_fn post = {}) {
    return spawn(scripted_plugin, std::move(pre), std::move(post));
  }

  plugin_actor recorder() {
    return scripted({}, [this](const plugin_outcome& o) {
      recorded.push_back(o);
      return plugin_verdict{};
    });
  }

  void use(std::vector<plugin_slot> pre, std::vector<plugin_slot> post) {
    auto set = std::make_shared<plugin_set>();
    set->pre = std::move(pre);
    set->post = std::move(post);
    plugins = std::move(set);
  }
};

} // namespace

TEST_CASE_METHOD(plugin_fixture, "pre plugins run in order and each sees the "
                                 "changes of the ones before") {
  std::vector<std::string> seen;
  use({slot("a", scripted(append("A", &seen))),
       slot("b", scripted(append("B", &seen)))},
      {slot("audit", recorder())});
  start(chat);
  CHECK(seen == std::vector<std::string>{"hi", "hi A"});
  REQUIRE(upstream_calls.size() == 1);
  auto sent = nlohmann::json::parse(upstream_calls[0].body);
  CHECK(sent["messages"][0]["content"] == "hi A B");
  CHECK(sent["model"] == "upstream-gpt");
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  REQUIRE(recorded.size() == 1);
  const auto& o = recorded[0];
  CHECK(o.status == 200);
  CHECK(o.model == "gpt");
  CHECK(o.request.tags == std::vector<std::string>{"A", "B"});
  CHECK(o.request.metadata["A"] == true);
  CHECK((*o.request.body)["messages"][0]["content"] == "hi A B");
  CHECK(o.request_sha256 == to_hex(sha256(chat)));
  REQUIRE(o.response_body);
  CHECK(nlohmann::json::parse(*o.response_body)["model"] == "gpt");
  REQUIRE(o.attempts.size() == 1);
  CHECK(o.attempts[0].outcome == "ok");
  CHECK(o.route_reason == "model:gpt");
}

TEST_CASE_METHOD(plugin_fixture, "a blocking pre plugin ends the request "
                                 "before any upstream, and is recorded") {
  use({slot("guard", scripted([](const plugin_request&) {
              plugin_verdict v;
              v.block = true;
              v.status = 451;
              v.message = "not here";
              return v;
            })),
       // Never asked: the first block ends the stage.
       slot("never", spawn(crashing_plugin, 0))},
      {slot("audit", recorder())});
  start(chat);
  CHECK(upstream_calls.empty());
  CHECK(model_log->admits == 0);
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::policy_blocked);
  CHECK(replies[0].error->status == 451);
  CHECK(replies[0].error->message == "not here");
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].status == 451);
  CHECK(recorded[0].blocked_by == "guard");
  CHECK(recorded[0].error_code == "policy_blocked");
  // The metrics count the block, and no attempt.
  CHECK(replies[0].blocked_by == "guard");
  CHECK(replies[0].attempts.empty());
}

TEST_CASE_METHOD(plugin_fixture, "a pre plugin that does not answer in time "
                                 "fails closed with 503") {
  use({slot("slow", spawn(silent_plugin, 0))}, {slot("audit", recorder())});
  start(chat);
  CHECK(replies.empty());
  CHECK(upstream_calls.empty());
  sched.trigger_timeouts();
  run();
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::plugin_failed);
  CHECK(replies[0].error->message
        == "The request could not be checked: the slow plugin did not "
           "answer within 1000 ms");
  CHECK(upstream_calls.empty());
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].status == 503);
}

TEST_CASE_METHOD(plugin_fixture, "on_error: continue lets a request pass a "
                                 "silent or crashed plugin") {
  use({slot("slow", spawn(silent_plugin, 0), true),
       slot("broken", spawn(crashing_plugin, 0), true)},
      {});
  start(chat);
  sched.trigger_timeouts();
  run();
  REQUIRE(upstream_calls.size() == 1);
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK_FALSE(replies[0].error);
}

TEST_CASE_METHOD(plugin_fixture, "a crashed pre plugin fails the request "
                                 "closed, never a hang") {
  use({slot("broken", spawn(crashing_plugin, 0))}, {});
  start(chat);
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::plugin_failed);
  CHECK(replies[0].error->message
        == "The request could not be checked: the broken plugin is not "
           "running");
  CHECK(upstream_calls.empty());
}

TEST_CASE_METHOD(plugin_fixture, "a plugin that is not running fails "
                                 "closed") {
  use({slot("gone", plugin_actor{})}, {});
  start(chat);
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::plugin_failed);
}

TEST_CASE_METHOD(plugin_fixture, "post plugins may change or block a whole "
                                 "answer, later ones see the result") {
  auto rewrite = scripted({}, [](const plugin_outcome& o) {
    auto doc = nlohmann::ordered_json::parse(*o.response_body);
    doc["choices"][0]["message"]["content"] = "changed";
    plugin_verdict v;
    v.body = std::make_shared<const nlohmann::ordered_json>(std::move(doc));
    v.tags = {"rewritten"};
    return v;
  });
  use({}, {slot("rewrite", rewrite), slot("audit", recorder())});
  start(chat);
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  CHECK(
    nlohmann::json::parse(replies[0].body)["choices"][0]["message"]["content"]
    == "changed");
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].request.tags == std::vector<std::string>{"rewritten"});
  CHECK(nlohmann::json::parse(
          *recorded[0].response_body)["choices"][0]["message"]["content"]
        == "changed");
}

TEST_CASE_METHOD(plugin_fixture, "a post plugin's block replaces the answer "
                                 "with its error") {
  auto guard = scripted({}, [](const plugin_outcome&) {
    plugin_verdict v;
    v.block = true;
    v.status = 403;
    v.message = "output policy";
    return v;
  });
  use({}, {slot("guard", guard), slot("audit", recorder())});
  start(chat);
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::policy_blocked);
  CHECK(replies[0].error->message == "output policy");
  // The metrics still see the model's answer, and the block.
  CHECK(replies[0].blocked_by == "guard");
  REQUIRE(replies[0].attempts.size() == 1);
  CHECK(replies[0].attempts[0].outcome == "success");
  CHECK_FALSE(replies[0].model.empty());
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].status == 403);
  CHECK(recorded[0].response_body == nullptr);
  // The model answered well: its outcome is a success all the same.
  REQUIRE(model_log->outcomes.size() == 1);
  CHECK(model_log->outcomes[0].result == call_result::success);
}

TEST_CASE_METHOD(plugin_fixture, "a failed post plugin (the audit log) means "
                                 "the answer is not served") {
  use({}, {slot("audit", spawn(crashing_plugin, 0))});
  start(chat);
  answer(200, completion);
  REQUIRE(replies.size() == 1);
  REQUIRE(replies[0].error);
  CHECK(replies[0].error->code == errc::plugin_failed);
  CHECK(replies[0].error->message
        == "The request could not be completed: the audit plugin is not "
           "running");
}

TEST_CASE_METHOD(plugin_fixture, "post plugins see upstream failures and "
                                 "every attempt") {
  use({}, {slot("audit", recorder())});
  start(chat);
  answer(503, "{}");
  REQUIRE(replies.size() == 1);
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].status == 502);
  CHECK(recorded[0].error_code == "upstream_failed");
  REQUIRE(recorded[0].attempts.size() == 1);
  CHECK(recorded[0].attempts[0].model == "gpt");
  CHECK(recorded[0].attempts[0].outcome == "HTTP 503");
}
