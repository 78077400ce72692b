#include "core/observe/trace.hpp"

#include "core/json/text.hpp"
#include "core/sha256.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>

namespace pw::trace {

namespace {

bool lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

template <size_t N>
bool all_zero(const std::array<unsigned char, N>& id) {
  for (auto b : id)
    if (b != 0)
      return false;
  return true;
}

template <size_t N>
std::array<unsigned char, N> random_id() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::array<unsigned char, N> out{};
  do {
    for (size_t i = 0; i < N; i += 8) {
      auto word = engine();
      for (size_t k = 0; k < 8 && i + k < N; ++k)
        out[i + k] = static_cast<unsigned char>(word >> (8 * k));
    }
  } while (all_zero(out));
  return out;
}

template <size_t N>
void append_hex(std::string& out, const std::array<unsigned char, N>& id) {
  static constexpr char digits[] = "0123456789abcdef";
  std::array<char, 2 * N> text{};
  for (size_t i = 0; i < N; ++i) {
    text[2 * i] = digits[id[i] >> 4];
    text[2 * i + 1] = digits[id[i] & 0x0f];
  }
  out.append(text.data(), text.size());
}

void append_u64_string(std::string& out, uint64_t n) {
  out += '"';
  append_integer(out, n);
  out += '"';
}

void append_value(std::string& out, const attr_value& v) {
  out += '{';
  if (const auto* s = std::get_if<std::string>(&v)) {
    out += "\"stringValue\":";
    append_json_string(out, *s);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out += "\"intValue\":\"";
    append_integer(out, *i);
    out += '"';
  } else if (const auto* d = std::get_if<double>(&v)) {
    out += "\"doubleValue\":";
    // JSON has no NaN or infinity; such a value becomes 0.
    out += std::isfinite(*d) ? nlohmann::json(*d).dump() : std::string{"0"};
  } else {
    out += "\"boolValue\":";
    out += std::get<bool>(v) ? "true" : "false";
  }
  out += '}';
}

void append_attribute(std::string& out, std::string_view key,
                      const attr_value& value) {
  // Keys are literals of plain ASCII (see attribute): no escaping.
  out += R"({"key":")";
  out += key;
  out += R"(","value":)";
  append_value(out, value);
  out += '}';
}

void append_attributes(std::string& out, const std::vector<attribute>& xs,
                       std::string_view request_id = {}) {
  out += "\"attributes\":[";
  bool first = true;
  if (!request_id.empty()) {
    out += R"({"key":"pw_router.request_id","value":{"stringValue":)";
    append_json_string(out, request_id);
    out += "}}";
    first = false;
  }
  for (const auto& a : xs) {
    if (!first)
      out += ',';
    first = false;
    append_attribute(out, a.key, a.value);
  }
  out += ']';
}

void append_span_object(std::string& out, const trace_context& ctx,
                        std::string_view request_id, const span& s) {
  out += "{\"traceId\":\"";
  append_hex(out, ctx.trace);
  out += "\",\"spanId\":\"";
  append_hex(out, s.id);
  out += '"';
  if (!all_zero(s.parent)) {
    out += ",\"parentSpanId\":\"";
    append_hex(out, s.parent);
    out += '"';
  }
  if (!ctx.state.empty()) {
    out += ",\"traceState\":";
    append_json_string(out, ctx.state);
  }
  out += ",\"name\":";
  append_json_string(out, s.name);
  out += ",\"kind\":";
  append_integer(out, static_cast<int>(s.kind));
  out += ",\"startTimeUnixNano\":";
  append_u64_string(out, s.start_ns);
  out += ",\"endTimeUnixNano\":";
  append_u64_string(out, s.end_ns);
  out += ',';
  append_attributes(out, s.attributes, request_id);
  out += ",\"events\":[";
  for (size_t i = 0; i < s.events.size(); ++i) {
    const auto& e = s.events[i];
    if (i > 0)
      out += ',';
    out += "{\"timeUnixNano\":";
    append_u64_string(out, e.time_ns);
    out += ",\"name\":";
    append_json_string(out, e.name);
    out += ',';
    append_attributes(out, e.attributes);
    out += '}';
  }
  out += "],\"status\":{";
  if (s.error) {
    out += "\"code\":2,\"message\":";
    append_json_string(out, *s.error);
  }
  out += "}}";
}

} // namespace

std::optional<trace_context> parse_traceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" trace-flags
  if (value.size() < 55)
    return std::nullopt;
  auto version = value.substr(0, 2);
  if (!lower_hex(version) || version == "ff")
    return std::nullopt;
  if (version == "00" ? value.size() != 55
                      : value.size() > 55 && value[55] != '-')
    return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-')
    return std::nullopt;
  auto trace_hex = value.substr(3, 32);
  auto parent_hex = value.substr(36, 16);
  auto flags_hex = value.substr(53, 2);
  if (!lower_hex(trace_hex) || !lower_hex(parent_hex) || !lower_hex(flags_hex))
    return std::nullopt;
  trace_context out;
  std::array<unsigned char, 1> flags{};
  if (!parse_hex(trace_hex, out.trace) || !parse_hex(parent_hex, out.parent)
      || !parse_hex(flags_hex, flags))
    return std::nullopt;
  if (all_zero(out.trace) || all_zero(out.parent))
    return std::nullopt;
  out.flags = flags[0];
  return out;
}

bool passable_tracestate(std::string_view value) {
  if (value.size() > 512)
    return false;
  for (char c : value)
    if (c < 0x20 || c > 0x7e)
      return false;
  return true;
}

std::string traceparent_of(const trace_context& ctx, const span_id& from) {
  std::string out;
  out.reserve(55);
  out += "00-";
  append_hex(out, ctx.trace);
  out += '-';
  append_hex(out, from);
  out += '-';
  append_hex(out, std::array<unsigned char, 1>{ctx.flags});
  return out;
}

trace_id new_trace_id() {
  return random_id<16>();
}

span_id new_span_id() {
  return random_id<8>();
}

std::string hex(const trace_id& id) {
  return to_hex(id);
}

std::string hex(const span_id& id) {
  return to_hex(id);
}

void append_span(encoded_spans& out, const trace_context& ctx,
                 std::string_view request_id, const span& s) {
  if (out.count++ > 0)
    out.json += ',';
  append_span_object(out.json, ctx, request_id, s);
}

std::string encode_otlp_json(const exporter_identity& who,
                             const std::vector<encoded_spans>& traces) {
  size_t size = 256;
  for (const auto& t : traces)
    size += t.json.size() + 1;
  std::string out;
  out.reserve(size);
  out += R"({"resourceSpans":[{"resource":{"attributes":[)";
  out += R"({"key":"service.name","value":{"stringValue":)";
  append_json_string(out, who.service_name);
  out += R"(}}]},"scopeSpans":[{"scope":{"name":"pw-router","version":)";
  append_json_string(out, who.version);
  out += R"(},"spans":[)";
  bool first = true;
  for (const auto& t : traces) {
    if (t.count == 0)
      continue;
    if (!first)
      out += ',';
    first = false;
    out += t.json;
  }
  out += "]}]}]}";
  return out;
}

std::string encode_otlp_json(const exporter_identity& who,
                             const std::vector<request_trace>& traces) {
  std::vector<encoded_spans> encoded(traces.size());
  for (size_t i = 0; i < traces.size(); ++i)
    for (const auto& s : traces[i].spans)
      append_span(encoded[i], traces[i].context, traces[i].request_id, s);
  return encode_otlp_json(who, encoded);
}

namespace {

std::atomic<uint64_t> exported_spans{0};
std::atomic<uint64_t> dropped_spans{0};
std::atomic<uint64_t> export_failures{0};

} // namespace

void count_exported(uint64_t spans) {
  exported_spans.fetch_add(spans, std::memory_order_relaxed);
}

void count_dropped(uint64_t spans) {
  dropped_spans.fetch_add(spans, std::memory_order_relaxed);
}

void count_failure() {
  export_failures.fetch_add(1, std::memory_order_relaxed);
}

export_counters read_counters() {
  return {exported_spans.load(std::memory_order_relaxed),
          dropped_spans.load(std::memory_order_relaxed),
          export_failures.load(std::memory_order_relaxed)};
}

uint64_t now_ns() {
  return static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch())
      .count());
}

} // namespace pw::trace
