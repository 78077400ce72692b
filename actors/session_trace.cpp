#include "actors/session_trace.hpp"

#include <random>
#include <utility>

namespace pw::actors {

namespace {

/// Room for a span's attributes without growing (the server span has 11
/// at most), and for a request's encoded spans (about 1 KB each).
constexpr size_t attribute_room = 12;
constexpr size_t encoded_room = 2048;

std::string_view operation_of(api_endpoint e) {
  switch (e) {
  case api_endpoint::completions:
    return "text_completion";
  case api_endpoint::embeddings:
    return "embeddings";
  default:
    return "chat";
  }
}

bool sampled(double ratio) {
  if (ratio >= 1.0)
    return true;
  if (ratio <= 0.0)
    return false;
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>{0.0, 1.0}(engine) < ratio;
}

trace::span open_span(const request_tracing& t, std::string name,
                      trace::span_kind kind) {
  trace::span s;
  s.name = std::move(name);
  s.kind = kind;
  s.id = trace::new_span_id();
  s.parent = t.server.id;
  s.start_ns = trace::now_ns();
  s.attributes.reserve(attribute_room);
  return s;
}

void close_span(request_tracing& t, std::optional<trace::span>& s) {
  if (!s)
    return;
  s->end_ns = trace::now_ns();
  trace::append_span(t.done, t.context, t.request_id, *s);
  s.reset();
}

} // namespace

std::string genai_provider(std::string_view provider) {
  if (provider == "bedrock")
    return "aws.bedrock";
  if (provider == "vertex")
    return "gcp.vertex_ai";
  if (provider == "gemini")
    return "gcp.gemini";
  if (provider == "azure")
    return "azure.ai.openai";
  if (provider == "echo")
    return "pw_router.echo";
  return std::string{provider};
}

std::unique_ptr<request_tracing> begin_request(const chat_context& ctx,
                                               const tracing_config& cfg) {
  if (!cfg.enabled())
    return nullptr;
  auto t = std::make_unique<request_tracing>();
  if (auto client = trace::parse_traceparent(ctx.traceparent)) {
    t->context = *client;
    t->from_client = true;
    if (trace::passable_tracestate(ctx.tracestate))
      t->context.state = ctx.tracestate;
    t->recording = (client->flags & 1) != 0;
  } else {
    t->recording = sampled(cfg.sample_ratio);
    if (!t->recording)
      return nullptr;
    t->context.trace = trace::new_trace_id();
    t->context.flags = 1;
  }
  t->operation = operation_of(ctx.endpoint);
  if (t->recording)
    t->done.json.reserve(encoded_room);
  t->request_id = ctx.request_id;
  auto& s = t->server;
  s.name = t->operation;
  if (!ctx.requested_model.empty()) {
    s.name += ' ';
    s.name += ctx.requested_model;
  }
  s.kind = trace::span_kind::server;
  s.id = trace::new_span_id();
  s.parent = t->from_client ? t->context.parent : trace::span_id{};
  // The span starts at the request's first byte, on the system clock.
  auto waited = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - ctx.received)
                  .count();
  s.start_ns
    = trace::now_ns() - static_cast<uint64_t>(std::max<int64_t>(waited, 0));
  s.attributes.reserve(attribute_room);
  s.attributes.push_back({"gen_ai.operation.name", std::string{t->operation}});
  s.attributes.push_back({"http.request.method", std::string{"POST"}});
  s.attributes.push_back({"url.path", std::string{path_of(ctx.endpoint)}});
  return t;
}

void begin_plugin(request_tracing& t, std::string_view stage, size_t index,
                  const std::string& name) {
  if (!t.recording)
    return;
  close_span(t, t.plugin);
  auto s = open_span(t, "plugin " + name, trace::span_kind::internal);
  s.attributes.push_back({"pw_router.plugin.name", name});
  s.attributes.push_back({"pw_router.plugin.stage", std::string{stage}});
  s.attributes.push_back(
    {"pw_router.plugin.index", static_cast<int64_t>(index)});
  t.plugin = std::move(s);
}

void end_plugin(request_tracing& t, std::string_view outcome,
                const std::string& error) {
  if (!t.plugin)
    return;
  t.plugin->attributes.push_back(
    {"pw_router.plugin.outcome", std::string{outcome}});
  if (!error.empty())
    t.plugin->error = error;
  close_span(t, t.plugin);
}

void begin_attempt(request_tracing& t, const model_config& model) {
  if (t.recording) {
    close_span(t, t.attempt);
    if (t.last_model == model.alias)
      t.server.events.push_back({"pw_router.retry",
                                 trace::now_ns(),
                                 {{"pw_router.model", model.alias}}});
    else if (!t.last_model.empty())
      t.server.events.push_back(
        {"pw_router.fallback",
         trace::now_ns(),
         {{"pw_router.from", t.last_model}, {"pw_router.to", model.alias}}});
    std::string name{t.operation};
    name += ' ';
    name += model.model;
    auto s = open_span(t, std::move(name), trace::span_kind::client);
    s.attributes.push_back({"gen_ai.operation.name", std::string{t.operation}});
    s.attributes.push_back(
      {"gen_ai.provider.name", genai_provider(model.provider)});
    s.attributes.push_back({"gen_ai.request.model", model.model});
    s.attributes.push_back({"pw_router.model", model.alias});
    if (!model.local) {
      s.attributes.push_back({"server.address", model.target.host});
      s.attributes.push_back(
        {"server.port", static_cast<int64_t>(model.target.port)});
    }
    t.attempt = std::move(s);
  }
  t.last_model = model.alias;
}

void add_trace_headers(const request_tracing& t,
                       std::vector<header_field>& headers) {
  auto from = t.attempt ? t.attempt->id : t.context.parent;
  if (!t.attempt && !t.from_client)
    return;
  headers.push_back({"traceparent", trace::traceparent_of(t.context, from)});
  if (!t.context.state.empty())
    headers.push_back({"tracestate", t.context.state});
}

void end_attempt(request_tracing& t, const call_outcome& x) {
  if (!t.attempt)
    return;
  auto& s = *t.attempt;
  s.attributes.push_back({"pw_router.attempt.outcome", to_string(x.result)});
  if (x.status != 0)
    s.attributes.push_back(
      {"http.response.status_code", static_cast<int64_t>(x.status)});
  if (x.result != call_result::success)
    s.error = x.error.empty() ? to_string(x.result) : x.error;
  close_span(t, t.attempt);
}

void note_skipped(request_tracing& t, const std::string& model,
                  const std::string& why) {
  if (!t.recording)
    return;
  t.server.events.push_back(
    {"pw_router.skipped",
     trace::now_ns(),
     {{"pw_router.model", model}, {"pw_router.reason", why}}});
}

trace::encoded_spans end_request(request_tracing& t,
                                 const request_facts& facts) {
  if (!t.recording)
    return {};
  if (t.plugin)
    end_plugin(t, "ended", "the request ended first");
  if (t.attempt) {
    call_outcome x;
    x.result = call_result::cancelled;
    x.error = "the request ended first";
    end_attempt(t, x);
  }
  auto& s = t.server;
  s.end_ns = trace::now_ns();
  if (!facts.requested_model.empty())
    s.attributes.push_back({"gen_ai.request.model", facts.requested_model});
  if (!facts.model.empty())
    s.attributes.push_back({"gen_ai.response.model", facts.model});
  if (facts.answered_by != nullptr)
    s.attributes.push_back(
      {"gen_ai.provider.name", genai_provider(facts.answered_by->provider)});
  if (facts.usage_known) {
    s.attributes.push_back(
      {"gen_ai.usage.input_tokens", static_cast<int64_t>(facts.input_tokens)});
    s.attributes.push_back({"gen_ai.usage.output_tokens",
                            static_cast<int64_t>(facts.output_tokens)});
  }
  s.attributes.push_back(
    {"http.response.status_code", static_cast<int64_t>(facts.status)});
  if (!facts.client.empty())
    s.attributes.push_back({"pw_router.client", facts.client});
  if (!facts.route_reason.empty())
    s.attributes.push_back({"pw_router.route_reason", facts.route_reason});
  if (facts.status >= 500)
    s.error = facts.error.empty() ? "HTTP " + std::to_string(facts.status)
                                  : facts.error;
  trace::append_span(t.done, t.context, t.request_id, s);
  return std::exchange(t.done, {});
}

} // namespace pw::actors
