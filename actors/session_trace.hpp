#pragma once

// A SESSION's spans (core/observe/trace.hpp), when `tracing` is on: the
// server span of the request, a child span for each plugin call and for
// each upstream attempt, and events for what routing decided (a model
// skipped by its breaker or its limits, a fallback, a retry). The SESSION
// calls these at each step and hands the finished trace to the TRACER when
// it ends. Prompt and completion text never go into a span.
//
// A request with a valid W3C `traceparent` joins the client's trace (and
// is recorded only if its sampled flag is set); any other request starts
// a trace of its own, recorded with probability `tracing.sample_ratio`.
// Each attempt's upstream request carries a `traceparent` naming the
// attempt's span (or, unrecorded, the client's own), and the client's
// `tracestate`.

#include "actors/contracts.hpp"
#include "core/observe/trace.hpp"
#include "core/request/chat_request.hpp"

#include <memory>
#include <optional>
#include <string>

namespace pw::actors {

struct request_tracing {
  trace::trace_context context;
  /// Spans are recorded (and exported); otherwise only the client's
  /// context is passed on.
  bool recording = false;
  /// The client sent a valid traceparent.
  bool from_client = false;
  trace::span server;
  std::optional<trace::span> plugin;
  std::optional<trace::span> attempt;
  /// The spans that ended, encoded as they end (the server span last, by
  /// end_request).
  trace::encoded_spans done;
  /// The model of the last attempt, for fallback and retry events.
  std::string last_model;
  /// gen_ai.operation.name (a literal).
  std::string_view operation;
  std::string request_id;
};

/// The tracing of a request, or null when `cfg` is off or the request has
/// neither a recorded trace nor a client context to pass on.
std::unique_ptr<request_tracing> begin_request(const chat_context& ctx,
                                               const tracing_config& cfg);

/// A plugin call starts and ends (`outcome`: continue, block, failed).
void begin_plugin(request_tracing& t, std::string_view stage, size_t index,
                  const std::string& name);
void end_plugin(request_tracing& t, std::string_view outcome,
                const std::string& error = {});

/// An attempt of `model` starts.
void begin_attempt(request_tracing& t, const model_config& model);

/// Adds `traceparent` (naming the attempt's span, or, unrecorded, the
/// client's) and `tracestate` to an attempt's upstream request.
void add_trace_headers(const request_tracing& t,
                       std::vector<header_field>& headers);

/// The attempt ends as the MODEL hears of it.
void end_attempt(request_tracing& t, const call_outcome& x);

/// A candidate was passed over (`why`: its breaker, its limits ...).
void note_skipped(request_tracing& t, const std::string& model,
                  const std::string& why);

/// What the client got, for the server span.
struct request_facts {
  unsigned status = 0;
  /// The alias that answered ("" = none).
  std::string model;
  const model_config* answered_by = nullptr;
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  bool usage_known = false;
  std::string route_reason;
  std::string client;
  std::string requested_model;
  std::string error;
};

/// Ends the request: the server span and anything still open; returns
/// the spans to export, encoded (none when not recording).
trace::encoded_spans end_request(request_tracing& t,
                                 const request_facts& facts);

/// The OpenTelemetry GenAI `gen_ai.provider.name` of a `provider:` name.
std::string genai_provider(std::string_view provider);

} // namespace pw::actors
