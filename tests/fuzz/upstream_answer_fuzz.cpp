// Fuzz target: arbitrary bytes as a provider's whole answer, through every
// adapter that reads one (openai for openai/vllm/ollama, anthropic), and
// on through everything the client and the post stage get from it: the
// answer turned into a stream, usage, the post plugins' view of the
// document, the audit record with bodies, and the error mapping for a 4xx.
// The first byte picks the provider and options; the rest is the body.

#include "adapters/adapter.hpp"
#include "plugins/audit_log/audit_plugin.hpp"
#include "plugins/plugin.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string body{reinterpret_cast<const char*>(data) + 1, size - 1};
  auto provider = (data[0] & 1) != 0 ? "anthropic" : "openai";
  pw::model_config model;
  model.alias = "m";
  model.model = "upstream";
  model.provider = provider;
  model.api_key = pw::redacted_string{"sk-fuzz-key"};
  const auto& adapter = pw::adapters::adapter_for(provider);
  pw::upstream_result result;
  result.status = 200;
  result.body = body;
  if (auto answer = adapter.from_provider_response(result, model)) {
    pw::stream_options options{"m", (data[0] & 2) != 0, "req"};
    pw::completion_to_sse(answer->body, options);
    pw::actors::plugin_outcome out;
    out.status = 200;
    out.model = "m";
    out.response_body = std::make_shared<const std::string>(answer->body);
    out.prompt_tokens = answer->prompt_tokens;
    out.completion_tokens = answer->completion_tokens;
    if (auto doc = pw::plugins::response_document(out))
      pw::plugins::response_texts(*doc, pw::api_endpoint::chat);
    pw::plugins::audit_record(out, true, "2026-01-01T00:00:00.000Z");
  }
  result.status = 400;
  pw::adapters::upstream_error(result, model);
  return 0;
}
