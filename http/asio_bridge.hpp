#pragma once

// The single crossing between the CAF world (actors) and the Asio world (io
// threads). Everything that moves control from one to the other is here:
//
// - Asio -> CAF: async_actor_call() hands a reply_fn to an actor-side
//   initiator (which spawns a SESSION or a helper actor) and suspends the
//   connection until the reply arrives.
// - CAF -> Asio: the reply_fn posts the answer onto the connection's own
//   io_context (one io_context per thread, so no strand is needed);
//   upstream_fn posts a provider call onto the io thread that owns the
//   connection pool; publish_fn posts a new generation to every io thread.
//
// Every completion runs exactly once. If the actor side drops a reply_fn
// without calling it (the actor died), the connection gets a 500; if it
// does not answer within the request deadline, a 504; if an io_context
// drops an upstream call (shutdown), the SESSION gets a `cancelled` result.
// Nothing is ever left suspended.

#include "actors/gateway_api.hpp"
#include "core/boundary.hpp"
#include "core/request/exchange.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace pw::http {

namespace net = boost::asio;

namespace detail {

/// Holds a suspended connection's completion handler until the actor side
/// answers or the deadline passes. complete() takes effect once; the
/// destructor answers 500 if nothing did.
template <class Handler, class WorkExecutor>
class bridge_state {
public:
  bridge_state(Handler handler, WorkExecutor work,
               std::shared_ptr<net::steady_timer> timer)
      : handler_(std::move(handler)), work_(std::move(work)),
        timer_(std::move(timer)) {
    // nop
  }

  bridge_state(const bridge_state&) = delete;
  bridge_state& operator=(const bridge_state&) = delete;

  ~bridge_state() {
    http_reply r;
    r.error = error_of(errc::internal,
                       "The request ended inside the gateway without an "
                       "answer");
    r.facts_unknown = true;
    complete(std::move(r));
  }

  /// Called from an actor thread (the answer) or from the io thread (the
  /// deadline); the first call wins.
  void complete(http_reply reply) {
    if (done_.exchange(true))
      return;
    // Post, never dispatch: the handler must resume the coroutine on the
    // connection's own io thread, which also owns the timer.
    // The work guard moves along: once answered, the io_context no longer
    // waits for the actor side to let go of its reply_fn.
    auto work = std::move(work_);
    net::post(work, [h = std::move(handler_), r = std::move(reply),
                     t = std::move(timer_), w = work]() mutable {
      t->cancel();
      std::move(h)(std::move(r));
    });
  }

private:
  std::atomic<bool> done_{false};
  Handler handler_;
  WorkExecutor work_;
  std::shared_ptr<net::steady_timer> timer_;
};

/// Calls an upstream_done once; the destructor reports `cancelled`.
class once_done {
public:
  explicit once_done(upstream_done fn) : fn_(std::move(fn)) {
    // nop
  }

  once_done(const once_done&) = delete;
  once_done& operator=(const once_done&) = delete;

  ~once_done() {
    upstream_result r;
    r.failure = upstream_failure::cancelled;
    r.detail = "the gateway is shutting down";
    operator()(std::move(r));
  }

  void operator()(upstream_result r) {
    if (fn_) {
      auto fn = std::move(fn_);
      fn_ = nullptr;
      fn(std::move(r));
    }
  }

private:
  upstream_done fn_;
};

} // namespace detail

/// Runs `initiate(reply_fn)` (which hands the reply_fn to the actor side)
/// and completes with the http_reply the actor side delivers, or with a 504
/// when `deadline` (a timer on the connection's io thread, armed by the
/// caller) fires first: no actor needs a timer of its own. Whoever cancels
/// the timer (a stream that started) takes the deadline away. Usage:
/// `auto reply = co_await async_actor_call(init, timer, use_awaitable);`
template <class Initiate, class CompletionToken>
auto async_actor_call(Initiate initiate,
                      std::shared_ptr<net::steady_timer> deadline,
                      CompletionToken&& token) {
  return net::async_initiate<CompletionToken, void(http_reply)>(
    [](auto handler, Initiate init, std::shared_ptr<net::steady_timer> timer) {
      auto ex = net::get_associated_executor(handler);
      // An actor holding the handler is not outstanding work to Asio;
      // track it, or the io_context could run out of work and return.
      auto work = net::prefer(ex, net::execution::outstanding_work.tracked);
      using state_t = detail::bridge_state<decltype(handler), decltype(work)>;
      auto state
        = std::make_shared<state_t>(std::move(handler), std::move(work), timer);
      // The timer holds the state weakly: it must not keep an answer alive.
      timer->async_wait(
        [weak = std::weak_ptr<state_t>{state}](boost::system::error_code ec) {
          if (ec)
            return; // cancelled: answered, or a stream took over
          if (auto s = weak.lock()) {
            http_reply r;
            r.error = error_of(errc::deadline_exceeded,
                               "The request did not finish within its deadline "
                               "(server.request_deadline_seconds)");
            r.facts_unknown = true;
            s->complete(std::move(r));
          }
        });
      init(reply_fn{[state](http_reply r) { state->complete(std::move(r)); }});
    },
    token, std::move(initiate), std::move(deadline));
}

/// As above, with a timer of `deadline` armed here.
template <class Initiate, class Executor, class CompletionToken>
auto async_actor_call(Initiate initiate, const Executor& ex,
                      std::chrono::milliseconds deadline,
                      CompletionToken&& token) {
  auto timer = std::make_shared<net::steady_timer>(ex, deadline);
  return async_actor_call(std::move(initiate), std::move(timer),
                          std::forward<CompletionToken>(token));
}

/// Returns an upstream_fn that runs `call(request)` (an awaitable producing
/// an upstream_result) on `ioc`, the io thread of the calling connection,
/// where its connection pool lives.
template <class Call>
upstream_fn make_upstream_fn(net::io_context& ioc, Call call) {
  return [&ioc, call](upstream_request req, upstream_done done) {
    auto once = std::make_shared<detail::once_done>(std::move(done));
    // The coroutine is created on the io thread that owns the pool, so its
    // frame never crosses threads.
    auto start = [&ioc, call, once, req = std::move(req)]() mutable {
      auto id = req.request_id;
      net::co_spawn(ioc, call(std::move(req)),
                    [once, id](std::exception_ptr ep, upstream_result r) {
                      // Two boundaries: the call itself (its exception arrives
                      // here) and the hand-over to the actor side. Neither may
                      // throw out of the io thread.
                      if (ep) {
                        try {
                          std::rethrow_exception(ep);
                        } catch (...) {
                          report_failure(boundary::upstream_call, id,
                                         current_exception_text());
                        }
                        r = upstream_result{};
                        r.failure = upstream_failure::internal;
                        r.detail
                          = "the gateway failed while calling the provider";
                      }
                      try {
                        (*once)(std::move(r));
                      } catch (...) {
                        report_failure(boundary::upstream_done, id,
                                       current_exception_text());
                      }
                    });
    };
    // A SESSION calls from its connection's own thread: co_spawn's first
    // step is queued there at once, without a hand-over posted before it
    // (a handler, and a poll of the reactor, fewer per request). From any
    // other thread, the start is posted there.
    if (ioc.get_executor().running_in_this_thread())
      start();
    else
      net::post(ioc, std::move(start));
  };
}

/// Returns a publish_fn that hands each new generation to every io thread
/// by posting `apply(gen)` onto its io_context.
inline actors::publish_fn make_publish_fn(
  std::vector<
    std::pair<net::io_context*, std::function<void(actors::generation_ptr)>>>
    targets) {
  return [targets = std::move(targets)](actors::generation_ptr gen) {
    for (const auto& [ioc, apply] : targets)
      // Each io thread swaps its own copy; no shared mutable pointer.
      net::post(*ioc, [apply, gen] { apply(gen); });
  };
}

} // namespace pw::http
