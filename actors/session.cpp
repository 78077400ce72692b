#include "actors/session.hpp"

#include "adapters/adapter.hpp"
#include "core/errc.hpp"

#include <caf/all.hpp>

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

void answer(session_ptr self, adapters::chat_response response,
            unsigned upstream_status, microseconds upstream_time) {
  run_post_stage(self, response);
  http_reply reply;
  reply.status = 200;
  reply.body = response.body.dump(
      -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  reply.upstream_status = upstream_status;
  reply.upstream_time = upstream_time;
  reply.prompt_tokens = response.prompt_tokens;
  reply.completion_tokens = response.completion_tokens;
  finish(self, std::move(reply));
}

/// Handles a finished upstream exchange.
void on_upstream(session_ptr self, upstream_result& r) {
  auto& st = self->state;
  if (!st.decision || !st.outcome_pending)
    return; // a late result after the deadline answered
  const auto& model = *st.decision->settings;
  const auto& adapter = adapters::adapter_for(model.provider);
  auto latency = r.elapsed.count();
  if (r.failure == upstream_failure::none && r.status >= 200
      && r.status < 300) {
    auto response = adapter.from_provider_response(r, model);
    if (!response) {
      auto err = to_api_error(response.error());
      report(self, {call_result::failure, r.status, latency, err.message});
      finish_with(self, std::move(err));
      return;
    }
    report(self, {call_result::success, r.status, latency, {}});
    answer(self, std::move(*response), r.status, r.elapsed);
    return;
  }
  auto err = adapters::upstream_error(r, model);
  auto result = adapters::is_model_failure(r) ? call_result::failure
                                              : call_result::rejected;
  auto summary = r.failure != upstream_failure::none
                     ? std::string{to_string(r.failure)} + ": " + r.detail
                     : "HTTP " + std::to_string(r.status);
  report(self, {result, r.status, latency, summary});
  http_reply reply;
  reply.error = std::move(err);
  reply.upstream_status = r.status;
  reply.upstream_time = r.elapsed;
  finish(self, std::move(reply));
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
    answer(self, std::move(*response), 0, microseconds{0});
    return;
  }
  auto request = adapter.to_provider_request(st.ctx.body, model);
  if (!request) {
    report(self, {call_result::cancelled, 0, 0, {}});
    finish_with(self, to_api_error(request.error()));
    return;
  }
  // A safety net: the io thread enforces the model's timeout itself.
  self->delayed_send(self, to_ms(model.timeout) + deadline_grace,
                     atom::deadline_v);
  auto handle = caf::actor_cast<session_actor>(self);
  st.upstream(std::move(*request), [handle](upstream_result r) {
    caf::anon_send(handle, atom::upstream_v, std::move(r));
  });
}

} // namespace

session_state::~session_state() {
  if (outcome_pending && decision)
    caf::anon_send(decision->model, atom::outcome_v,
                   call_outcome{call_result::cancelled, 0, 0, "session ended"});
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
  self->request(st.router, resolve_timeout, atom::resolve_v, std::move(req))
      .then([self](route_decision& d) { call_model(self, std::move(d)); },
            [self](caf::error& err) {
              if (err == caf::sec::request_timeout) {
                finish_with(self, error_of(errc::deadline_exceeded,
                                           "The request timed out while "
                                           "choosing a model"));
                return;
              }
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
      [self](atom::deadline) {
        report(self, {call_result::cancelled, 0, 0, "deadline exceeded"});
        finish_with(self,
                    error_of(errc::deadline_exceeded,
                             "The request did not finish within its deadline"));
      },
  };
}

} // namespace pw::actors
