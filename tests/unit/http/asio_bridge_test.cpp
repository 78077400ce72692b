// The CAF <-> Asio bridge on its own: exactly-once completion on the io
// thread, the 500 for a dropped reply, the 504 at the deadline, and the
// `cancelled` result for an upstream call its io_context never ran.

#include "http/asio_bridge.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <optional>
#include <thread>

using namespace pw;
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

struct outcome {
  std::optional<http_reply> reply;
  std::thread::id thread;
  int calls = 0;
};

/// Starts a call whose initiator hands the reply_fn to `take`, and records
/// the completion.
template <class Take>
void start(net::io_context& ioc, outcome& out, Take take,
           std::chrono::milliseconds deadline = 10s) {
  http::async_actor_call(take, ioc.get_executor(), deadline,
                         net::bind_executor(ioc, [&out](http_reply r) {
                           out.reply = std::move(r);
                           out.thread = std::this_thread::get_id();
                           ++out.calls;
                         }));
}

} // namespace

TEST_CASE("an answer from another thread completes on the io thread, once") {
  net::io_context ioc;
  outcome out;
  std::thread actor;
  start(ioc, out, [&](reply_fn fn) {
    actor = std::thread{[fn] {
      http_reply r;
      r.body = "first";
      fn(r);
      r.body = "second";
      fn(r);
    }};
  });
  ioc.run(); // returns only once the completion ran: tracked work
  actor.join();
  REQUIRE(out.reply);
  CHECK(out.calls == 1);
  CHECK(out.reply->body == "first");
  CHECK(out.thread == std::this_thread::get_id());
}

TEST_CASE("a reply_fn dropped unanswered completes with 500") {
  net::io_context ioc;
  outcome out;
  start(ioc, out, [](reply_fn fn) { auto gone = std::move(fn); });
  ioc.run();
  REQUIRE(out.reply);
  REQUIRE(out.reply->error);
  CHECK(out.reply->error->code == errc::internal);
}

TEST_CASE("no answer within the deadline completes with 504, a late answer "
          "is dropped") {
  net::io_context ioc;
  outcome out;
  reply_fn kept;
  start(
    ioc, out, [&](reply_fn fn) { kept = std::move(fn); }, 20ms);
  ioc.run();
  REQUIRE(out.reply);
  REQUIRE(out.reply->error);
  CHECK(out.reply->error->code == errc::deadline_exceeded);
  kept(http_reply{});
  ioc.restart();
  ioc.run();
  CHECK(out.calls == 1);
}

TEST_CASE("an upstream call runs on its io_context and reports once") {
  net::io_context ioc;
  std::optional<upstream_result> got;
  auto fn = http::make_upstream_fn(
    ioc, [](upstream_request req) -> net::awaitable<upstream_result> {
      upstream_result r;
      r.status = 200;
      r.body = req.body;
      co_return r;
    });
  upstream_request req;
  req.body = "payload";
  std::thread caller{[&] { fn(req, [&](upstream_result r) { got = r; }); }};
  caller.join();
  ioc.run();
  REQUIRE(got);
  CHECK(got->status == 200);
  CHECK(got->body == "payload");
}

TEST_CASE("an upstream call its io_context never runs reports cancelled") {
  std::optional<upstream_result> got;
  {
    net::io_context ioc;
    auto fn = http::make_upstream_fn(
      ioc, [](upstream_request) -> net::awaitable<upstream_result> {
        co_return upstream_result{};
      });
    fn(upstream_request{}, [&](upstream_result r) { got = r; });
    // The io_context is destroyed without running the posted call.
  }
  REQUIRE(got);
  CHECK(got->failure == upstream_failure::cancelled);
}
