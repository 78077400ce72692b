#pragma once

// Distributed tracing as pure code: W3C Trace Context (the `traceparent`
// and `tracestate` headers, https://www.w3.org/TR/trace-context/), the
// spans a request makes, and their OTLP/HTTP JSON encoding
// (opentelemetry-proto's JSON mapping: ids in hex, 64-bit integers as
// strings, enums as numbers, lowerCamelCase field names). No I/O here.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pw::trace {

using trace_id = std::array<unsigned char, 16>;
using span_id = std::array<unsigned char, 8>;

/// What a request's spans hang from: the client's trace (from its
/// `traceparent`) or a new one.
struct trace_context {
  trace_id trace{};
  /// The client's span (all zero: none, this request is the root).
  span_id parent{};
  /// trace-flags; bit 0 is `sampled`.
  uint8_t flags = 1;
  /// The client's `tracestate`, passed on as it came (empty: none).
  std::string state;
};

/// Reads a `traceparent` value; nullopt when it is not valid (the request
/// then starts a new trace, as the specification says). Version 00 must
/// be exactly 55 characters; a higher version may carry more after a '-'.
std::optional<trace_context> parse_traceparent(std::string_view value);

/// Whether a `tracestate` value may be passed on: at most 512 characters
/// of printable ASCII (the specification's propagation limit).
bool passable_tracestate(std::string_view value);

/// The `traceparent` of a call made from span `from` of `ctx`'s trace.
std::string traceparent_of(const trace_context& ctx, const span_id& from);

/// A new trace id and span id (random, thread-local generator, never all
/// zero).
trace_id new_trace_id();
span_id new_span_id();

/// Lowercase hex of an id.
std::string hex(const trace_id& id);
std::string hex(const span_id& id);

/// OTLP's SpanKind.
enum class span_kind : uint8_t { internal = 1, server = 2, client = 3 };

/// An attribute value: string, 64-bit integer, double or bool.
using attr_value = std::variant<std::string, int64_t, double, bool>;

/// Keys and event names are string literals (a span keeps only a view of
/// them), so recording an attribute allocates only for a long value. A
/// key is written as it is, unescaped: letters, digits, '.' and '_'.
struct attribute {
  std::string_view key;
  attr_value value;
};

/// Something that happened at a point in a span (a fallback, a breaker
/// decision).
struct event {
  std::string_view name;
  uint64_t time_ns = 0;
  std::vector<attribute> attributes;
};

/// One finished span.
struct span {
  std::string name;
  span_kind kind = span_kind::internal;
  span_id id{};
  /// All zero for a root span.
  span_id parent{};
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  std::vector<attribute> attributes;
  std::vector<event> events;
  /// Set: the span failed (OTLP STATUS_CODE_ERROR) with this message.
  std::optional<std::string> error;
};

/// The spans of one request: they share a trace and its state, and
/// each carries the request id (`pw_router.request_id`, first of its
/// attributes; none when empty).
struct request_trace {
  trace_context context;
  std::string request_id;
  std::vector<span> spans;
};

/// Spans already encoded as OTLP/HTTP JSON span objects, comma-separated:
/// a SESSION encodes each span as it ends and hands the TRACER text, not
/// structures.
struct encoded_spans {
  std::string json;
  size_t count = 0;
};

/// Appends span `s` of `ctx`'s trace to `out`, with the request id
/// `request_id` (none when empty) as its first attribute.
void append_span(encoded_spans& out, const trace_context& ctx,
                 std::string_view request_id, const span& s);

/// Who made the spans: the resource's `service.name` and the
/// instrumentation scope's version.
struct exporter_identity {
  std::string service_name = "pw-router";
  std::string version;
};

/// The body of an OTLP/HTTP JSON export request (`POST /v1/traces`) of
/// `traces`: one resourceSpans, one scopeSpans named "pw-router".
std::string encode_otlp_json(const exporter_identity& who,
                             const std::vector<encoded_spans>& traces);
std::string encode_otlp_json(const exporter_identity& who,
                             const std::vector<request_trace>& traces);

/// Nanoseconds since the epoch now (system clock).
uint64_t now_ns();

/// What the exporter did, for `/metrics` (relaxed atomics, counted per
/// export, off the request path).
struct export_counters {
  uint64_t exported = 0;
  uint64_t dropped = 0;
  uint64_t failures = 0;
};

void count_exported(uint64_t spans);
void count_dropped(uint64_t spans);
void count_failure();
export_counters read_counters();

} // namespace pw::trace
