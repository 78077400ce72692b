#include "adapters/openai/provider.hpp"

namespace pw::adapters::openai {

namespace {

provider compatible(std::string_view name, std::string_view base_url,
                    const adapter& (*serve)(api_endpoint)) {
  provider p;
  p.name = name;
  p.default_base_url = base_url;
  p.endpoints = compatible_endpoints;
  p.serve = serve;
  return p;
}

} // namespace

const provider& openai_provider() {
  static const provider p = compatible("openai", "https://api.openai.com/v1",
                                       &serve_in<openai_dialect>);
  return p;
}

const provider& vllm_provider() {
  static const provider p
    = compatible("vllm", "http://localhost:8000/v1", &serve_in<vllm_dialect>);
  return p;
}

const provider& ollama_provider() {
  static const provider p = compatible("ollama", "http://localhost:11434/v1",
                                       &serve_in<ollama_dialect>);
  return p;
}

} // namespace pw::adapters::openai
