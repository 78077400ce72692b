#include "actors/session.hpp"

#include "adapters/adapter.hpp"
#include "core/boundary.hpp"
#include "core/errc.hpp"
#include "core/json/get.hpp"
#include "core/json_error.hpp"
#include "core/observe/log.hpp"
#include "core/policy/usage_estimate.hpp"
#include "core/sha256.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cctype>
#include <random>

namespace pw::actors {

namespace {

using session_ptr = session_actor::stateful_pointer<session_state>;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::steady_clock;

std::string_view kind_of(call_result x) {
  switch (x) {
  case call_result::success:
    return "success";
  case call_result::rejected:
    return "rejected";
  case call_result::cancelled:
    return "cancelled";
  case call_result::failure:
    break;
  }
  return "failure";
}

std::vector<attempt_fact> attempt_facts(const std::vector<attempt_note>& xs) {
  std::vector<attempt_fact> out;
  out.reserve(xs.size());
  for (const auto& x : xs)
    out.push_back({x.model, x.kind});
  return out;
}

/// The request's time left, for an admission's lease.
int64_t ttl_ms(session_ptr self) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    self->state.ctx.deadline - steady_clock::now());
  return std::max<int64_t>(left.count(), 0);
}

/// Gives back an admission that came after the request ended.
void give_back(const model_actor& model, uint64_t lease) {
  caf::anon_send(
    model, atom::outcome_v,
    call_outcome{call_result::cancelled, 0, 0, "request ended", lease});
}

/// Tells the admitted MODEL how its call ended; at most once per call.
void report(session_ptr self, call_outcome x) {
  auto& st = self->state;
  if (!st.outcome_pending || !st.decision)
    return;
  st.outcome_pending = false;
  if (st.tracing)
    end_attempt(*st.tracing, x);
  x.lease = st.decision->lease;
  self->send(st.decision->model, atom::outcome_v, std::move(x));
}

/// Sets the client's headers the endpoint passes on (chat_context::
/// forward_headers) on the upstream request, over the adapter's own.
void forward_headers(const chat_context& ctx, upstream_request& request) {
  for (const auto& h : ctx.forward_headers) {
    auto same = [&](const header_field& x) {
      return std::equal(x.name.begin(), x.name.end(), h.name.begin(),
                        h.name.end(), [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a))
                                 == std::tolower(static_cast<unsigned char>(b));
                        });
    };
    if (auto it
        = std::find_if(request.headers.begin(), request.headers.end(), same);
        it != request.headers.end())
      it->value = h.value;
    else
      request.headers.push_back(h);
  }
}

/// The translator between the client's API and the admitted model's
/// provider.
const adapters::adapter& adapter_of(session_ptr self) {
  const auto& st = self->state;
  return adapters::adapter_for(*st.decision->settings, st.ctx.endpoint);
}

bool post_stage_empty(session_ptr self) {
  return !self->state.plugins || self->state.plugins->post.empty();
}

stream_options stream_options_of(session_ptr self) {
  const auto& st = self->state;
  // The text of a stream is kept only for post PLUGINs, and bounded.
  auto keep = post_stage_empty(self) ? 0 : max_kept_stream_text;
  return {st.decision->alias, st.ctx.include_usage, st.ctx.request_id, keep};
}

/// Ends the SESSION once its client has the answer: every way out goes
/// through here, but a throw (CAF's exception handler ends the actor).
void end_session(session_ptr self) {
  auto& st = self->state;
  st.finished = true;
  st.reply = nullptr;
  if (st.tracing && st.tracer) {
    request_facts facts;
    facts.status = st.final_status;
    facts.error = st.final_error;
    facts.model = st.answered ? st.answered_by : std::string{};
    if (const auto* m = st.config->find_model(facts.model))
      facts.answered_by = m->get();
    facts.input_tokens = st.usage.prompt;
    facts.output_tokens = st.usage.completion;
    facts.usage_known = st.answered && st.usage.known;
    facts.route_reason = st.route_reason;
    facts.client = st.ctx.client;
    facts.requested_model = st.ctx.requested_model;
    auto spans = end_request(*st.tracing, facts);
    st.tracing.reset();
    if (spans.count > 0)
      self->send(st.tracer, atom::spans_v, std::move(spans));
  }
  self->quit();
}

/// Answers the client and ends the session.
void deliver(session_ptr self, http_reply reply) {
  auto& st = self->state;
  if (st.tracing) {
    st.final_status = reply.error         ? render_error(*reply.error).status
                      : reply.status != 0 ? reply.status
                                          : 200;
    if (reply.error)
      st.final_error = reply.error->message;
  }
  if (st.wrap_sse && !reply.error && !reply.streamed && st.decision) {
    // Asked for a stream, got a whole answer: send it as one.
    reply.body
      = adapter_of(self).whole_to_sse(reply.body, stream_options_of(self));
    reply.content_type = "text/event-stream";
  }
  if (st.reply) {
    auto fn = std::move(st.reply);
    st.reply = nullptr;
    fn(std::move(reply));
  }
  end_session(self);
}

/// What a PLUGIN sees of the request now.
plugin_request plugin_request_of(session_ptr self) {
  const auto& st = self->state;
  return {st.ctx.request_id,    st.ctx.client, st.ctx.endpoint,
          st.ctx.body.shared(), st.ctx.tags,   st.metadata};
}

/// A PLUGIN's error, in words for logs and clients (no secrets: plugin
/// errors are made by our own code).
std::string describe(const caf::error& err, const plugin_slot& slot) {
  if (err == caf::sec::request_timeout)
    return "did not answer within " + std::to_string(slot.timeout.count())
           + " ms";
  if (err.category() == caf::atom("pw"))
    return "failed: " + message_of(err);
  return "is not running";
}

/// Counts one call of `slot` that began at `sent` (for /health).
void count_call(const plugin_slot& slot, actor_stats::plugin_result result,
                std::chrono::steady_clock::time_point sent,
                std::string_view error = {}) {
  if (slot.stats)
    slot.stats->record(result,
                       std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - sent),
                       error);
}

/// How a failed call counts: a timeout, or a failure.
actor_stats::plugin_result result_of(const caf::error& err) {
  return err == caf::sec::request_timeout
           ? actor_stats::plugin_result::timed_out
           : actor_stats::plugin_result::failed;
}

/// How an answer counts.
actor_stats::plugin_result result_of(const plugin_verdict& v) {
  return v.block ? actor_stats::plugin_result::blocked
                 : actor_stats::plugin_result::passed;
}

void add_tags(std::vector<std::string>& to,
              const std::vector<std::string>& tags) {
  for (const auto& t : tags)
    if (std::find(to.begin(), to.end(), t) == to.end())
      to.push_back(t);
}

void merge_metadata(nlohmann::ordered_json& to,
                    const nlohmann::ordered_json& from) {
  if (from.is_object())
    for (const auto& [k, v] : from.items())
      to[k] = v;
}

/// Why this answer came from the model it came from: the ROUTER's reason,
/// and when earlier models of the route failed or were skipped, which ones
/// and how (`model:a; fallback to b after a: HTTP 503`). Printable ASCII,
/// as a header value must be; each outcome at most 120 bytes.
std::string route_reason_of(session_ptr self, bool answered) {
  const auto& st = self->state;
  if (!answered || !st.decision || st.route_reason.empty())
    return st.route_reason;
  const auto& serving = st.decision->alias;
  std::string before;
  for (const auto& a : st.attempts) {
    if (a.model == serving)
      continue;
    before += before.empty() ? "" : ", ";
    before += a.model + ": " + a.outcome.substr(0, 120);
  }
  if (before.empty())
    return st.route_reason;
  auto out = st.route_reason + "; fallback to " + serving + " after " + before;
  for (auto& c : out)
    if (c < 0x20 || c > 0x7e)
      c = '?';
  return out;
}

/// What the post plugins in `stream: hold` did to the stream, for the
/// audit line: per plugin, the redactions by kind and where it cut.
nlohmann::ordered_json held_metadata(session_ptr self) {
  const auto& st = self->state;
  auto out = nlohmann::ordered_json::array();
  for (const auto& r : st.held) {
    if (r.stage >= st.plugins->post.size())
      continue;
    const auto& slot = st.plugins->post[r.stage];
    nlohmann::ordered_json item{{"entry", slot.path}, {"plugin", slot.name}};
    if (!r.redacted.empty()) {
      auto& redacted = item["redacted"];
      for (const auto& [kind, n] : r.redacted)
        redacted[kind] = n;
    }
    if (r.cut) {
      item["cut_after_bytes"] = r.cut_after;
      item["message"] = r.message;
    }
    out.push_back(std::move(item));
  }
  return out;
}

/// How the request ended, for the post stage.
plugin_outcome outcome_of(session_ptr self, const http_reply& reply) {
  const auto& st = self->state;
  plugin_outcome out;
  out.request = plugin_request_of(self);
  out.request_sha256 = st.request_sha256;
  if (st.config)
    out.config_sha256 = st.config->source_sha256;
  out.stream_requested = st.ctx.stream;
  if (reply.error) {
    out.status = render_error(*reply.error).status;
    auto text = reply.error->code_text.empty()
                  ? std::string{row_of(reply.error->code).code_text}
                  : reply.error->code_text;
    out.error_code = std::move(text);
    out.error_message = reply.error->message;
  } else {
    out.status = reply.status;
    out.model = reply.model;
    if (reply.streamed) {
      out.streamed = true;
      out.stream_complete = reply.stream_complete;
      out.stream_text = st.stream_text;
      out.stream_text_truncated = st.stream_text_truncated;
      if (!st.held.empty())
        out.request.metadata["stream_policy"] = held_metadata(self);
    } else {
      out.response_body = std::make_shared<const std::string>(reply.body);
    }
  }
  out.attempts = st.attempts;
  out.route_reason = route_reason_of(self, !reply.error);
  out.blocked_by = st.blocked_by;
  out.prompt_tokens = reply.prompt_tokens;
  out.completion_tokens = reply.completion_tokens;
  out.latency = std::chrono::duration_cast<microseconds>(steady_clock::now()
                                                         - st.ctx.received);
  return out;
}

/// Replaces the answer with `err` (a post PLUGIN blocked it or failed),
/// keeping what the log line needs of the upstream call, and tells the
/// later post PLUGINs.
void replace_with_error(http_reply& reply, plugin_outcome& out, api_error err,
                        std::string log_error) {
  http_reply replaced;
  replaced.error = std::move(err);
  replaced.log_error = std::move(log_error);
  replaced.upstream_status = reply.upstream_status;
  replaced.upstream_time = reply.upstream_time;
  replaced.headers = std::move(reply.headers);
  // The call happened: the log line and the metrics still count it.
  replaced.model = std::move(reply.model);
  replaced.attempts = std::move(reply.attempts);
  replaced.upstream_total = reply.upstream_total;
  replaced.prompt_tokens = reply.prompt_tokens;
  replaced.completion_tokens = reply.completion_tokens;
  replaced.blocked_by = std::move(reply.blocked_by);
  reply = std::move(replaced);
  out.status = render_error(*reply.error).status;
  out.error_code = std::string{row_of(reply.error->code).code_text};
  out.error_message = reply.error->message;
  out.response_body = nullptr;
}

/// A post PLUGIN failed: fail closed unless `on_error: continue`. A
/// streamed answer has reached the client already; only the log says so.
void post_failed(session_ptr self, const plugin_slot& slot, http_reply& reply,
                 plugin_outcome& out, const std::string& why) {
  auto& st = self->state;
  bool closed = !slot.fail_open && !reply.streamed;
  log::write(log_level::error, "plugin_failed",
             {{"request_id", st.ctx.request_id},
              {"plugin", slot.name},
              {"entry", slot.path},
              {"error", why},
              {"action", closed           ? "request failed"
                         : slot.fail_open ? "continued (on_error: continue)"
                                          : "stream already sent"}});
  if (!closed)
    return;
  replace_with_error(
    reply, out,
    error_of(errc::plugin_failed, "The request could not be completed: the "
                                    + slot.name + " plugin " + why),
    "plugin_failed");
}

/// Applies a post PLUGIN's verdict to the reply and to what later post
/// PLUGINs see.
void apply_post(http_reply& reply, plugin_outcome& out, const plugin_slot& slot,
                plugin_verdict& v) {
  add_tags(out.request.tags, v.tags);
  merge_metadata(out.request.metadata, v.metadata);
  bool changeable = !reply.error && !reply.streamed;
  if (v.block && changeable) {
    auto err = error_of(errc::policy_blocked, v.message);
    err.status = v.status;
    replace_with_error(reply, out, std::move(err),
                       "blocked by plugin " + slot.name);
    out.blocked_by = slot.name;
    reply.blocked_by = slot.name;
    return;
  }
  if (v.body && changeable) {
    reply.body = v.body->dump(-1, ' ', false,
                              nlohmann::ordered_json::error_handler_t::replace);
    out.response_body = std::make_shared<const std::string>(reply.body);
  }
}

/// Runs post PLUGIN `i` and the ones after it, then answers.
void run_post(session_ptr self, size_t i, http_reply reply,
              std::shared_ptr<plugin_outcome> out) {
  auto& st = self->state;
  if (i >= st.plugins->post.size()) {
    deliver(self, std::move(reply));
    return;
  }
  const auto& slot = st.plugins->post[i];
  auto sent = std::chrono::steady_clock::now();
  if (!slot.actor) {
    count_call(slot, actor_stats::plugin_result::failed, sent,
               "is not running");
    post_failed(self, slot, reply, *out, "is not running");
    run_post(self, i + 1, std::move(reply), std::move(out));
    return;
  }
  auto held = std::make_shared<http_reply>(std::move(reply));
  if (st.tracing)
    begin_plugin(*st.tracing, "post", i, slot.name);
  self->request(slot.actor, slot.timeout, atom::post_v, *out)
    .then(
      [self, i, held, out, sent](plugin_verdict& v) {
        if (self->state.tracing)
          end_plugin(*self->state.tracing, v.block ? "block" : "continue");
        count_call(self->state.plugins->post[i], result_of(v), sent);
        apply_post(*held, *out, self->state.plugins->post[i], v);
        run_post(self, i + 1, std::move(*held), out);
      },
      [self, i, held, out, sent](caf::error& err) {
        const auto& slot = self->state.plugins->post[i];
        count_call(slot, result_of(err), sent, describe(err, slot));
        if (self->state.tracing)
          end_plugin(*self->state.tracing, "failed", describe(err, slot));
        post_failed(self, slot, *held, *out, describe(err, slot));
        run_post(self, i + 1, std::move(*held), out);
      });
}

/// Ends the request: the post stage sees how it ended (an answer, an
/// error, a relayed stream), then the client gets the reply.
void finish(session_ptr self, http_reply reply) {
  auto& st = self->state;
  st.finished = true;
  if (st.decision && reply.model.empty())
    reply.model = st.decision->alias;
  reply.attempts = attempt_facts(st.attempts);
  reply.upstream_total = st.upstream_spent;
  reply.blocked_by = st.blocked_by;
  if (!st.route_reason.empty())
    reply.headers.push_back(
      {"X-Route-Reason", route_reason_of(self, !reply.error)});
  for (const auto& h : st.limit_headers)
    reply.headers.push_back(h);
  if (!reply.error && !reply.model.empty() && !st.answered) {
    // What the answer used, for the LEDGER (a post plugin that blocks it
    // now does not undo what the provider spent).
    st.answered = true;
    st.answered_by = reply.model;
    st.usage
      = {reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens,
         reply.prompt_tokens + reply.completion_tokens > 0};
  }
  if (post_stage_empty(self) || st.post_started) {
    deliver(self, std::move(reply));
    return;
  }
  st.post_started = true;
  auto out = std::make_shared<plugin_outcome>(outcome_of(self, reply));
  run_post(self, 0, std::move(reply), std::move(out));
}

void finish_with(session_ptr self, api_error err) {
  http_reply reply;
  reply.error = std::move(err);
  finish(self, std::move(reply));
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
  reply.cached_tokens = response.cached_tokens;
  return reply;
}

void answer(session_ptr self, adapters::chat_response response,
            unsigned upstream_status, microseconds upstream_time) {
  auto& st = self->state;
  st.attempts.push_back({st.decision->alias, "ok", "success"});
  // The post stage sees the answer as JSON; events come after it.
  st.wrap_sse = st.ctx.stream;
  finish(self, success_reply(std::move(response), upstream_status,
                             upstream_time, st.decision->alias));
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
  reply.cached_tokens = r.summary.cached_tokens;
  if (r.client_gone)
    reply.log_error = "client_closed";
  else if (r.summary.policy_cut)
    reply.log_error = "policy_blocked";
  else if (!r.summary.complete)
    reply.log_error = "stream_failed";
  return reply;
}

/// How a relayed stream ended, for the MODEL: complete, cut by the client
/// or by the request's deadline (not the model's fault), or broken by the
/// upstream (which includes running past the model's own timeout).
call_outcome stream_outcome(const upstream_result& r) {
  // A held post plugin's cut is the policy's doing: the model answered.
  if (r.summary.complete || r.summary.policy_cut)
    return {call_result::success, r.status, r.elapsed.count(), {}};
  if (r.failure == upstream_failure::internal)
    return {call_result::cancelled, r.status, r.elapsed.count(),
            "gateway failure"};
  if (r.client_gone || r.past_deadline)
    return {call_result::cancelled, r.status, r.elapsed.count(),
            r.client_gone ? "client closed" : "deadline"};
  return {call_result::failure, r.status, r.elapsed.count(),
          "stream: " + r.summary.error};
}

void next_candidate(session_ptr self);

/// No candidate admitted the call: 503 with Retry-After set to when the
/// first refusing breaker admits a probe (1 s when no refusal said).
void nothing_admits(session_ptr self) {
  auto soonest = self->state.soonest_retry_ms;
  auto secs = soonest > 0 ? (soonest + 999) / 1000 : 1;
  auto err = error_of(errc::no_model_available,
                      "No model of the route is available now (circuit open "
                      "or at capacity)");
  err.retry_after = static_cast<unsigned>(secs);
  finish_with(self, std::move(err));
}

/// Every attempt failed (or none could start): the client gets the last
/// failure when there was one attempt, a 429 relayed when the last failure
/// was the provider's rate limit, else a 502 summarising each attempt.
void give_up(session_ptr self) {
  auto& st = self->state;
  if (!st.last_error) {
    if (steady_clock::now() < st.ctx.deadline) {
      nothing_admits(self);
      return;
    }
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
      text += st.attempts[i].model + ": " + st.attempts[i].outcome;
    }
    err = error_of(errc::upstream_failed, std::move(text));
  }
  http_reply reply;
  reply.error = std::move(err);
  reply.upstream_status = st.last_status;
  finish(self, std::move(reply));
}

void call_model(session_ptr self, route_decision d);

/// A candidate that did not admit the call. Once the request has made an
/// attempt (fallback, retry) it is an attempt of its own, `skipped (why)`;
/// before the first admission it is passed over without one, so the
/// attempts, the 502 summary and the metrics count only what happened
/// after the route's first admitted model (/health shows the breakers).
void note_skip(session_ptr self, const std::string& alias,
               const std::string& why) {
  auto& st = self->state;
  if (st.tracing)
    note_skipped(*st.tracing, alias, why);
  if (st.decision)
    st.attempts.push_back({alias, "skipped (" + why + ")", "skipped"});
}

/// Asks `c`'s MODEL for admission and calls it, or moves on.
void admit_and_call(session_ptr self, candidate c) {
  auto alias = c.alias;
  auto handle = c.model;
  self
    ->request(handle, caf::infinite, atom::admit_v, admit_request{ttl_ms(self)})
    .then(
      [self, alias, handle](admission& a) {
        if (self->state.finished) {
          if (a.admitted)
            give_back(handle, a.lease);
          return;
        }
        if (!a.admitted) {
          auto& st = self->state;
          note_skip(self, alias, a.reason);
          if (a.retry_after_ms > 0
              && (st.soonest_retry_ms == 0
                  || a.retry_after_ms < st.soonest_retry_ms))
            st.soonest_retry_ms = a.retry_after_ms;
          next_candidate(self);
          return;
        }
        call_model(self, decision_for(alias, handle, std::move(a)));
      },
      [self, alias](caf::error&) {
        if (self->state.finished)
          return;
        note_skip(self, alias, "not responding");
        next_candidate(self);
      });
}

/// Asks the next candidate of the route for admission, if time is left:
/// the first attempt, and each fallback after a failure or a refusal.
void next_candidate(session_ptr self) {
  auto& st = self->state;
  st.retries = 0;
  if (st.next >= st.remaining.size()
      || steady_clock::now() >= st.ctx.deadline) {
    give_up(self);
    return;
  }
  auto c = std::move(st.remaining[st.next++]);
  admit_and_call(self, std::move(c));
}

/// A relayed stream ended: the post stage may record it, not change it.
void stream_ended(session_ptr self, upstream_result& r) {
  auto& st = self->state;
  const auto& alias = st.decision->alias;
  auto outcome = stream_outcome(r);
  st.attempts.push_back({alias, outcome.error.empty() ? "ok" : outcome.error,
                         kind_of(outcome.result)});
  st.stream_text = std::move(r.summary.text);
  st.stream_text_truncated = r.summary.text_truncated;
  st.held = std::move(r.summary.held);
  report(self, std::move(outcome));
  auto reply = streamed_reply(r, alias);
  if (r.summary.policy_cut)
    for (const auto& h : st.held)
      if (h.cut && h.stage < st.plugins->post.size()) {
        st.blocked_by = st.plugins->post[h.stage].name;
        reply.blocked_by = st.blocked_by;
      }
  finish(self, std::move(reply));
}

/// What a failed (non-streamed) exchange means: the client's error, how
/// it counts for the MODEL, and the attempt's summary.
struct failure_verdict {
  api_error err;
  call_result result = call_result::failure;
  std::string summary;
};

/// The verdict on an exchange that did not end in a 2xx.
failure_verdict judge_failure(const upstream_result& r,
                              const model_config& model) {
  failure_verdict v;
  v.err = adapters::upstream_error(r, model);
  // Cut by the request's deadline or by the gateway's own failure: the
  // model was not given its time, or is not to blame.
  v.result = r.failure == upstream_failure::cancelled
                 || r.failure == upstream_failure::internal || r.past_deadline
               ? call_result::cancelled
             : adapters::is_model_failure(r) ? call_result::failure
                                             : call_result::rejected;
  v.summary = r.failure != upstream_failure::none
                ? std::string{to_string(r.failure)} + ": " + r.detail
                : "HTTP " + std::to_string(r.status);
  return v;
}

api_error deadline_error() {
  return error_of(errc::deadline_exceeded,
                  "The request did not finish within its deadline");
}

api_error client_closed_error() {
  return error_of(errc::client_closed,
                  "The client closed its connection before the answer");
}

/// The client left while the model worked and the io thread cut the
/// exchange: the model is not at fault, and nothing more is tried for
/// nobody. The post stage and the log line see client_closed.
void left_during_call(session_ptr self, const upstream_result& r) {
  auto& st = self->state;
  report(self, {call_result::cancelled, r.status, r.elapsed.count(),
                "client closed"});
  st.attempts.push_back(
    {st.decision->alias, "client closed", kind_of(call_result::cancelled)});
  http_reply reply;
  reply.error = client_closed_error();
  reply.upstream_status = r.status;
  reply.upstream_time = r.elapsed;
  finish(self, std::move(reply));
}

void retry_or_fall_back(session_ptr self, api_error err, unsigned status);

/// What a stream's summary says the answer used.
token_usage usage_of(const stream_summary& s) {
  return {s.prompt_tokens, s.completion_tokens, s.cached_tokens,
          s.prompt_tokens + s.completion_tokens > 0};
}

/// Handles a finished upstream exchange.
void on_upstream(session_ptr self, upstream_result& r) {
  auto& st = self->state;
  if (!st.decision || !st.outcome_pending || st.finished)
    return; // nothing is waiting for a result
  inject_fault(boundary::session);
  const auto& model = *st.decision->settings;
  const auto& adapter = adapter_of(self);
  auto latency = r.elapsed.count();
  st.upstream_spent += r.elapsed;
  if (r.streamed) {
    stream_ended(self, r);
    return;
  }
  if (r.client_gone) {
    left_during_call(self, r);
    return;
  }
  failure_verdict verdict;
  if (is_success(r)) {
    auto response = adapter.from_provider_response(r, model);
    if (response) {
      report(self, {call_result::success, r.status, latency, {}});
      answer(self, std::move(*response), r.status, r.elapsed);
      return;
    }
    // A 2xx that is not a chat answer is the provider's failure.
    verdict = {to_api_error(response.error()), call_result::failure,
               "malformed response"};
  } else {
    verdict = judge_failure(r, model);
  }
  auto& [err, result, summary] = verdict;
  report(self, {result, r.status, latency, summary});
  if (result != call_result::failure)
    st.attempts.push_back({model.alias, summary, kind_of(result)});
  if (r.past_deadline) {
    // The io thread has answered 504 already; this only ends the session.
    finish_with(self, deadline_error());
    return;
  }
  if (st.client_gone) {
    // An exchange that ended before the io thread could cut it: the MODEL
    // hears how, but nothing more is tried for nobody. (An answer that
    // made it is used above: it was paid for.)
    if (result == call_result::failure)
      st.attempts.push_back({model.alias, summary, "failure"});
    finish_with(self, client_closed_error());
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
  st.attempts.push_back({model.alias, summary, "failure"});
  retry_or_fall_back(self, std::move(err), r.status);
}

/// Nothing reached the client yet: the same model again after a backoff,
/// or the next candidate, if time is left.
void retry_or_fall_back(session_ptr self, api_error err, unsigned status) {
  auto& st = self->state;
  const auto& model = *st.decision->settings;
  if (steady_clock::now() >= st.ctx.deadline) {
    finish_with(self, deadline_error());
    return;
  }
  st.last_error = std::move(err);
  st.last_status = status;
  // A rate limit is not retried on the same model: the provider said when
  // to come back, and that is rarely within this request's time.
  if (st.retries < model.max_retries && status != 429) {
    auto wait = retry_backoff(++st.retries);
    if (steady_clock::now() + wait < st.ctx.deadline) {
      self->delayed_send(self, wait, atom::retry_v);
      return;
    }
  }
  next_candidate(self);
}

/// The io thread stopped waiting. At the deadline the client got its 504
/// already; the post stage still records how the request ended, and the
/// MODEL gets its admission back. A client that left: the exchange in
/// flight (if any) was cut by the io thread, and its result ends the
/// request; otherwise it ends here.
void on_cancel(session_ptr self, cancel_reason why) {
  auto& st = self->state;
  // The client got no answer from this SESSION, whatever it still does.
  st.ended_as = why == cancel_reason::client_left
                  ? actor_stats::session_end::cancelled
                  : actor_stats::session_end::deadline;
  if (st.finished)
    return;
  if (why == cancel_reason::client_left) {
    st.client_gone = true;
    if (st.outcome_pending)
      return;
    finish_with(self, client_closed_error());
    return;
  }
  report(self, {call_result::cancelled, 0, 0, "deadline"});
  finish_with(self, deadline_error());
}

void fast_path(const session_actor& handle, const reply_fn& reply,
               const adapters::adapter& adapter, const model_config& model,
               const std::optional<stream_options>& options,
               const std::vector<header_field>& headers,
               const std::vector<attempt_fact>& facts,
               std::chrono::microseconds spent, upstream_result r);

/// Answers from the gateway itself (echo): no io thread, no wait.
void call_locally(session_ptr self) {
  auto& st = self->state;
  const auto& model = *st.decision->settings;
  const auto& adapter = adapter_of(self);
  auto response
    = adapter.respond_locally(st.ctx.body, model, st.ctx.request_id);
  auto elapsed
    = duration_cast<microseconds>(steady_clock::now() - st.attempt_start);
  st.upstream_spent += elapsed;
  if (!response) {
    auto err = to_api_error(response.error());
    report(self, {call_result::failure, 0, elapsed.count(), err.message});
    finish_with(self, std::move(err));
    return;
  }
  report(self, {call_result::success, 200, elapsed.count(), {}});
  // A stream request gets the whole local answer as one event stream.
  answer(self, std::move(*response), 0, microseconds{0});
}

/// The events a client of `endpoint` reads.
stream_format format_of(api_endpoint endpoint) {
  switch (endpoint) {
  case api_endpoint::completions:
    return stream_format::completions;
  case api_endpoint::messages:
    return stream_format::messages;
  default:
    return stream_format::chat;
  }
}

/// Bounds the attempt by the request's deadline (no attempt runs past it)
/// and, for a stream, readies the relay. False when no time is left.
bool prepare_attempt(session_ptr self, upstream_request& request) {
  auto& st = self->state;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    st.ctx.deadline - steady_clock::now());
  if (left.count() <= 0)
    return false;
  // The io thread answers 504 at the deadline itself; the attempt may run a
  // little longer so that answer always comes first.
  left += std::chrono::milliseconds{100};
  request.timeout = std::min(request.timeout, left);
  request.first_byte_timeout = std::min(request.first_byte_timeout, left);
  request.connect_timeout = std::min(request.connect_timeout, left);
  request.request_deadline = st.ctx.deadline;
  request.request_id = st.ctx.request_id;
  if (!st.ctx.stream)
    return true;
  // The io thread relays a 2xx answer through this translator, and
  // through the post plugins that hold streams, if any.
  const auto& model = *st.decision->settings;
  auto options = stream_options_of(self);
  if (st.plugins && st.plugins->held) {
    auto inner = options;
    inner.keep_text = 0; // the guard keeps the text the client gets
    request.stream = hold_stream(
      adapter_of(self).make_stream_decoder(st.decision->settings, inner),
      format_of(st.ctx.endpoint), std::move(options), st.plugins->held);
  } else {
    request.stream = adapter_of(self).make_stream_decoder(st.decision->settings,
                                                          std::move(options));
  }
  request.idle_timeout = to_ms(model.idle_timeout);
  request.response_headers.push_back(
    {"X-Route-Reason", route_reason_of(self, true)});
  for (const auto& h : st.limit_headers)
    request.response_headers.push_back(h);
  request.received = st.ctx.received;
  request.upstream_before = st.upstream_spent;
  // A stream of server-sent events, unless the adapter asked for another
  // kind (Bedrock's binary event stream).
  for (auto& h : request.headers)
    if (h.name == "Accept" && h.value == "application/json")
      h.value = "text/event-stream";
  return true;
}

/// Fast path, run on the io thread: a successful answer is translated and
/// written at once, without a round trip through this actor; the SESSION
/// then only records the outcome. Anything else comes back here.
upstream_done fast_path_done(session_ptr self) {
  auto& st = self->state;
  auto handle = caf::actor_cast<session_actor>(self);
  auto reply = st.reply; // shares the once-only bridge state
  const auto* adapter = &adapter_of(self);
  auto settings = st.decision->settings;
  auto options = st.ctx.stream
                   ? std::optional<stream_options>{stream_options_of(self)}
                   : std::nullopt;
  auto headers = st.limit_headers;
  headers.insert(headers.begin(),
                 {"X-Route-Reason", route_reason_of(self, true)});
  // The attempts before this one, for the metrics of an answer that never
  // comes back here.
  auto facts = attempt_facts(st.attempts);
  auto spent = st.upstream_spent;
  auto id = st.ctx.request_id;
  return [handle, reply, adapter, settings, options, headers, facts, spent,
          id](upstream_result r) {
    // Translating on the io thread is input handling: a failure here ends
    // this request with a 500 through the SESSION, never the io thread.
    try {
      inject_fault(boundary::upstream_done);
      fast_path(handle, reply, *adapter, *settings, options, headers, facts,
                spent, std::move(r));
    } catch (...) {
      report_failure(boundary::upstream_done, id, current_exception_text());
      upstream_result failed;
      failed.failure = upstream_failure::internal;
      failed.detail = "the gateway failed while reading the answer";
      caf::anon_send(handle, atom::upstream_v, std::move(failed));
    }
  };
}

/// Calls the admitted model: locally (echo) or through the io thread.
void call_model(session_ptr self, route_decision d) {
  auto& st = self->state;
  st.decision = std::move(d);
  st.outcome_pending = true;
  st.attempt_start = steady_clock::now();
  const auto& model = *st.decision->settings;
  const auto& adapter = adapter_of(self);
  if (st.tracing)
    begin_attempt(*st.tracing, model);
  if (adapter.local()) {
    call_locally(self);
    return;
  }
  if (!st.decision->credential_error.empty()) {
    // No token to call with: a failed attempt of the model (502 with the
    // reason, or the next model of the chain).
    upstream_result none;
    none.failure = upstream_failure::credentials;
    none.detail = st.decision->credential_error;
    on_upstream(self, none);
    return;
  }
  auto request = adapter.to_provider_request(st.ctx.body, model);
  // The client's headers for Anthropic (anthropic-version, -beta) go to
  // Anthropic only.
  if (request && adapter.takes_anthropic_headers())
    forward_headers(st.ctx, *request);
  if (request && st.tracing)
    add_trace_headers(*st.tracing, request->headers);
  if (!request) {
    report(self, {call_result::cancelled, 0, 0, {}});
    finish_with(self, to_api_error(request.error()));
    return;
  }
  if (!prepare_attempt(self, *request)) {
    report(self, {call_result::cancelled, 0, 0, "deadline"});
    give_up(self);
    return;
  }
  // No timer here: the io thread bounds the call by the model's timeout and
  // the whole request by server.request_deadline_seconds.
  if (post_stage_empty(self)) {
    st.upstream(std::move(*request), fast_path_done(self));
    return;
  }
  auto handle = caf::actor_cast<session_actor>(self);
  st.upstream(std::move(*request), [handle](upstream_result r) {
    caf::anon_send(handle, atom::upstream_v, std::move(r));
  });
}

/// The io thread's side of call_model's fast path: answers a success (or a
/// relayed stream) at once and tells the SESSION only the outcome; hands
/// anything else to the SESSION.
void fast_path(const session_actor& handle, const reply_fn& reply,
               const adapters::adapter& adapter, const model_config& model,
               const std::optional<stream_options>& options,
               const std::vector<header_field>& headers,
               const std::vector<attempt_fact>& facts,
               std::chrono::microseconds spent, upstream_result r) {
  auto with_facts = [&](http_reply out, call_result result) {
    out.attempts = facts;
    out.attempts.push_back({model.alias, kind_of(result)});
    out.upstream_total = spent + r.elapsed;
    return out;
  };
  // The outcome is sent before the reply: with the actors on the io
  // threads, the SESSION then runs (and hands it to the MODEL) before this
  // thread writes the answer, so a client that reads /health right after
  // its answer finds it counted.
  if (r.streamed) {
    // The client already has the stream; only facts remain.
    auto outcome = stream_outcome(r);
    auto result = outcome.result;
    caf::anon_send(handle, atom::outcome_v, std::move(outcome),
                   usage_of(r.summary));
    reply(with_facts(streamed_reply(r, model.alias), result));
    return;
  }
  if (is_success(r)) {
    auto response = adapter.from_provider_response(r, model);
    if (response) {
      auto out
        = success_reply(std::move(*response), r.status, r.elapsed, model.alias);
      out.headers.insert(out.headers.end(), headers.begin(), headers.end());
      call_outcome outcome{
        call_result::success, r.status, r.elapsed.count(), {}};
      token_usage usage{out.prompt_tokens, out.completion_tokens,
                        out.cached_tokens,
                        out.prompt_tokens + out.completion_tokens > 0};
      if (options) {
        // Asked for a stream, got a whole answer: send it as a stream.
        out.body = adapter.whole_to_sse(out.body, *options);
        out.content_type = "text/event-stream";
      }
      caf::anon_send(handle, atom::outcome_v, std::move(outcome), usage);
      reply(with_facts(std::move(out), call_result::success));
      return;
    }
  }
  caf::anon_send(handle, atom::upstream_v, std::move(r));
}

/// Whether the request's key or its team has usage limits.
bool governed(session_ptr self) {
  const auto& st = self->state;
  if (!st.config || !st.ledger
      || st.ctx.key_index >= st.config->server.api_keys.size())
    return false;
  // Counting tokens spends none: not a request the limits are about.
  if (st.ctx.endpoint == api_endpoint::count_tokens)
    return false;
  const auto& key = st.config->server.api_keys[st.ctx.key_index];
  if (key.limits.any())
    return true;
  const auto* team
    = key.team.empty() ? nullptr : st.config->find_team(key.team);
  return team != nullptr && team->limits.any();
}

/// The LEDGER's request for this one: the estimate of its prompt, its most
/// output, and the route's models.
usage_request usage_request_of(session_ptr self) {
  const auto& st = self->state;
  const auto& key = st.config->server.api_keys[st.ctx.key_index];
  usage_request req;
  req.request_id = st.ctx.request_id;
  req.client = key.name;
  req.team = key.team;
  for (const auto& c : st.remaining)
    req.models.push_back(c.alias);
  const auto& raw = st.ctx.body.raw();
  if (!raw.empty()) {
    req.prompt_tokens = estimate_prompt_tokens(raw.size());
    req.max_output = requested_output(std::string_view{raw});
  } else {
    const auto& doc = st.ctx.body.json();
    req.prompt_tokens = estimate_prompt_tokens(json::dump(doc).size());
    req.max_output = requested_output(doc);
  }
  if (req.max_output == 0 && st.ctx.endpoint != api_endpoint::embeddings)
    for (const auto& alias : req.models)
      if (const auto* m = st.config->find_model(alias))
        req.max_output = std::max(req.max_output, (*m)->default_max_tokens);
  return req;
}

/// A governed stream settles on the provider's usage: OpenAI-compatible
/// servers report it only when `stream_options.include_usage` asks, so
/// the gateway asks (the decoders relay that chunk only to a client that
/// asked too). Anthropic streams always report usage.
void ask_stream_usage(session_ptr self) {
  auto& st = self->state;
  if (!st.ctx.stream || st.ctx.include_usage
      || (st.ctx.endpoint != api_endpoint::chat
          && st.ctx.endpoint != api_endpoint::completions))
    return;
  auto& doc = st.ctx.body.mutable_json();
  if (!doc.is_object())
    return;
  auto& opts = doc["stream_options"];
  if (!opts.is_object())
    opts = nlohmann::ordered_json::object();
  opts["include_usage"] = true;
}

/// Reserves the request's worst case at the LEDGER, then walks the route;
/// a refusal answers 429 (or 503 without the usage state).
void reserve_usage(session_ptr self) {
  auto& st = self->state;
  self
    ->request(st.ledger, caf::infinite, atom::reserve_v, usage_request_of(self))
    .then(
      [self](usage_grant& g) {
        auto& st = self->state;
        st.limit_headers = std::move(g.headers);
        // Kept even when the request was cancelled meanwhile: the session's
        // end settles it, with nothing charged.
        st.hold = g.hold;
        if (st.finished)
          return;
        if (g.refusal) {
          http_reply reply;
          reply.error = std::move(*g.refusal);
          reply.log_error = "usage limit";
          finish(self, std::move(reply));
          return;
        }
        if (g.hold != 0)
          ask_stream_usage(self);
        next_candidate(self);
      },
      [self](caf::error&) {
        if (self->state.finished)
          return;
        auto err = error_of(errc::usage_unavailable,
                            "The gateway's usage ledger is not available; "
                            "retry the request");
        err.retry_after = 1;
        finish_with(self, std::move(err));
      });
}

/// Asks the ROUTER for the request's candidates and walks them.
void start_route(session_ptr self) {
  auto& st = self->state;
  resolve_request req{st.ctx.request_id,      st.ctx.client, st.ctx.key_index,
                      st.ctx.requested_model, st.ctx.tags,   st.ctx.endpoint};
  // No timeout: the ROUTER always answers, a dead one fails the request at
  // once, and the io thread keeps the request's deadline.
  self->request(st.router, caf::infinite, atom::resolve_v, std::move(req))
    .then(
      [self](route_plan& plan) {
        auto& st = self->state;
        if (st.finished)
          return;
        st.route_reason = std::move(plan.reason);
        st.remaining = std::move(plan.candidates);
        st.next = 0;
        if (governed(self))
          reserve_usage(self);
        else
          next_candidate(self);
      },
      [self](caf::error& err) {
        if (self->state.finished)
          return;
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
}

/// A pre PLUGIN blocked the request: it goes no further.
void blocked(session_ptr self, const plugin_slot& slot, plugin_verdict& v) {
  auto& st = self->state;
  st.blocked_by = slot.name;
  http_reply reply;
  reply.error = error_of(errc::policy_blocked, v.message);
  reply.error->status = v.status;
  reply.log_error = "blocked by plugin " + slot.name;
  finish(self, std::move(reply));
}

/// A pre PLUGIN failed or did not answer: fail closed unless the entry
/// says `on_error: continue`. True when the request may go on.
bool pre_failed(session_ptr self, const plugin_slot& slot,
                const std::string& why) {
  auto& st = self->state;
  log::write(log_level::error, "plugin_failed",
             {{"request_id", st.ctx.request_id},
              {"plugin", slot.name},
              {"entry", slot.path},
              {"error", why},
              {"action", slot.fail_open ? "continued (on_error: continue)"
                                        : "request refused"}});
  if (slot.fail_open)
    return true;
  http_reply reply;
  reply.error
    = error_of(errc::plugin_failed, "The request could not be checked: the "
                                      + slot.name + " plugin " + why);
  reply.log_error = "plugin_failed";
  finish(self, std::move(reply));
  return false;
}

/// Applies a pre PLUGIN's changes to the request.
void apply_pre(session_ptr self, plugin_verdict& v) {
  auto& st = self->state;
  add_tags(st.ctx.tags, v.tags);
  merge_metadata(st.metadata, v.metadata);
  if (v.body && v.body->is_object()) {
    // The model is read after the plugins (pw-router's rule); whether the
    // answer streams was settled with the connection and stays.
    st.ctx.requested_model = string_or(*v.body, "model");
    st.ctx.body = chat_payload{std::move(v.body)};
  }
}

/// Runs pre PLUGIN `i` and the ones after it, then routes the request.
void run_pre(session_ptr self, size_t i) {
  auto& st = self->state;
  if (!st.plugins || i >= st.plugins->pre.size()) {
    start_route(self);
    return;
  }
  const auto& slot = st.plugins->pre[i];
  auto sent = std::chrono::steady_clock::now();
  if (!slot.actor) {
    count_call(slot, actor_stats::plugin_result::failed, sent,
               "is not running");
    if (pre_failed(self, slot, "is not running"))
      run_pre(self, i + 1);
    return;
  }
  if (st.tracing)
    begin_plugin(*st.tracing, "pre", i, slot.name);
  self->request(slot.actor, slot.timeout, atom::pre_v, plugin_request_of(self))
    .then(
      [self, i, sent](plugin_verdict& v) {
        if (self->state.tracing)
          end_plugin(*self->state.tracing, v.block ? "block" : "continue");
        count_call(self->state.plugins->pre[i], result_of(v), sent);
        if (self->state.finished)
          return;
        const auto& slot = self->state.plugins->pre[i];
        if (v.block) {
          // What the blocking plugin found is recorded, not sent on.
          v.body = nullptr;
          apply_pre(self, v);
          blocked(self, slot, v);
          return;
        }
        apply_pre(self, v);
        run_pre(self, i + 1);
      },
      [self, i, sent](caf::error& err) {
        const auto& failed = self->state.plugins->pre[i];
        count_call(failed, result_of(err), sent, describe(err, failed));
        if (self->state.tracing)
          end_plugin(*self->state.tracing, "failed", describe(err, failed));
        if (self->state.finished)
          return;
        const auto& slot = self->state.plugins->pre[i];
        if (pre_failed(self, slot, describe(err, slot)))
          run_pre(self, i + 1);
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
  actor_stats::session_ended(ended_as);
  if (outcome_pending && decision)
    caf::anon_send(decision->model, atom::outcome_v,
                   call_outcome{call_result::cancelled, 0, 0, "session ended",
                                decision->lease});
  if (hold != 0 && ledger) {
    // What the answer used replaces the reservation; without an answer
    // nothing is charged; an answer without usage is charged whole.
    usage_settlement x;
    x.hold = hold;
    if (answered) {
      x.model = answered_by;
      x.usage = usage;
      x.charge_reservation = !usage.known;
    }
    caf::anon_send(ledger, atom::settle_v, std::move(x));
  }
}

session_actor::behavior_type
session(session_actor::stateful_pointer<session_state> self, chat_context ctx,
        gateway_config_ptr config, router_actor router, ledger_actor ledger,
        plugin_set_ptr plugins, reply_fn reply, upstream_fn upstream,
        tracer_actor tracer) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.config = std::move(config);
  st.router = std::move(router);
  st.ledger = std::move(ledger);
  st.plugins = std::move(plugins);
  st.reply = std::move(reply);
  st.upstream = std::move(upstream);
  if (tracer) {
    st.tracing = begin_request(st.ctx, st.config->tracing);
    if (st.tracing && st.tracing->recording)
      st.tracer = std::move(tracer);
  }
  // A handler that throws ends this request only: the client gets a 500 at
  // once (the post stage cannot run any more), the failure is logged with
  // the request id and counted, and the state's destructor gives the
  // admission back.
  self->set_exception_handler([self](std::exception_ptr& eptr) -> caf::error {
    auto& st = self->state;
    std::string what;
    try {
      std::rethrow_exception(eptr);
    } catch (...) {
      what = current_exception_text();
    }
    report_failure(boundary::session, st.ctx.request_id, what);
    st.finished = true;
    if (auto fn = std::move(st.reply)) {
      st.reply = nullptr;
      http_reply r;
      r.error = error_of(errc::internal, std::string{internal_failure_message});
      fn(std::move(r));
    }
    return caf::exit_reason::unhandled_exception;
  });
  if (!post_stage_empty(self))
    st.request_sha256 = to_hex(sha256(st.ctx.body.raw()));
  if (st.ctx.token_input && st.plugins && !st.plugins->pre.empty()) {
    // Token ids are not text: passing them would pass them unread.
    std::string field
      = st.ctx.endpoint == api_endpoint::completions ? "prompt" : "input";
    auto err = error_of(errc::invalid_request,
                        "'" + field
                          + "' as token ids cannot be checked by this "
                            "gateway's plugins; send text instead.");
    err.param = std::move(field);
    finish_with(self, std::move(err));
  } else if (st.ctx.stream && st.plugins && st.plugins->refuses_streams) {
    // A post plugin that must see whole answers: a stream would avoid it.
    const auto& slot = st.plugins->post[*st.plugins->refuses_streams];
    auto err = error_of(
      errc::invalid_request,
      "Streaming is not available on this gateway: its " + slot.name
        + " plugin (" + slot.path
        + ") checks whole answers (stream: refuse). Send the request "
          "without \"stream\": true.");
    err.param = "stream";
    finish_with(self, std::move(err));
  } else {
    run_pre(self, 0);
  }
  return {
    [self](atom::upstream, upstream_result& r) { on_upstream(self, r); },
    [self](atom::outcome, call_outcome& x, token_usage& usage) {
      // The fast path: the io thread answered the client already.
      // Either kind means the client got an answer, or part of a stream:
      // what the provider spent is charged either way.
      auto& st = self->state;
      if (st.decision) {
        st.answered = true;
        st.answered_by = st.decision->alias;
        st.usage = usage;
      }
      st.final_status = 200;
      report(self, std::move(x));
      end_session(self);
    },
    [self](atom::retry) {
      // The backoff is over: the same model again, if it still admits.
      auto& st = self->state;
      if (st.finished)
        return;
      if (!st.decision || steady_clock::now() >= st.ctx.deadline) {
        give_up(self);
        return;
      }
      admit_and_call(self, candidate{st.decision->alias, st.decision->model});
    },
    [self](atom::cancel, cancel_reason why) { on_cancel(self, why); },
  };
}

} // namespace pw::actors
