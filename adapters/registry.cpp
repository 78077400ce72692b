// The one list of providers. A provider is a folder under adapters/ that
// declares its provider (provider.hpp: name, keys, endpoints, adapters);
// adding one is its folder plus its include and its line here.

#include "adapters/anthropic/provider.hpp"
#include "adapters/azure/provider.hpp"
#include "adapters/bedrock/provider.hpp"
#include "adapters/echo/provider.hpp"
#include "adapters/gemini/provider.hpp"
#include "adapters/openai/provider.hpp"
#include "adapters/provider.hpp"
#include "adapters/vertex/provider.hpp"

#include <vector>

namespace pw::adapters {

namespace {

const std::vector<const provider*>& all() {
  // clang-format off
  static const std::vector<const provider*> list{
    &openai::openai_provider(),
    &openai::vllm_provider(),
    &openai::ollama_provider(),
    &anthropic::anthropic_provider(),
    &azure::azure_provider(),
    &bedrock::bedrock_provider(),
    &gemini::gemini_provider(),
    &vertex::vertex_provider(),
    &echo::echo_provider(),
  };
  // clang-format on
  return list;
}

/// The same list as the config loader reads it.
const std::vector<const provider_spec*>& specs() {
  static const std::vector<const provider_spec*> list{all().begin(),
                                                      all().end()};
  return list;
}

} // namespace

std::span<const provider* const> providers() {
  return all();
}

provider_catalog catalog() {
  return specs();
}

const provider* find_provider(std::string_view name) {
  for (const auto* p : all())
    if (p->name == name)
      return p;
  return nullptr;
}

} // namespace pw::adapters
