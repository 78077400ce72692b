// Usage governance through the real binary: per-key and per-team limits
// that hold under concurrent load (streams and whole answers mixed), 429s
// shaped like OpenAI's with their headers, GET /v1/usage, and counters that
// survive a SIGHUP and, through the journal, a restart.

#include "tests/integration/common.hpp"
#include "tests/support/service_process.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

using namespace pw::test;
using namespace std::chrono_literals;
using pw::test::messages_api::asks_stream;
using pw::test::messages_api::mentions;

namespace {

/// What the fake upstream reports for every answer.
constexpr uint64_t prompt_used = 12;
constexpr uint64_t completion_used = 5;
constexpr uint64_t used_per_request = prompt_used + completion_used;

const std::string team_key = "sk-test-team-key-3b9e17";

/// An OpenAI-compatible upstream that reports usage: in the answer, and in
/// a stream's last chunk when `stream_options.include_usage` asks; `cached`
/// of the prompt tokens as read from its prompt cache. Each answer takes
/// `delay`, so concurrent requests overlap.
fake_handler metered(std::chrono::milliseconds delay = 0ms,
                     uint64_t cached = 0) {
  return [delay, cached](const fake_request& req) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    fake_response r;
    r.delay = delay;
    nlohmann::json usage = {{"prompt_tokens", prompt_used},
                            {"completion_tokens", completion_used},
                            {"total_tokens", used_per_request}};
    if (cached > 0)
      usage["prompt_tokens_details"] = {{"cached_tokens", cached}};
    if (!asks_stream(body)) {
      auto answer = nlohmann::json::parse(
        openai_completion("upstream-m", "metered answer"));
      answer["usage"] = usage;
      r.body = answer.dump();
      return r;
    }
    r.content_type = "text/event-stream";
    r.chunks = openai_stream({"metered ", "answer"});
    if (body.contains("stream_options")
        && body["stream_options"].value("include_usage", false)) {
      nlohmann::json last = {{"id", "chatcmpl-fake-stream"},
                             {"object", "chat.completion.chunk"},
                             {"created", 1700000000},
                             {"model", "upstream-m"},
                             {"choices", nlohmann::json::array()},
                             {"usage", usage}};
      // Before [DONE], as OpenAI sends it.
      r.chunks.insert(r.chunks.end() - 1, {0ms, sse(last.dump())});
    }
    return r;
  };
}

/// A config with `full` (limits `full_limits`, team `team`), `teammate`
/// (no limits of its own, team `team`) and `limited` (ungoverned, admin); one
/// model `m` on `url` with `model_more`; `extra` at the top level.
std::string governed_config(const std::string& url,
                            const std::string& full_limits,
                            const std::string& team_limits,
                            const std::string& extra = "",
                            const std::string& model_more = "") {
  return "server:\n"
         "  api_keys:\n"
         "    - key: \""
         + full_key
         + "\"\n"
           "      name: full\n"
           "      team: team\n"
           "      allowed_models: [\"*\"]\n"
           "      limits: "
         + full_limits
         + "\n"
           "    - key: \""
         + team_key
         + "\"\n"
           "      name: teammate\n"
           "      team: team\n"
           "      allowed_models: [\"*\"]\n"
           "    - key: \""
         + limited_key
         + "\"\n"
           "      name: limited\n"
           "      admin: true\n"
           "      allowed_models: [\"*\"]\n"
           "teams:\n"
           "  team:\n"
           "    limits: "
         + team_limits + "\nmodels:\n" + openai_model("m", url, model_more)
         + "routing:\n  default_model: m\n"
           "health:\n  check_interval_seconds: 0\n"
         + extra;
}

/// A chat body for `m` with a small max_tokens, streamed or not.
std::string small_body(bool stream) {
  nlohmann::json body = {{"model", "m"},
                         {"max_tokens", 5},
                         {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  if (stream)
    body["stream"] = true;
  return body.dump();
}

/// The reservation of small_body(stream): the gateway's estimate (one
/// token per 3 bytes of body) plus max_tokens.
uint64_t worst_of(bool stream) {
  return (small_body(stream).size() + 2) / 3 + 5;
}

http_response chat_as(const gateway_process& gw, const std::string& key,
                      bool stream = false) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      small_body(stream), auth_json(key));
}

/// GET /v1/usage as `key`: scope "key"/"team" and name -> the entry, once
/// no request of the scopes it sees is in flight. A client has its answer
/// before its SESSION ends and settles, so a read right after the answer
/// may still see the reservation; the read is repeated until the
/// settlement is in (at most 2 s), and the last read is returned.
std::map<std::string, nlohmann::json> usage_of(const gateway_process& gw,
                                               const std::string& key) {
  std::map<std::string, nlohmann::json> out;
  for (int attempt = 0; attempt < 400; ++attempt) {
    auto res = http_request(gw.port(), "GET", "/v1/usage", "", auth_json(key));
    REQUIRE(res.status == 200);
    out.clear();
    bool settled = true;
    auto doc = res.json();
    for (const auto& s : doc["scopes"]) {
      settled = settled && s["used"]["in_flight"] == 0;
      out[s["scope"].get<std::string>() + ":" + s["name"].get<std::string>()]
        = s;
    }
    if (settled)
      break;
    std::this_thread::sleep_for(5ms);
  }
  return out;
}

/// Checks a refusal is OpenAI's 429 with Retry-After and the rate headers.
void check_refusal(const http_response& res, const std::string& code) {
  CHECK(res.status == 429);
  CHECK(error_of(res)["code"] == code);
  CHECK(!res.header("retry-after").empty());
  CHECK(!res.header("x-ratelimit-limit-requests").empty());
  CHECK(!res.header("x-ratelimit-remaining-requests").empty());
  CHECK(!res.header("x-ratelimit-reset-requests").empty());
  CHECK(!res.header("x-ratelimit-limit-tokens").empty());
  CHECK(!res.header("x-ratelimit-remaining-tokens").empty());
  CHECK(!res.header("x-ratelimit-reset-tokens").empty());
}

/// What a budget run saw.
struct budget_run {
  uint64_t ok = 0;
  uint64_t refused = 0;
  uint64_t other = 0;
  /// Streams whose body carried a usage chunk the client did not ask for.
  uint64_t streamed_usage = 0;
  /// The answer that ended each client's loop.
  std::vector<http_response> last;
};

/// 32 clients, each on gateway `i % gateways.size()`, streaming when
/// `stream(i)`, send until their first refusal (at most 500 each).
budget_run spend_budget(const std::vector<const gateway_process*>& gateways,
                        const std::function<bool(int)>& stream) {
  std::atomic<uint64_t> ok{0}, refused{0}, other{0}, streamed_usage{0};
  budget_run out;
  out.last.resize(32);
  std::vector<std::thread> clients;
  for (int i = 0; i < 32; ++i)
    clients.emplace_back([&, i] {
      const auto& gw = *gateways[static_cast<size_t>(i) % gateways.size()];
      bool streamed = stream(i);
      // Bounded: the quota ends every client's loop long before this.
      for (int n = 0; n < 500; ++n) {
        auto res = chat_as(gw, full_key, streamed);
        if (res.status == 200) {
          ++ok;
          // The usage the gateway asked for itself is not relayed.
          if (streamed && res.body.find("\"usage\"") != std::string::npos)
            ++streamed_usage;
          continue;
        }
        ++(res.status == 429 ? refused : other);
        out.last[static_cast<size_t>(i)] = res;
        break;
      }
    });
  for (auto& t : clients)
    t.join();
  out.ok = ok;
  out.refused = refused;
  out.other = other;
  out.streamed_usage = streamed_usage;
  return out;
}

/// The checks of a budget run against `limit` daily tokens: every client
/// ended on a 429 with the headers; the settled usage is within the limit,
/// and refusals came only once settled usage plus the reservations still
/// open passed it. Those are at most two per client: its request in flight,
/// and the one it was just answered, whose settlement may still be on its
/// way (the io thread answers before the SESSION ends and settles).
/// Returns the settled tokens.
uint64_t check_budget_run(const budget_run& run, uint64_t limit) {
  CHECK(run.other == 0);
  CHECK(run.refused == 32);
  CHECK(run.streamed_usage == 0);
  for (const auto& r : run.last)
    check_refusal(r, "insufficient_quota");
  auto settled = run.ok * used_per_request;
  CHECK(settled <= limit);
  CHECK(settled + 2 * 32 * std::max(worst_of(true), worst_of(false)) > limit);
  INFO(run.ok << " answered");
  return settled;
}

} // namespace

TEST_CASE("32 concurrent clients, streams and whole answers mixed, never take "
          "a key past its daily tokens, and every refusal is a 429 with "
          "OpenAI's headers",
          "[integration][governance]") {
  fake_upstream up{metered(20ms)};
  constexpr uint64_t limit = 3000;
  gateway_process gw{governed_config(
    up.base_url(),
    "{tokens_per_day: " + std::to_string(limit)
      + ", requests_per_minute: 1000000, tokens_per_minute: 1000000000}",
    "{tokens_per_month: 1000000000}")};
  auto settled = check_budget_run(
    spend_budget({&gw}, [](int i) { return i % 2 == 1; }), limit);
  auto usage = usage_of(gw, full_key);
  CHECK(usage["key:full"]["used"]["tokens_today"] == settled);
  CHECK(usage["key:full"]["used"]["in_flight"] == 0);
  CHECK(usage["team:team"]["used"]["tokens_this_month"] == settled);
  CHECK(usage["key:full"]["remaining"]["tokens_per_day"] == limit - settled);
}

TEST_CASE("a key over max_concurrent gets 429 rate_limit_exceeded at once and "
          "is served again when a request ends",
          "[integration][governance]") {
  fake_upstream up{metered(400ms)};
  gateway_process gw{governed_config(up.base_url(), "{max_concurrent: 2}",
                                     "{tokens_per_day: 1000000}")};
  std::vector<std::thread> slow;
  std::vector<unsigned> statuses(2);
  for (int i = 0; i < 2; ++i)
    slow.emplace_back([&, i] { statuses[i] = chat_as(gw, full_key).status; });
  REQUIRE(up.wait_for_requests(2));
  auto third = chat_as(gw, full_key);
  CHECK(third.status == 429);
  CHECK(error_of(third)["code"] == "rate_limit_exceeded");
  CHECK(mentions(error_of(third), "at most 2 at once"));
  CHECK(third.header("retry-after") == "1");
  for (auto& t : slow)
    t.join();
  CHECK(statuses == std::vector<unsigned>{200, 200});
  CHECK(chat_as(gw, full_key).status == 200);
  // The refused request never reached the upstream.
  CHECK(chats(up) == 3);
}

TEST_CASE(
  "a team's limit binds every key of the team, and a key without limits "
  "of its own or a team is not governed",
  "[integration][governance]") {
  fake_upstream up{metered()};
  // Room for three requests: two settled plus a third one's reservation.
  auto room = 2 * used_per_request + worst_of(false);
  gateway_process gw{
    governed_config(up.base_url(), "{max_concurrent: 100}",
                    "{tokens_per_day: " + std::to_string(room) + "}")};
  CHECK(chat_as(gw, full_key).status == 200);
  CHECK(chat_as(gw, team_key).status == 200);
  CHECK(chat_as(gw, team_key).status == 200);
  auto fourth = chat_as(gw, full_key);
  CHECK(fourth.status == 429);
  CHECK(error_of(fourth)["code"] == "insufficient_quota");
  CHECK(mentions(error_of(fourth), "team 'team'"));
  CHECK(!fourth.header("retry-after").empty());
  CHECK(chats(up) == 3);
  // The ungoverned key: no limit, no headers.
  auto free = chat_as(gw, limited_key);
  CHECK(free.status == 200);
  CHECK(free.header("x-ratelimit-limit-requests").empty());
  // A key sees its own scopes, not the others'.
  auto seen = usage_of(gw, team_key);
  CHECK(seen.count("team:team") == 1);
  CHECK(seen.count("key:full") == 0);
  CHECK(seen["team:team"]["used"]["tokens_today"] == 3 * used_per_request);
  // The admin key sees every scope, in /v1/usage and in /metrics.
  auto all = usage_of(gw, limited_key);
  CHECK(all.count("key:full") == 1);
  CHECK(all.count("team:team") == 1);
  auto scrape
    = http_request(gw.port(), "GET", "/metrics", "", auth_json(limited_key));
  REQUIRE(scrape.status == 200);
  auto metrics = parse_exposition(scrape.body);
  CHECK(metrics.value("pw_router_usage_reservations_total",
                      {{"outcome", "reserved"}})
        == 3);
  CHECK(metrics.value("pw_router_usage_reservations_total",
                      {{"outcome", "refused"}})
        == 1);
  CHECK(metrics.value("pw_router_usage_settled_tokens_total", {})
        == 3 * used_per_request);
  CHECK(metrics.value("pw_router_usage_tokens_today",
                      {{"scope", "team"}, {"name", "team"}})
        == 3 * used_per_request);
  CHECK(
    metrics.value("pw_router_usage_state_available", {{"backend", "embedded"}})
    == 1);
  auto ready = http_request(gw.port(), "GET", "/health/ready").json();
  CHECK(ready["usage_state"]["backend"] == "embedded");
  CHECK(ready["usage_state"]["available"] == true);
}

TEST_CASE("a monthly budget in USD is spent at the model's prices and "
          "refused with insufficient_quota",
          "[integration][governance]") {
  fake_upstream up{metered()};
  // 1000 USD per million tokens: 17 tokens cost 0.017 USD.
  gateway_process gw{
    governed_config(up.base_url(),
                    "{budget_usd_per_month: 0.1, requests_per_minute: 1000000, "
                    "tokens_per_minute: 1000000000}",
                    "{tokens_per_day: 100000000}", "",
                    "    pricing: {input: 1000, output: 1000}\n")};
  int ok = 0;
  http_response last;
  for (int i = 0; i < 20; ++i) {
    last = chat_as(gw, full_key, i % 2 == 0);
    if (last.status != 200)
      break;
    ++ok;
  }
  check_refusal(last, "insufficient_quota");
  CHECK(mentions(error_of(last), "monthly budget"));
  CHECK(ok >= 1);
  auto cost = usage_of(gw, full_key)["key:full"]["used"]["cost_usd_this_month"]
                .get<double>();
  CHECK(cost == Approx(0.017 * ok));
  CHECK(cost <= 0.1);
}

TEST_CASE("prompt tokens the provider read from its cache are priced at "
          "cached_input, streamed or not",
          "[integration][governance]") {
  // 8 of the 12 prompt tokens cached: 4 x 1000 + 8 x 100 + 5 x 2000 USD
  // per million tokens = 0.0148 USD per request.
  fake_upstream up{metered(0ms, 8)};
  gateway_process gw{governed_config(
    up.base_url(), "{budget_usd_per_month: 100}", "{max_concurrent: 100}", "",
    "    pricing: {input: 1000, cached_input: 100, output: 2000}\n")};
  REQUIRE(chat_as(gw, full_key).status == 200);
  auto cost = [&] {
    return usage_of(gw, full_key)["key:full"]["used"]["cost_usd_this_month"]
      .get<double>();
  };
  CHECK(cost() == Approx(0.0148));
  REQUIRE(chat_as(gw, full_key, true).status == 200);
  CHECK(cost() == Approx(2 * 0.0148));
}

TEST_CASE("usage counters survive a SIGHUP, and the day's and month's totals "
          "a restart through the journal",
          "[integration][governance]") {
  fake_upstream up{metered()};
  auto dir = std::filesystem::temp_directory_path()
             / ("pw-usage-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto journal = (dir / "usage.json").string();
  auto config = [&](const std::string& day_limit) {
    return governed_config(
      up.base_url(), "{tokens_per_day: " + day_limit + ", max_concurrent: 10}",
      "{tokens_per_month: 1000000}",
      "state:\n  path: \"" + journal
        + "\"\n  journal_interval_seconds: 0.05\n");
  };
  {
    gateway_process gw{config("100000")};
    for (int i = 0; i < 3; ++i)
      REQUIRE(chat_as(gw, full_key, i == 1).status == 200);
    gw.rewrite_config(config("200000"));
    gw.signal(SIGHUP);
    REQUIRE(gw.wait_for_output("config_reloaded"));
    auto usage = usage_of(gw, full_key)["key:full"];
    CHECK(usage["used"]["tokens_today"] == 3 * used_per_request);
    CHECK(usage["limits"]["tokens_per_day"] == 200000);
    // The backend is the one the process started with: a reload that
    // names another says it needs a restart, and the counters stay.
    auto to_redis = config("200000");
    auto at = to_redis.find("  path:");
    to_redis.insert(at, "  backend: redis\n  redis: {port: "
                          + std::to_string(closed_port()) + "}\n");
    gw.rewrite_config(to_redis);
    gw.signal(SIGHUP);
    REQUIRE(gw.wait_for_output("reload_needs_restart"));
    CHECK(gw.output().find("state.backend, state.redis") != std::string::npos);
    auto kept
      = http_request(gw.port(), "GET", "/v1/usage", "", auth_json(full_key))
          .json();
    CHECK(kept["backend"] == "embedded");
    CHECK(chat_as(gw, full_key).status == 200);
    CHECK(usage_of(gw, full_key)["key:full"]["used"]["tokens_today"]
          == 4 * used_per_request);
    CHECK(gw.stop() == 0);
  }
  REQUIRE(std::filesystem::exists(journal));
  gateway_process again{config("200000")};
  auto usage = usage_of(again, full_key);
  CHECK(usage["key:full"]["used"]["tokens_today"] == 4 * used_per_request);
  CHECK(usage["team:team"]["used"]["tokens_this_month"]
        == 4 * used_per_request);
  // What is not a period total starts afresh.
  CHECK(usage["key:full"]["used"]["in_flight"] == 0);
  REQUIRE(chat_as(again, full_key).status == 200);
  CHECK(usage_of(again, full_key)["key:full"]["used"]["tokens_today"]
        == 5 * used_per_request);
  CHECK(again.stop() == 0);
  std::filesystem::remove_all(dir);
}

// -- shared state in Redis ---------------------------------------------------

namespace {

/// `state:` for the Redis at `port`.
std::string redis_state(uint16_t port,
                        const std::string& on_unavailable = "deny") {
  return "state:\n  backend: redis\n  on_unavailable: " + on_unavailable
         + "\n  redis:\n    host: 127.0.0.1\n    port: " + std::to_string(port)
         + "\n    key_prefix: pw-test\n    timeout_ms: 500\n";
}

} // namespace

TEST_CASE("two gateway processes share one daily budget through Redis: 32 "
          "clients on both never take the key past it",
          "[integration][governance][redis]") {
  auto redis = start_redis();
  fake_upstream up{metered(20ms)};
  constexpr uint64_t limit = 3000;
  auto config = governed_config(
    up.base_url(),
    "{tokens_per_day: " + std::to_string(limit)
      + ", requests_per_minute: 1000000, tokens_per_minute: 1000000000}",
    "{tokens_per_month: 1000000000}", redis_state(redis.port()));
  gateway_process one{config};
  gateway_process two{config};
  auto settled = check_budget_run(
    spend_budget({&one, &two}, [](int i) { return i % 4 >= 2; }), limit);
  // Both replicas read the same counters.
  for (const auto* gw : {&one, &two}) {
    auto usage = usage_of(*gw, full_key);
    CHECK(usage["key:full"]["used"]["tokens_today"] == settled);
    CHECK(usage["key:full"]["used"]["in_flight"] == 0);
  }
}

TEST_CASE("Redis killed under load: on_unavailable deny answers 503 at once, "
          "allow serves uncounted, and both recover when it is back",
          "[integration][governance][redis]") {
  auto redis = start_redis();
  fake_upstream up{metered()};
  auto limits = "{requests_per_minute: 1000000}";
  gateway_process deny{governed_config(up.base_url(), limits,
                                       "{max_concurrent: 1000}",
                                       redis_state(redis.port(), "deny"))};
  gateway_process allow{governed_config(up.base_url(), limits,
                                        "{max_concurrent: 1000}",
                                        redis_state(redis.port(), "allow"))};
  REQUIRE(chat_as(deny, full_key).status == 200);
  REQUIRE(chat_as(allow, full_key).status == 200);
  redis.kill();
  // Several clients at once while it is down: none hangs (each answer is
  // bounded by the Redis timeout), none crashes the gateway.
  std::atomic<int> unavailable{0}, served{0}, other{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      for (int n = 0; n < 5; ++n) {
        auto res = chat_as(i % 2 == 0 ? deny : allow, full_key);
        if (i % 2 == 0 && res.status == 503
            && error_of(res)["code"] == "usage_unavailable"
            && res.header("retry-after") == "1")
          ++unavailable;
        else if (i % 2 == 1 && res.status == 200)
          ++served;
        else
          ++other;
      }
    });
  for (auto& t : clients)
    t.join();
  CHECK(unavailable == 20);
  CHECK(served == 20);
  CHECK(other == 0);
  CHECK(deny.wait_for_output("usage_state_unavailable"));
  auto report
    = http_request(deny.port(), "GET", "/v1/usage", "", auth_json(full_key))
        .json();
  CHECK(report["available"] == false);
  auto ready = http_request(deny.port(), "GET", "/health/ready");
  CHECK(ready.status == 200);
  CHECK(ready.json()["usage_state"]["available"] == false);
  redis.restart();
  // Recovery needs no restart: the next request after a second reconnects.
  auto recovered = [&](const gateway_process& gw) {
    for (int i = 0; i < 100; ++i) {
      if (chat_as(gw, full_key).status == 200)
        return true;
      std::this_thread::sleep_for(100ms); // the reconnect is paced at 1 s
    }
    return false;
  };
  CHECK(recovered(deny));
  CHECK(recovered(allow));
  CHECK(deny.wait_for_output("usage_state_restored"));
  CHECK(deny.running());
  CHECK(allow.running());
}

TEST_CASE("three gateways behind nginx with one Redis hold a key's "
          "requests_per_minute fleet-wide",
          "[integration][governance][redis]") {
  auto redis = start_redis();
  fake_upstream up{metered()};
  constexpr int limit = 12;
  auto config = governed_config(
    up.base_url(), "{requests_per_minute: " + std::to_string(limit) + "}",
    "{max_concurrent: 1000}", redis_state(redis.port()));
  gateway_process a{config}, b{config}, c{config};
  auto dir = std::filesystem::temp_directory_path()
             / ("pw-nginx-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto lb = start_nginx({a.port(), b.port(), c.port()}, dir.string());
  auto minute = [] {
    return std::chrono::duration_cast<std::chrono::minutes>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
  };
  // Three times the limit, from 6 clients at once, all inside one calendar
  // minute (a run that straddles two minutes is run again, at most twice).
  int ok = 0, refused = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt > 0) {
      // The last run spilled into this minute: start with the next one.
      auto next = std::chrono::system_clock::time_point{
        std::chrono::minutes{minute() + 1}};
      std::this_thread::sleep_until(next);
    }
    auto started = minute();
    std::atomic<int> got_ok{0}, got_refused{0}, got_other{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < 6; ++i)
      clients.emplace_back([&] {
        for (int n = 0; n < limit / 2; ++n) {
          auto res = http_request(lb.port(), "POST", "/v1/chat/completions",
                                  small_body(false), auth_json(full_key));
          if (res.status == 200)
            ++got_ok;
          else if (res.status == 429
                   && error_of(res)["code"] == "rate_limit_exceeded"
                   && !res.header("retry-after").empty()
                   && res.header("x-ratelimit-remaining-requests") == "0")
            ++got_refused;
          else
            ++got_other;
        }
      });
    for (auto& t : clients)
      t.join();
    CHECK(got_other == 0);
    ok = got_ok;
    refused = got_refused;
    if (minute() == started)
      break;
  }
  CHECK(ok == limit);
  CHECK(refused == 2 * limit);
  // Every replica served part of it: the limit held across all three.
  for (const auto* gw : {&a, &b, &c})
    CHECK(gw->output().find("\"status\":200") != std::string::npos);
  lb.stop();
  std::filesystem::remove_all(dir);
}

TEST_CASE("deploy/config.yaml passes --check-config, and the Kubernetes "
          "ConfigMap carries the same file",
          "[integration][governance]") {
  std::string path = std::string{PW_SOURCE_DIR} + "/deploy/config.yaml";
  auto r = run_pw_router({"--check-config", path},
                         {{"PW_ROUTER_API_KEY", "sk-deploy-check"}});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  auto read = [](const std::string& p) {
    std::ifstream in{p};
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  };
  auto config = read(path);
  auto map
    = read(std::string{PW_SOURCE_DIR} + "/deploy/kubernetes/configmap.yaml");
  // Each line of the file, indented four spaces under `config.yaml: |`.
  std::istringstream lines{config};
  std::string line;
  size_t checked = 0;
  while (std::getline(lines, line)) {
    auto indented = line.empty() ? std::string{} : "    " + line;
    if (indented.empty())
      continue;
    INFO(line);
    CHECK(map.find(indented + "\n") != std::string::npos);
    ++checked;
  }
  CHECK(checked > 20);
}
