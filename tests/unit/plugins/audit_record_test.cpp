// The audit record written as text (plugins/audit_log/audit_plugin.cpp)
// against the same record built as a document and dumped: the bytes must
// be the same, so the log reads as before and verifies.

#include "core/json/reader.hpp"
#include "core/sha256.hpp"
#include "plugins/audit_log/audit_plugin.hpp"

#include <catch2/catch.hpp>

using pw::json::document;
namespace actors = pw::actors;
using pw::sha256;
using pw::to_hex;
using pw::plugins::audit_record;

namespace {

actors::plugin_request request_with(document body) {
  actors::plugin_request r;
  r.request_id = "req-1";
  r.client = "team-a";
  r.body = std::make_shared<const document>(std::move(body));
  return r;
}

document chat(const std::string& content) {
  return {
    {"model", "m"},
    {"messages", document::array({{{"role", "user"}, {"content", content}}})}};
}

/// The audit record as a document, field by field, as pw-router built it
/// before it wrote the text directly: the reference for its bytes.
document reference_record(const actors::plugin_outcome& out,
                          bool include_bodies, const std::string& time) {
  document line = document::object();
  line["time"] = time;
  line["request_id"] = out.request.request_id;
  line["client"] = out.request.client;
  line["endpoint"] = pw::to_string(out.request.endpoint);
  line["status"] = out.status;
  line["model"] = out.model.empty() ? document(nullptr) : document(out.model);
  line["route_reason"]
    = out.route_reason.empty() ? document(nullptr) : document(out.route_reason);
  auto attempts = document::array();
  for (const auto& a : out.attempts)
    attempts.push_back({{"model", a.model}, {"outcome", a.outcome}});
  line["attempts"] = std::move(attempts);
  line["tags"] = out.request.tags;
  if (!out.blocked_by.empty())
    line["blocked_by"] = out.blocked_by;
  if (!out.error_code.empty())
    line["error"] = {{"code", out.error_code}, {"message", out.error_message}};
  line["stream"] = out.stream_requested || out.streamed;
  if (out.streamed)
    line["stream_complete"] = out.stream_complete;
  line["usage"] = {{"prompt_tokens", out.prompt_tokens},
                   {"completion_tokens", out.completion_tokens}};
  line["latency_ms"] = static_cast<double>(out.latency.count() / 10) / 100.0;
  if (!out.request.metadata.empty())
    line["metadata"] = out.request.metadata;
  line["request_sha256"] = out.request_sha256;
  const std::string* response = out.response_body ? out.response_body.get()
                                : out.streamed    ? &out.stream_text
                                                  : nullptr;
  line["response_sha256"] = response != nullptr
                              ? document(to_hex(sha256(*response)))
                              : document(nullptr);
  if (out.streamed && out.stream_text_truncated)
    line["response_truncated"] = true;
  if (include_bodies) {
    line["request"] = out.request.body ? *out.request.body : document(nullptr);
    if (out.response_body) {
      auto doc = pw::json::parse(*out.response_body, pw::json::upstream_limits);
      line["response"] = doc ? std::move(*doc) : document(*out.response_body);
    } else if (out.streamed) {
      line["response"] = out.stream_text;
    }
  }
  return line;
}

} // namespace

TEST_CASE("audit record text: the bytes of the record as a document") {
  const std::string time = "2026-12-08T10:00:00.123Z";
  std::vector<actors::plugin_outcome> cases;
  // A plain success, as in the audit record test of plugins_test.cpp.
  auto& ok = cases.emplace_back();
  ok.request = request_with(chat("x \"quoted\" \u00e9 \u2028"));
  ok.request.tags = {"client-data", "t\n2"};
  ok.request_sha256 = to_hex(sha256("{}"));
  ok.status = 200;
  ok.model = "llama";
  ok.attempts = {{"claude", "skipped (circuit open)", "skipped"},
                 {"llama", "ok", "success"}};
  ok.route_reason = "tag:client-data->chain:local";
  ok.response_body = std::make_shared<const std::string>("{\"a\":[1,2.5]}");
  ok.prompt_tokens = 3;
  ok.completion_tokens = 18446744073709551615ULL;
  ok.latency = std::chrono::microseconds{12345};
  ok.request.metadata["pii_request"] = {{"email", 1}, {"phone", 2}};
  // A refusal: no model, no route, an error, a blocking plugin, nothing
  // tried; a latency under 0.01 ms.
  auto& refused = cases.emplace_back();
  refused.request = request_with(chat("hi"));
  refused.status = 451;
  refused.error_code = "blocked";
  refused.error_message = "blocked by policy: \"DROP\"\t\x01";
  refused.blocked_by = "regex";
  refused.latency = std::chrono::microseconds{9};
  // A relayed stream, cut short, text kept in part; an invalid UTF-8 byte.
  auto& stream = cases.emplace_back();
  stream.request = request_with(chat("go"));
  stream.status = 200;
  stream.model = "m";
  stream.streamed = true;
  stream.stream_requested = true;
  stream.stream_complete = false;
  stream.stream_text = "partial \xff text";
  stream.stream_text_truncated = true;
  stream.latency = std::chrono::microseconds{100000000};
  // A whole answer to a stream request, and a response that is not JSON.
  auto& wrapped = cases.emplace_back();
  wrapped.request = request_with(chat("go"));
  wrapped.status = 200;
  wrapped.stream_requested = true;
  wrapped.response_body = std::make_shared<const std::string>("not json");
  wrapped.latency = std::chrono::microseconds{1234567891};
  for (size_t i = 0; i < cases.size(); ++i) {
    for (bool bodies : {false, true}) {
      INFO("case " << i << (bodies ? " with bodies" : ""));
      CHECK(audit_record(cases[i], bodies, time)
            == pw::json::dump(reference_record(cases[i], bodies, time)));
    }
  }
}
