// The io-thread scheduler with real threads and io_contexts: where actors
// run, that no wake-up is lost between threads, the lock-free clock's
// timeouts and delayed messages, and what happens to jobs whose io_context
// goes away. Waits are on futures with a bound, never sleeps.

#include "http/io_clock.hpp"
#include "http/io_scheduler.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

using namespace pw;
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;

/// An io thread as the server runs one: its io_context, made a worker of
/// the actor system for as long as it runs.
struct io_thread {
  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;
  std::thread thread;
  std::promise<void> attached;

  /// Without `busy`, the io_context has no work of its own (a server's io
  /// thread whose connections are gone).
  explicit io_thread(caf::actor_system& sys, bool busy = true) {
    if (busy)
      guard.emplace(ioc.get_executor());
    auto ready = attached.get_future();
    thread = std::thread{[this, &sys] {
      http::io_thread_scope scope{sys, ioc};
      attached.set_value();
      ioc.run();
    }};
    ready.wait();
  }

  ~io_thread() { stop(); }

  void stop() {
    if (!thread.joinable())
      return;
    guard.reset();
    ioc.stop();
    thread.join();
  }

  /// Runs `f` on this io thread and returns what it returns.
  template <class F>
  auto run(F f) {
    auto task
      = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto result = task->get_future();
    net::post(ioc, [task] { (*task)(); });
    REQUIRE(result.wait_for(10s) == std::future_status::ready);
    return result.get();
  }

  /// Returns once this io thread has run everything queued on it so far,
  /// including what its handlers queued. (A post from the thread itself
  /// goes to a private queue, which joins the shared one only when the
  /// handler ends: a post from outside can overtake it.)
  void settle() {
    auto done = run([this] {
      auto p = std::make_shared<std::promise<void>>();
      net::post(ioc, [p] { p->set_value(); });
      return p->get_future();
    });
    REQUIRE(done.wait_for(10s) == std::future_status::ready);
  }
};

/// An actor that reports, on each ping, the thread it ran on.
caf::behavior where_am_i(caf::event_based_actor*,
                         std::shared_ptr<std::promise<std::thread::id>> out) {
  return {[out](ping_atom) { out->set_value(std::this_thread::get_id()); }};
}

/// An actor that counts pings and says when it has `target` of them.
caf::behavior counts_to(caf::event_based_actor*, int target,
                        std::shared_ptr<std::promise<int>> out) {
  auto n = std::make_shared<int>(0);
  return {[target, out, n](ping_atom) {
    if (++*n == target)
      out->set_value(*n);
  }};
}

std::thread::id wait(std::future<std::thread::id>& f) {
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

struct io_system {
  caf::actor_system_config cfg;
  std::optional<caf::actor_system> sys;

  io_system() {
    http::use_io_scheduler(cfg);
    sys.emplace(cfg);
  }
};

} // namespace

TEST_CASE("an actor spawned and woken on an io thread runs on that thread") {
  io_system s;
  REQUIRE(http::runs_on_io_threads(*s.sys));
  io_thread a{*s.sys};
  io_thread b{*s.sys};
  for (auto* t : {&a, &b}) {
    auto out = std::make_shared<std::promise<std::thread::id>>();
    auto ran_on = out->get_future();
    t->run([&] {
      auto x = s.sys->spawn(where_am_i, out);
      caf::anon_send(x, ping_atom::value);
      return 0;
    });
    CHECK(wait(ran_on) == t->thread.get_id());
  }
}

TEST_CASE("an idle actor woken by an actor runs on the sender's io thread") {
  io_system s;
  io_thread a{*s.sys};
  io_thread b{*s.sys};
  // Started on io thread a; once idle it belongs to no thread.
  auto out = std::make_shared<std::promise<std::thread::id>>();
  auto ran_on = out->get_future();
  auto target = a.run([&] { return s.sys->spawn(where_am_i, out); });
  a.settle();
  // (Every spawned function here takes an argument: CAF 0.17 binds a
  // null tuple for none, which UBSan reports.)
  auto relay
    = [](caf::event_based_actor* self, caf::actor to) -> caf::behavior {
    return {[self, to](ping_atom) { self->send(to, ping_atom::value); }};
  };
  b.run([&] {
    caf::anon_send(s.sys->spawn(relay, target), ping_atom::value);
    return 0;
  });
  CHECK(wait(ran_on) == b.thread.get_id());
}

TEST_CASE("messages from many threads reach one actor: no wake-up is lost") {
  io_system s;
  io_thread a{*s.sys};
  io_thread b{*s.sys};
  constexpr int per_sender = 20'000;
  auto done = std::make_shared<std::promise<int>>();
  auto counted = done->get_future();
  auto counter = s.sys->spawn(counts_to, 3 * per_sender, done);
  // Both io threads and the main thread send at once: the actor keeps
  // being woken on one thread while another sends to it.
  auto send_all = [&] {
    for (int i = 0; i < per_sender; ++i)
      caf::anon_send(counter, ping_atom::value);
  };
  net::post(a.ioc, send_all);
  net::post(b.ioc, send_all);
  send_all();
  REQUIRE(counted.wait_for(30s) == std::future_status::ready);
  CHECK(counted.get() == 3 * per_sender);
}

TEST_CASE("actors run before any io thread attaches and after all detach") {
  io_system s;
  using where = std::atomic<std::thread::id>;
  auto add = [](caf::event_based_actor*,
                std::shared_ptr<where> ran_on) -> caf::behavior {
    return {[ran_on](ping_atom, int x) {
      *ran_on = std::this_thread::get_id();
      return x + 1;
    }};
  };
  auto ran_on = std::make_shared<where>();
  caf::scoped_actor self{*s.sys};
  // A new actor each time: one still busy with its last answer would take
  // the next message where it runs.
  auto ask = [&](int x) {
    int got = 0;
    self->request(s.sys->spawn(add, ran_on), 10s, ping_atom::value, x)
      .receive([&](int y) { got = y; },
               [&](caf::error& err) { FAIL(caf::to_string(err)); });
    return got;
  };
  CHECK(ask(1) == 2);
  auto own_thread = ran_on->load(); // the scheduler's own thread
  CHECK(own_thread != std::this_thread::get_id());
  {
    io_thread a{*s.sys};
    CHECK(ask(2) == 3);
    CHECK(ran_on->load() == a.thread.get_id());
  }
  CHECK(ask(3) == 4);
  CHECK(ran_on->load() == own_thread);
}

TEST_CASE("an io thread with nothing else to do keeps running actors") {
  io_system s;
  // Its io_context has no work of its own: being a worker keeps it from
  // returning, so a job handed to it later still runs (shutdown waits for
  // every actor).
  io_thread a{*s.sys, false};
  for (int i = 0; i < 3; ++i) {
    auto out = std::make_shared<std::promise<std::thread::id>>();
    auto ran_on = out->get_future();
    caf::anon_send(s.sys->spawn(where_am_i, out), ping_atom::value);
    CHECK(wait(ran_on) == a.thread.get_id());
  }
}

TEST_CASE("the clock delivers delayed messages and request timeouts") {
  io_system s;
  io_thread a{*s.sys};
  auto out = std::make_shared<std::promise<std::thread::id>>();
  auto ran_on = out->get_future();
  auto x = s.sys->spawn(where_am_i, out);
  auto sent = std::chrono::steady_clock::now();
  caf::delayed_anon_send(x, 30ms, ping_atom::value);
  // Delivered by the clock's thread, which is no worker: on the io thread.
  CHECK(wait(ran_on) == a.thread.get_id());
  CHECK(std::chrono::steady_clock::now() - sent >= 30ms);
  // A request nobody answers times out.
  // It promises an answer and never gives it (CAF 0.17 sends nothing
  // when the promise goes).
  auto never_answer = [](caf::event_based_actor* self,
                         std::shared_ptr<std::atomic<int>> asked) {
    return caf::behavior{[self, asked](ping_atom) {
      ++*asked;
      return self->make_response_promise();
    }};
  };
  auto asked = std::make_shared<std::atomic<int>>(0);
  auto silent = s.sys->spawn(never_answer, asked);
  auto result = std::make_shared<std::promise<caf::error>>();
  auto timed_out = result->get_future();
  auto ask = [](caf::event_based_actor* self, caf::actor to,
                std::shared_ptr<std::promise<caf::error>> out) {
    self->request(to, 50ms, ping_atom::value)
      .then([out] { out->set_value(caf::error{}); },
            [out](caf::error& err) { out->set_value(err); });
  };
  s.sys->spawn(ask, silent, result);
  REQUIRE(timed_out.wait_for(10s) == std::future_status::ready);
  CHECK(timed_out.get() == caf::sec::request_timeout);
  CHECK(*asked == 1);
  caf::anon_send_exit(silent, caf::exit_reason::user_shutdown);
}

TEST_CASE("actors that end do not wake the clock's thread each time") {
  io_system s;
  io_thread a{*s.sys};
  auto* clock = dynamic_cast<http::io_clock*>(&s.sys->clock());
  REQUIRE(clock != nullptr);
  // Every actor's end cancels its timeouts at the clock: queued, and
  // applied when the thread next wakes (at the latest every batch).
  constexpr int actors = 2'000;
  auto done = std::make_shared<std::promise<void>>();
  auto all_ended = done->get_future();
  auto left = std::make_shared<std::atomic<int>>(actors);
  auto before = clock->wakes();
  auto short_lived
    = [](caf::event_based_actor* self, std::shared_ptr<std::promise<void>> out,
         std::shared_ptr<std::atomic<int>> count) {
        self->attach_functor([out, count] {
          if (--*count == 0)
            out->set_value();
        });
        return caf::behavior{[self](stop_atom) { self->quit(); }};
      };
  a.run([&] {
    for (int i = 0; i < actors; ++i)
      caf::anon_send(s.sys->spawn(short_lived, done, left), stop_atom::value);
    return 0;
  });
  REQUIRE(all_ended.wait_for(10s) == std::future_status::ready);
  auto woken = clock->wakes() - before;
  CHECK(woken <= actors / http::io_clock::batch + 1);
}

TEST_CASE("a job left in an io_context that goes runs on another worker") {
  io_system s;
  auto out = std::make_shared<std::promise<std::thread::id>>();
  auto ran_on = out->get_future();
  std::thread::id left;
  {
    // An io thread that attaches, queues an actor's start and a message
    // to it, and leaves without running its io_context (as a stopped
    // server's io thread leaves the jobs posted after the stop).
    net::io_context ioc{1};
    std::thread t{[&] {
      http::io_thread_scope scope{*s.sys, ioc};
      caf::anon_send(s.sys->spawn(where_am_i, out), ping_atom::value);
    }};
    left = t.get_id();
    t.join();
  } // the io_context goes, with the job
  // Nothing is lost: the scheduler's own thread runs it.
  auto id = wait(ran_on);
  CHECK(id != left);
  CHECK(id != std::this_thread::get_id());
}

TEST_CASE("a chain of actors woken on an io thread runs in one turn") {
  // A request's hops from actor to actor (SESSION, ROUTER, MODEL and back)
  // run one after the other: a handler posted right after the first
  // message runs after the last hop. (With a handler per hop, which had
  // Asio poll the reactor between two hops, it ran after the first.)
  io_system s;
  io_thread a{*s.sys};
  auto hops = std::make_shared<int>(0); // only the io thread touches it
  auto relay
    = [](caf::event_based_actor*, caf::actor next, std::shared_ptr<int> n) {
        return caf::behavior{[next, n](ping_atom) {
          ++*n;
          if (next)
            caf::anon_send(next, ping_atom::value);
        }};
      };
  auto first = a.run([&] {
    caf::actor next;
    for (int i = 0; i < 10; ++i)
      next = s.sys->spawn(relay, next, hops);
    return next;
  });
  a.settle(); // their starts have run
  auto seen = a.run([&] {
    caf::anon_send(first, ping_atom::value);
    auto at_marker = std::make_shared<std::promise<int>>();
    auto f = at_marker->get_future();
    net::post(a.ioc, [at_marker, hops] { at_marker->set_value(*hops); });
    return f;
  });
  REQUIRE(seen.wait_for(10s) == std::future_status::ready);
  CHECK(seen.get() == 10);
}

TEST_CASE("an actor with a long mailbox lets its io thread's other work run") {
  io_system s;
  io_thread a{*s.sys};
  auto handled = std::make_shared<std::atomic<int>>(0);
  auto count
    = [](caf::event_based_actor*, std::shared_ptr<std::atomic<int>> n) {
        return caf::behavior{[n](ping_atom) { ++*n; }};
      };
  auto counter = a.run([&] { return s.sys->spawn(count, handled); });
  a.settle(); // its start has run
  // 1,000 messages, then other work for the same io thread: the actor
  // handles a share of its mailbox and goes back in the queue, behind it.
  auto seen = a.run([&] {
    for (int i = 0; i < 1000; ++i)
      caf::anon_send(counter, ping_atom::value);
    auto at_marker = std::make_shared<std::promise<int>>();
    auto f = at_marker->get_future();
    net::post(a.ioc, [at_marker, handled] { at_marker->set_value(*handled); });
    return f;
  });
  REQUIRE(seen.wait_for(10s) == std::future_status::ready);
  auto n = seen.get();
  CHECK(n > 0);
  CHECK(n < 1000);
}

TEST_CASE("delayed messages arrive although the clock sleeps for an hour") {
  io_system s;
  io_thread a{*s.sys};
  io_thread b{*s.sys};
  constexpr int per_sender = 500;
  auto done = std::make_shared<std::promise<int>>();
  auto counted = done->get_future();
  auto counter = s.sys->spawn(counts_to, 3 * per_sender, done);
  // The clock's thread plans to wake in an hour; three threads then queue
  // entries due in a few milliseconds, racing with its sleep. One it did
  // not wake for would arrive only after the hour.
  caf::delayed_anon_send(counter, std::chrono::hours{1}, ping_atom::value);
  auto send_all = [&] {
    for (int i = 0; i < per_sender; ++i)
      caf::delayed_anon_send(counter, std::chrono::milliseconds{1 + i % 5},
                             ping_atom::value);
  };
  net::post(a.ioc, send_all);
  net::post(b.ioc, send_all);
  send_all();
  REQUIRE(counted.wait_for(20s) == std::future_status::ready);
  CHECK(counted.get() == 3 * per_sender);
  // The hour's entry keeps the actor alive, and the actor system waits for
  // every actor at its end.
  caf::anon_send_exit(counter, caf::exit_reason::user_shutdown);
}
