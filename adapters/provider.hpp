#pragma once

// A provider, as the rest of the gateway sees it: what the config loader
// needs (provider_spec: its name, its own keys, its default base_url, the
// endpoints it can serve) and the adapter that serves each endpoint. Each
// folder under adapters/ declares its providers; registry.cpp lists them.

#include "adapters/adapter.hpp"
#include "core/config/provider_spec.hpp"

#include <span>

namespace pw::adapters {

struct provider : provider_spec {
  /// The adapter serving `endpoint`, one of `endpoints`; for any other,
  /// the chat adapter.
  const adapter& (*serve)(api_endpoint endpoint) = nullptr;
};

/// Every provider, in the order messages list them.
std::span<const provider* const> providers();

/// The same list, for the config loader (load_config's `providers`).
provider_catalog catalog();

/// The provider called `name`, or nullptr.
const provider* find_provider(std::string_view name);

/// The model's provider options as `Options` (its provider's own type);
/// the defaults for a model built without them (a test's).
template <class Options>
const Options& options_as(const model_config& model) {
  static const Options none;
  const auto* own = dynamic_cast<const Options*>(model.options.get());
  return own != nullptr ? *own : none;
}

/// Whether `text` is not empty and holds only letters, digits and
/// characters of `extra`: what a provider's name-like key (a deployment, a
/// region, a project) may hold to go into a URL unescaped.
inline bool url_safe(std::string_view text, std::string_view extra) {
  if (text.empty())
    return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || extra.find(c) != std::string_view::npos;
    if (!ok)
      return false;
  }
  return true;
}

} // namespace pw::adapters
