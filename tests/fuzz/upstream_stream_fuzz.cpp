// Fuzz target: arbitrary bytes as a provider's stream, through the stream
// translator of every adapter that reads one (openai, anthropic, and an
// Anthropic stream relayed to a Messages API client), in two pieces,
// keeping the text for the post stage, and on through the audit record
// the post stage writes from the summary. The first byte picks the
// provider, include_usage and the split; the rest is the stream.

#include "adapters/adapter.hpp"
#include "plugins/audit_log/audit_plugin.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string_view input{reinterpret_cast<const char*>(data) + 1, size - 1};
  std::string provider = (data[0] & 1) != 0 ? "anthropic" : "openai";
  auto split = std::min<size_t>(data[0] >> 2, input.size());
  auto model = std::make_shared<pw::model_config>();
  model->alias = "m";
  model->provider = provider;
  model->api_key = pw::redacted_string{"sk-fuzz-key"};
  // A small bound on the kept text, so the fuzzer reaches it.
  pw::stream_options options{"m", (data[0] & 2) != 0, "req", 64};
  auto decoder
    = pw::adapters::adapter_for(provider).make_stream_decoder(model, options);
  std::string out;
  decoder->feed(input.substr(0, split), out);
  decoder->feed(input.substr(split), out);
  decoder->finish(out);
  if (provider == "anthropic") {
    // The same bytes relayed to a Messages API client.
    auto relay = pw::adapters::adapter_for(provider, pw::api_endpoint::messages)
                   .make_stream_decoder(model, options);
    std::string relayed;
    relay->feed(input.substr(0, split), relayed);
    relay->feed(input.substr(split), relayed);
    relay->finish(relayed);
  }
  const auto& summary = decoder->summary();
  pw::actors::plugin_outcome outcome;
  outcome.status = 200;
  outcome.streamed = true;
  outcome.stream_complete = summary.complete;
  outcome.stream_text = summary.text;
  outcome.stream_text_truncated = summary.text_truncated;
  outcome.prompt_tokens = summary.prompt_tokens;
  outcome.completion_tokens = summary.completion_tokens;
  pw::plugins::audit_record(outcome, true, "2026-01-01T00:00:00.000Z");
  return 0;
}
