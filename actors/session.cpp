#include "actors/session.hpp"

#include "adapters/adapter.hpp"
#include "core/errc.hpp"

#include <caf/all.hpp>

#include <random>

namespace pw::actors {

namespace {

using session_ptr = session_actor::stateful_pointer<session_state>;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::steady_clock;

/// Tells the admitted MODEL how its call ended; at most once per call.
void report(session_ptr self, call_outcome x) {
  auto& st = self->state;
  if (!st.outcome_pending || !st.decision)
    return;
  st.outcome_pending = false;
  x.probe = st.decision->probe;
  self->send(st.decision->model, atom::outcome_v, std::move(x));
}

/// Answers the client and ends the session.
void finish(session_ptr self, http_reply reply) {
  auto& st = self->state;
  if (st.decision && reply.model.empty())
    reply.model = st.decision->alias;
  if (st.reply) {
    auto fn = std::move(st.reply);
    st.reply = nullptr;
    fn(std::move(reply));
  }
  self->quit();
}

void finish_with(session_ptr self, api_error err) {
  http_reply reply;
  reply.error = std::move(err);
  finish(self, std::move(reply));
}

/// PRE stage: the plugin work runs the pre plugins here, in config order.
/// Until then the request passes unchanged.
void run_pre_stage(session_ptr) {
  // nop
}

/// POST stage: the plugin work runs the post plugins here on the final
/// response. Until then the response passes unchanged.
void run_post_stage(session_ptr, adapters::chat_response&) {
  // nop
}

/// True while no post plugin has to see a response: the io thread may then
/// answer the client itself as soon as the provider's answer is translated.
/// The plugin work makes this depend on `middleware.post_response`.
bool post_stage_empty(session_ptr) {
  return true;
}

http_reply success_reply(adapters::chat_response response,
                         unsigned upstream_status, microseconds upstream_time,
                         std::string model) {
  http_reply reply;
  reply.status = 200;
  reply.body = std::move(response.body);
  reply.model = std::move(model);
  reply.upstream_status = upstream_status;
  reply.upstream_time = upstream_time;
  reply.prompt_tokens = response.prompt_tokens;
  reply.completion_tokens = response.completion_tokens;
  return reply;
}

stream_options stream_options_of(session_ptr self) {
  const auto& st = self->state;
  return {st.decision->alias, st.ctx.include_usage, st.ctx.request_id};
}

void answer(session_ptr self, adapters::chat_response response,
            unsigned upstream_status, microseconds upstream_time) {
  run_post_stage(self, response);
  auto out = success_reply(std::move(response), upstream_status, upstream_time,
                           self->state.decision->alias);
  if (self->state.ctx.stream) {
    // Asked for a stream, got a whole answer: send it as one.
    out.body = completion_to_sse(out.body, stream_options_of(self));
    out.content_type = "text/event-stream";
  }
  finish(self, std::move(out));
}

bool is_success(const upstream_result& r) {
  return r.failure == upstream_failure::none && r.status >= 200
         && r.status < 300;
}

/// The reply for a stream the io thread already relayed: nothing to write,
/// only facts for the log line and the keep-alive decision.
http_reply streamed_reply(const upstream_result& r, std::string model) {
  http_reply reply;
  reply.status = 200; // what the client got, whatever 2xx the upstream sent
  reply.streamed = true;
  reply.stream_complete = r.summary.complete && !r.client_gone;
  reply.model = std::move(model);
  reply.upstream_status = r.status;
  reply.upstream_time = r.elapsed;
  reply.prompt_tokens = r.summary.prompt_tokens;
  reply.completion_tokens = r.summary.completion_tokens;
  if (r.client_gone)
    reply.log_error = "client_closed";
  else if (!r.summary.complete)
    reply.log_error = "stream_failed";
  return reply;
}

/// How a relayed stream ended, for the MODEL: complete, cut by the client
/// or by the request's deadline (not the model's fault), or broken by the
/// upstream (which includes running past the model's own timeout).
call_outcome stream_outcome(const upstream_result& r) {
  if (r.summary.complete)
    return {call_result::success, r.status, r.elapsed.count(), {}};
  if (r.client_gone || r.past_deadline)
    return {call_result::cancelled, r.status, r.elapsed.count(),
            r.client_gone ? "client closed" : "deadline"};
  return {call_result::failure, r.status, r.elapsed.count(),
          "stream: " + r.summary.error};
}

void next_candidate(session_ptr self);

/// Every attempt failed (or none could start): the client gets the last
/// failure when there was one attempt, a 429 relayed when the last failure
/// was the provider's rate limit, else a 502 summarising each attempt.
void give_up(session_ptr self) {
  auto& st = self->state;
  if (!st.last_error) {
    finish_with(self, error_of(errc::deadline_exceeded,
                               "The request ran out of time before any model "
                               "could be tried"));
    return;
  }
  auto err = std::move(*st.last_error);
  if (st.attempts.size() > 1 && err.code != errc::upstream_rate_limited) {
    std::string text = "Every model of the route failed: ";
    for (size_t i = 0; i < st.attempts.size(); ++i) {
      if (i > 0)
        text += "; ";
      text += st.attempts[i];
    }
    err = error_of(errc::upstream_failed, std::move(text));
  }
  http_reply reply;
  reply.error = std::move(err);
  reply.upstream_status = st.last_status;
  finish(self, std::move(reply));
}

void call_model(session_ptr self, route_decision d);

/// Asks `c`'s MODEL for admission and calls it, or moves on.
void admit_and_call(session_ptr self, candidate c) {
  auto alias = c.alias;
  auto handle = c.model;
  self
    ->request(handle, caf::infinite, atom::admit_v,
              admit_request{self->state.ctx.request_id})
    .then(
      [self, alias, handle](admission& a) {
        if (!a.admitted) {
          self->state.attempts.push_back(alias + ": skipped (" + a.reason
                                         + ")");
          next_candidate(self);
          return;
        }
        call_model(self, decision_for(alias, handle, std::move(a)));
      },
      [self, alias](caf::error&) {
        self->state.attempts.push_back(alias + ": skipped (not responding)");
        next_candidate(self);
      });
}

/// Falls back to the next candidate of the route, if time is left.
void next_candidate(session_ptr self) {
  auto& st = self->state;
  st.retries = 0;
  if (st.remaining.empty() || steady_clock::now() >= st.ctx.deadline) {
    give_up(self);
    return;
  }
  auto c = std::move(st.remaining.front());
  st.remaining.pop_front();
  admit_and_call(self, std::move(c));
}

/// Handles a finished upstream exchange.
void on_upstream(session_ptr self, upstream_result& r) {
  auto& st = self->state;
  if (!st.decision || !st.outcome_pending)
    return; // nothing is waiting for a result
  const auto& model = *st.decision->settings;
  const auto& adapter = adapters::adapter_for(model.provider);
  auto latency = r.elapsed.count();
  if (r.streamed) {
    // The post stage may record a streamed answer; it cannot change it.
    report(self, stream_outcome(r));
    finish(self, streamed_reply(r, model.alias));
    return;
  }
  api_error err;
  call_result result = call_result::failure;
  std::string summary;
  if (is_success(r)) {
    auto response = adapter.from_provider_response(r, model);
    if (response) {
      report(self, {call_result::success, r.status, latency, {}});
      answer(self, std::move(*response), r.status, r.elapsed);
      return;
    }
    // A 2xx that is not a chat answer is the provider's failure.
    err = to_api_error(response.error());
    summary = "malformed response";
  } else {
    err = adapters::upstream_error(r, model);
    // Cut by the request's deadline: the model was not given its time.
    result = r.failure == upstream_failure::cancelled || r.past_deadline
               ? call_result::cancelled
             : adapters::is_model_failure(r) ? call_result::failure
                                             : call_result::rejected;
    summary = r.failure != upstream_failure::none
                ? std::string{to_string(r.failure)} + ": " + r.detail
                : "HTTP " + std::to_string(r.status);
  }
  report(self, {result, r.status, latency, summary});
  if (r.past_deadline) {
    // The io thread has answered 504 already; this only ends the session.
    finish_with(self, error_of(errc::deadline_exceeded,
                               "The request did not finish within its "
                               "deadline"));
    return;
  }
  if (result != call_result::failure) {
    // The client's own mistake (4xx) or nobody left to answer: no fallback.
    http_reply reply;
    reply.error = std::move(err);
    reply.upstream_status = r.status;
    reply.upstream_time = r.elapsed;
    finish(self, std::move(reply));
    return;
  }
  // Nothing reached the client yet: retry or fall back, if time is left.
  st.attempts.push_back(model.alias + ": " + summary);
  if (steady_clock::now() >= st.ctx.deadline) {
    finish_with(self, error_of(errc::deadline_exceeded,
                               "The request did not finish within its "
                               "deadline"));
    return;
  }
  st.last_error = std::move(err);
  st.last_status = r.status;
  // A rate limit is not retried on the same model: the provider said when
  // to come back, and that is rarely within this request's time.
  if (st.retries < model.max_retries && r.status != 429) {
    auto wait = retry_backoff(++st.retries);
    if (steady_clock::now() + wait < st.ctx.deadline) {
      self->delayed_send(self, wait, atom::retry_v);
      return;
    }
  }
  next_candidate(self);
}

/// Calls the admitted model: locally (echo) or through the io thread.
void call_model(session_ptr self, route_decision d) {
  auto& st = self->state;
  st.decision = std::move(d);
  st.outcome_pending = true;
  st.attempt_start = steady_clock::now();
  const auto& model = *st.decision->settings;
  const auto& adapter = adapters::adapter_for(model.provider);
  if (adapter.local()) {
    auto response
      = adapter.respond_locally(st.ctx.body, model, st.ctx.request_id);
    auto elapsed
      = duration_cast<microseconds>(steady_clock::now() - st.attempt_start);
    if (!response) {
      auto err = to_api_error(response.error());
      report(self, {call_result::failure, 0, elapsed.count(), err.message});
      finish_with(self, std::move(err));
      return;
    }
    report(self, {call_result::success, 200, elapsed.count(), {}});
    // A stream request gets the whole local answer as one event stream.
    answer(self, std::move(*response), 0, microseconds{0});
    return;
  }
  auto request = adapter.to_provider_request(st.ctx.body, model);
  if (!request) {
    report(self, {call_result::cancelled, 0, 0, {}});
    finish_with(self, to_api_error(request.error()));
    return;
  }
  // No attempt runs past the request's deadline.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    st.ctx.deadline - steady_clock::now());
  if (left.count() <= 0) {
    report(self, {call_result::cancelled, 0, 0, "deadline"});
    give_up(self);
    return;
  }
  // The io thread answers 504 at the deadline itself; the attempt may run a
  // little longer so that answer always comes first.
  left += std::chrono::milliseconds{100};
  request->timeout = std::min(request->timeout, left);
  request->first_byte_timeout = std::min(request->first_byte_timeout, left);
  request->connect_timeout = std::min(request->connect_timeout, left);
  request->request_deadline = st.ctx.deadline;
  if (st.ctx.stream) {
    // The io thread relays a 2xx answer through this translator.
    request->stream = adapter.make_stream_decoder(st.decision->settings,
                                                  stream_options_of(self));
    request->idle_timeout = to_ms(model.idle_timeout);
    for (auto& h : request->headers)
      if (h.name == "Accept")
        h.value = "text/event-stream";
  }
  // No timer here: the io thread bounds the call by the model's timeout and
  // the whole request by server.request_deadline_seconds.
  auto handle = caf::actor_cast<session_actor>(self);
  if (!post_stage_empty(self)) {
    st.upstream(std::move(*request), [handle](upstream_result r) {
      caf::anon_send(handle, atom::upstream_v, std::move(r));
    });
    return;
  }
  // Fast path, run on the io thread: a successful answer is translated and
  // written at once, without a round trip through this actor; the SESSION
  // then only records the outcome. Anything else comes back here.
  auto reply = st.reply; // shares the once-only bridge state
  auto settings = st.decision->settings;
  auto options = st.ctx.stream
                   ? std::optional<stream_options>{stream_options_of(self)}
                   : std::nullopt;
  st.upstream(std::move(*request), [handle, reply, settings,
                                    options](upstream_result r) {
    if (r.streamed) {
      // The client already has the stream; only facts remain.
      reply(streamed_reply(r, settings->alias));
      caf::anon_send(handle, atom::outcome_v, stream_outcome(r));
      return;
    }
    if (is_success(r)) {
      const auto& model = *settings;
      auto response = adapters::adapter_for(model.provider)
                        .from_provider_response(r, model);
      if (response) {
        auto out = success_reply(std::move(*response), r.status, r.elapsed,
                                 model.alias);
        if (options) {
          // Asked for a stream, got a whole answer: send it as a stream.
          out.body = completion_to_sse(out.body, *options);
          out.content_type = "text/event-stream";
        }
        reply(std::move(out));
        caf::anon_send(
          handle, atom::outcome_v,
          call_outcome{call_result::success, r.status, r.elapsed.count(), {}});
        return;
      }
    }
    caf::anon_send(handle, atom::upstream_v, std::move(r));
  });
}

} // namespace

std::chrono::milliseconds retry_backoff(uint32_t n) {
  // One generator per thread: no sharing, no locks.
  thread_local std::mt19937 engine{std::random_device{}()};
  auto base = std::min<int64_t>(
    2000, int64_t{100} << std::min<uint32_t>(n > 0 ? n - 1 : 0, 5));
  std::uniform_int_distribution<int64_t> jitter{base / 2, base + base / 2};
  return std::chrono::milliseconds{jitter(engine)};
}

session_state::~session_state() {
  if (outcome_pending && decision)
    caf::anon_send(decision->model, atom::outcome_v,
                   call_outcome{call_result::cancelled, 0, 0, "session ended",
                                decision->probe});
}

session_actor::behavior_type
session(session_actor::stateful_pointer<session_state> self, chat_context ctx,
        router_actor router, reply_fn reply, upstream_fn upstream) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.router = std::move(router);
  st.reply = std::move(reply);
  st.upstream = std::move(upstream);
  run_pre_stage(self);
  resolve_request req{st.ctx.request_id, st.ctx.client, st.ctx.key_index,
                      st.ctx.requested_model, st.ctx.tags};
  // No timeout: the ROUTER always answers, a dead one fails the request at
  // once, and the io thread keeps the request's deadline.
  self->request(st.router, caf::infinite, atom::resolve_v, std::move(req))
    .then(
      [self](route_decision& d) {
        auto& rest = self->state.remaining;
        rest.assign(std::make_move_iterator(d.remaining.begin()),
                    std::make_move_iterator(d.remaining.end()));
        call_model(self, std::move(d));
      },
      [self](caf::error& err) {
        if (err.category() != caf::atom("pw")) {
          // A CAF error (the ROUTER is down or restarting): never show
          // CAF's internals to the client.
          finish_with(self, error_of(errc::overloaded,
                                     "The gateway's router is not "
                                     "available; retry the request"));
          return;
        }
        finish_with(self, to_api_error(err));
      });
  return {
    [self](atom::upstream, upstream_result& r) { on_upstream(self, r); },
    [self](atom::outcome, call_outcome& x) {
      report(self, std::move(x));
      self->state.reply = nullptr; // already answered by the io thread
      self->quit();
    },
    [self](atom::retry) {
      // The backoff is over: the same model again, if it still admits.
      auto& st = self->state;
      if (!st.decision || steady_clock::now() >= st.ctx.deadline) {
        give_up(self);
        return;
      }
      admit_and_call(self, candidate{st.decision->alias, st.decision->model});
    },
  };
}

} // namespace pw::actors
