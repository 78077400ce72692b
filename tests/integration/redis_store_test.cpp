// The Redis backend against the embedded ledger: the same batches of
// settlements and reservations, at the same simulated times, go to a real
// redis-server (through actors/redis_store.hpp, its Lua script and the
// gateway's Redis link, http/redis_link.hpp) and to
// core/policy/usage_ledger.hpp; every answer and every counter must agree.

#include "actors/redis_store.hpp"
#include "core/policy/usage_ledger.hpp"
#include "http/redis_link.hpp"
#include "tests/support/service_process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <hiredis/hiredis.h>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace pw;
using namespace pw::actors;
using namespace std::chrono;

namespace {

struct open_hold {
  ledger_hold embedded;
  ledger_hold shared;
  std::string id;
};

void check_same(const ledger_answer& want, const ledger_answer& got) {
  REQUIRE(want.hold.has_value() == got.hold.has_value());
  REQUIRE(want.refusal.has_value() == got.refusal.has_value());
  if (want.refusal) {
    const auto& w = *want.refusal;
    const auto& g = *got.refusal;
    CHECK(to_string(w.kind) == to_string(g.kind));
    CHECK(w.scope == g.scope);
    CHECK(w.limit == g.limit);
    CHECK(w.wanted == g.wanted);
    CHECK(w.left == g.left);
    CHECK(w.never == g.never);
    CHECK(w.retry_after_s == g.retry_after_s);
    CHECK(w.message() == g.message());
    return;
  }
  CHECK(want.hold->scopes == got.hold->scopes);
  CHECK(want.hold->reserved == got.hold->reserved);
  CHECK(want.view.limit_requests == got.view.limit_requests);
  CHECK(want.view.remaining_requests == got.view.remaining_requests);
  CHECK(want.view.limit_tokens == got.view.limit_tokens);
  CHECK(want.view.remaining_tokens == got.view.remaining_tokens);
  CHECK(want.view.reset_ms == got.view.reset_ms);
}

namespace net = boost::asio;
using tcp = net::ip::tcp;

/// What one command through the link got: a reply, or why not.
struct answer {
  redis_link::reply_ptr reply;
  std::string why;
};

/// Sends `argv` through `link` and runs `ioc` until it is answered.
answer command(net::io_context& ioc, redis_link& link,
               const std::vector<std::string>& argv) {
  std::optional<answer> out;
  link.call(argv, [&](redis_link::reply_ptr r, const std::string& why) {
    out = answer{std::move(r), why};
  });
  ioc.restart();
  while (!out && ioc.run_one() > 0) {
    // the peer's handlers, the link's, or its timer
  }
  REQUIRE(out);
  return std::move(*out);
}

redis_config config_for(uint16_t port) {
  redis_config cfg;
  cfg.port = port;
  cfg.timeout = 100ms;
  return cfg;
}

} // namespace

TEST_CASE("the Redis link pipelines commands to a real Redis, loads its "
          "greeting on each connection, and never shows the password",
          "[integration][governance][redis]") {
  auto redis = pw::test::start_redis();
  net::io_context ioc;
  auto cfg = config_for(redis.port());
  cfg.timeout = 2000ms;
  auto link = pw::http::make_redis_link(ioc, cfg, {{"SET", "greeted", "yes"}});
  // Many commands at once: each gets its own reply, in order.
  std::vector<std::optional<long long>> got(50);
  for (size_t i = 0; i < got.size(); ++i)
    link->call({"INCRBY", "counter", std::to_string(i + 1)},
               [&, i](redis_link::reply_ptr r, const std::string&) {
                 if (r && r->type == REDIS_REPLY_INTEGER)
                   got[i] = r->integer;
               });
  auto last = command(ioc, *link, {"GET", "greeted"});
  REQUIRE(last.reply);
  CHECK(std::string{last.reply->str} == "yes");
  long long sum = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    sum += static_cast<long long>(i + 1);
    REQUIRE(got[i].has_value());
    CHECK(*got[i] == sum);
  }
  // Closed for good: the next command fails at once.
  link->close();
  auto after = command(ioc, *link, {"PING"});
  CHECK_FALSE(after.reply);
  CHECK(after.why == "the Redis link was closed");
  // A Redis that wants no password refuses AUTH: every command fails,
  // with Redis's words and without the password.
  cfg.password = redacted_string{"hunter2-secret"};
  auto refused = pw::http::make_redis_link(ioc, cfg, {});
  auto a = command(ioc, *refused, {"PING"});
  CHECK_FALSE(a.reply);
  INFO(a.why);
  CHECK(a.why.find("Redis AUTH failed") != std::string::npos);
  CHECK(a.why.find("hunter2") == std::string::npos);
}

TEST_CASE("a Redis that accepts but never answers fails each command "
          "within the timeout, and the next second's at once",
          "[integration][governance][redis]") {
  net::io_context ioc;
  // The kernel completes the connection; nobody ever reads or answers.
  tcp::acceptor silent{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  auto link = pw::http::make_redis_link(
    ioc, config_for(silent.local_endpoint().port()), {});
  auto first = command(ioc, *link, {"PING"});
  CHECK_FALSE(first.reply);
  CHECK(first.why == "Redis did not answer within 100 ms");
  auto second = command(ioc, *link, {"PING"});
  CHECK_FALSE(second.reply);
  INFO(second.why);
  CHECK(second.why.find("unreachable less than a second ago")
        != std::string::npos);
}

TEST_CASE("a Redis that answers with something that is not RESP, or "
          "closes the connection, fails the command without a crash",
          "[integration][governance][redis]") {
  net::io_context ioc;
  tcp::acceptor peer{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  auto cfg = config_for(peer.local_endpoint().port());
  cfg.timeout = 2000ms;
  int accepted = 0;
  std::string reply_with;
  std::function<void()> serve = [&] {
    peer.async_accept([&](const boost::system::error_code& ec, tcp::socket s) {
      if (ec)
        return;
      ++accepted;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      auto buf = std::make_shared<std::array<char, 4096>>();
      sock->async_read_some(
        net::buffer(*buf),
        [&, sock, buf](const boost::system::error_code&, size_t) {
          if (reply_with.empty()) {
            sock->close(); // read the command, answer nothing
            return;
          }
          net::async_write(*sock, net::buffer(reply_with),
                           [sock](const boost::system::error_code&, size_t) {
                             // the link reads it, the socket stays open
                           });
        });
      serve();
    });
  };
  serve();
  SECTION("not RESP") {
    reply_with = "HTTP/1.1 200 OK\r\n\r\n";
    auto link = pw::http::make_redis_link(ioc, cfg, {});
    auto a = command(ioc, *link, {"PING"});
    CHECK_FALSE(a.reply);
    INFO(a.why);
    CHECK(a.why.find("not RESP") != std::string::npos);
  }
  SECTION("a bulk string larger than 8 MiB is not waited for") {
    reply_with = "$100000000\r\n" + std::string(9 << 20, 'x');
    auto link = pw::http::make_redis_link(ioc, cfg, {});
    auto a = command(ioc, *link, {"GET", "big"});
    CHECK_FALSE(a.reply);
    CHECK(a.why == "Redis sent an answer larger than 8 MiB");
  }
  SECTION("an array of a hundred million elements is not allocated") {
    reply_with = "*100000000\r\n";
    auto link = pw::http::make_redis_link(ioc, cfg, {});
    auto a = command(ioc, *link, {"GET", "big"});
    CHECK_FALSE(a.reply);
    CHECK(a.why
          == "Redis sent an answer too large to read (an array of more than "
             "65536 elements)");
  }
  SECTION("closed after reading: sent once more on a new connection") {
    auto link = pw::http::make_redis_link(ioc, cfg, {});
    auto a = command(ioc, *link, {"PING"});
    CHECK_FALSE(a.reply);
    CHECK(a.why == "Redis closed the connection");
    CHECK(accepted == 2);
  }
}

TEST_CASE("the Redis backend answers every reservation and keeps every "
          "counter as the embedded ledger does, across minutes, a day and "
          "a month",
          "[integration][governance][redis]") {
  auto redis = pw::test::start_redis();
  redis_config cfg;
  cfg.port = redis.port();
  cfg.key_prefix = "differential";
  cfg.timeout = 2000ms;
  // The gateway's own link, driven here by this thread's io_context.
  boost::asio::io_context ioc;
  redis_store shared{cfg, [&](const redis_config& c, auto greeting) {
                       return pw::http::make_redis_link(ioc, c,
                                                        std::move(greeting));
                     }};
  auto run = [&](redis_batch_ptr b) {
    redis_batch_ptr out;
    shared.run(std::move(b), [&](redis_batch_ptr done) { out = done; });
    ioc.restart();
    while (!out && ioc.run_one() > 0) {
      // each answer, or the link's timer
    }
    REQUIRE(out);
    return out;
  };
  usage_ledger book;

  usage_limits a;
  a.max_concurrent = 4;
  a.requests_per_minute = 7;
  a.tokens_per_minute = 1500;
  a.tokens_per_day = 9000;
  usage_limits b;
  b.tokens_per_minute = 900;
  b.budget_per_month = 150000;
  usage_limits team;
  team.requests_per_minute = 11;
  team.max_concurrent = 6;
  team.tokens_per_month = 5000;
  const std::vector<std::vector<ledger_scope>> routes = {
    {{"key:a", &a}},
    {{"key:a", &a}, {"team:t", &team}},
    {{"key:b", &b}, {"team:t", &team}},
    {{"key:b", &b}},
  };

  std::mt19937 rng{20261206};
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(rng);
  };
  // 2027-01-31 23:40:00 UTC: the run crosses minutes, then midnight, which
  // starts a day and a month at once.
  auto t = system_clock::time_point{seconds{1801438800}};
  std::vector<open_hold> open;
  uint64_t ids = 0;
  std::map<std::string, int> refused_by;
  int granted = 0;
  for (int round = 0; round < 400; ++round) {
    auto now = periods_at(t);
    std::vector<redis_settlement> settlements;
    for (int n = pick(0, std::min<int>(3, static_cast<int>(open.size())));
         n > 0; --n) {
      auto i = static_cast<size_t>(pick(0, static_cast<int>(open.size()) - 1));
      usage_amount actual{static_cast<uint64_t>(pick(0, 400)),
                          static_cast<uint64_t>(pick(0, 4000))};
      book.settle(open[i].embedded, actual, now);
      settlements.push_back({open[i].shared, open[i].id, actual});
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
    }
    std::vector<redis_reservation> reservations;
    std::vector<ledger_answer> expected;
    for (int n = pick(0, 4); n > 0; --n) {
      const auto& route = routes[static_cast<size_t>(pick(0, 3))];
      usage_amount worst{static_cast<uint64_t>(pick(1, 300)),
                         static_cast<uint64_t>(pick(0, 3000))};
      expected.push_back(book.reserve(route, worst, now));
      auto id = "h" + std::to_string(++ids);
      auto expires
        = duration_cast<milliseconds>((t + hours{24}).time_since_epoch())
            .count();
      reservations.push_back({route, worst, id, expires});
    }
    auto batch = std::make_shared<redis_batch>();
    batch->settlements = settlements;
    batch->reservations = reservations;
    batch->at = t;
    // The reads go in the same batch: pipelined behind the script, so
    // they see what it did.
    batch->reads = {"key:a", "key:b", "team:t"};
    auto done = run(batch);
    const auto& got = done->outcome;
    INFO("round " << round);
    REQUIRE(got.why.empty());
    REQUIRE(got.settlements_failed == 0);
    for (size_t i = 0; i < expected.size(); ++i) {
      REQUIRE(got.answers[i].has_value());
      check_same(expected[i], *got.answers[i]);
      if (expected[i].refusal) {
        ++refused_by[std::string{to_string(expected[i].refusal->kind)}];
      } else {
        ++granted;
        open.push_back(
          {*expected[i].hold, *got.answers[i]->hold, reservations[i].hold_id});
      }
    }
    for (size_t i = 0; i < done->reads.size(); ++i) {
      const auto& scope = done->reads[i];
      INFO(scope);
      const auto& read = done->read[i];
      REQUIRE(read.has_value());
      scope_counters want;
      if (const auto* c = book.find(scope))
        want = *c;
      want.roll(now);
      CHECK(read->in_flight == want.in_flight);
      CHECK(read->minute_requests == want.minute_requests);
      CHECK(read->minute_tokens == want.minute_tokens);
      CHECK(read->day_tokens == want.day_tokens);
      CHECK(read->month_tokens == want.month_tokens);
      CHECK(read->month_cost == want.month_cost);
    }
    t += seconds{pick(0, 12)};
  }
  // The run went through every kind of refusal, and past midnight.
  INFO(granted << " granted");
  CHECK(granted > 100);
  for (const auto* kind :
       {"max_concurrent", "requests_per_minute", "tokens_per_minute",
        "tokens_per_day", "tokens_per_month", "budget_usd_per_month"}) {
    INFO(kind << ": " << refused_by[kind]);
    CHECK(refused_by[kind] > 0);
  }
  CHECK(periods_at(t).month
        != periods_at(system_clock::time_point{seconds{1801438800}}).month);
}
