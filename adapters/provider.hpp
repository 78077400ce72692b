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

} // namespace pw::adapters
