// Micro-benchmark of what an io thread does with every chat request body:
// the JSON check (check_chat_request), and the document the plugins and
// the Anthropic adapter read (chat_payload::json()). The body is the load
// harness's (../shared/bench/body/chat.json.tmpl, 816 bytes); a second one
// carries a 32 KiB message, as long prompts do. Built only when Debian's
// libbenchmark-dev is installed:
//
//   cmake --preset release -DPW_BUILD_BENCHMARKS=ON
//   cmake --build --preset release --target json_check_bench
//   taskset -c 1 build/release/tests/bench/json_check_bench
//
// It uses only check_chat_request and chat_payload, so the same file also
// builds against an older tree for a before/after figure.

#include "core/request/chat_request.hpp"

#include <benchmark/benchmark.h>
#include <string>

namespace {

const std::string harness_body
  = R"({"model":"mock-openai","messages":[{"role":"system","content":"You are a concise assistant for an engineering team. Answer in plain English, cite the relevant component by name, and keep answers under one hundred words unless asked for detail."},{"role":"user","content":"We run an OpenAI-compatible gateway in front of several model providers. What does the gateway add per request?"},{"role":"assistant","content":"It terminates the client connection, checks the bearer key, parses the JSON body to read the model name, picks an upstream and forwards the request, then relays the response or the SSE stream back to the client."},{"role":"user","content":"Summarise that in one sentence and mention where the latency comes from."}],"temperature":0.2,"top_p":1,"max_tokens":256,"stream":false,"user":"bench-user-42"})";

std::string long_body() {
  std::string text;
  while (text.size() < 32 * 1024)
    text += "The quarterly report lists revenue, costs and margins by region. ";
  return R"({"model":"mock-openai","messages":[{"role":"user","content":")"
         + text + R"("}],"max_tokens":256})";
}

void check(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    auto summary = pw::check_chat_request(body);
    benchmark::DoNotOptimize(summary);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations())
                          * static_cast<int64_t>(body.size()));
}

void document(benchmark::State& state, const std::string& body) {
  for (auto _ : state) {
    pw::chat_payload payload{body};
    benchmark::DoNotOptimize(payload.json());
  }
}

void BM_check_harness_body(benchmark::State& state) {
  check(state, harness_body);
}

void BM_check_32k_body(benchmark::State& state) {
  static const auto body = long_body();
  check(state, body);
}

void BM_document_harness_body(benchmark::State& state) {
  document(state, harness_body);
}

} // namespace

BENCHMARK(BM_check_harness_body);
BENCHMARK(BM_check_32k_body);
BENCHMARK(BM_document_harness_body);
BENCHMARK_MAIN();
