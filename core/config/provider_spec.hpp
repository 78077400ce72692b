#pragma once

// What the config loader needs to know of a provider: its name, its own
// keys under `models.<alias>` and how to read them, where it is reached by
// default and which endpoints it can serve. Each folder under adapters/
// declares its providers; adapters/registry.cpp lists them, and the loader
// gets that list (load_config's `providers`), so core knows no provider by
// name.

#include "core/config/config_reader.hpp"

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pw {

struct model_config;

/// A provider's settings read from its own keys (e.g. Azure's deployment
/// and api_version): each provider derives its own and casts back.
struct provider_options {
  virtual ~provider_options();
};

using provider_options_ptr = std::shared_ptr<const provider_options>;

/// Reads the provider's own keys from `cfg.root()` (the model's mapping,
/// at `cfg.path()`, e.g. "models.gpt") once the common keys are in `m`;
/// reports problems with cfg.fail (YAML path first); may adjust `m` (e.g.
/// a base_url built from the provider's keys). Returns the options (may
/// be null).
using provider_loader
  = provider_options_ptr (*)(config_reader& cfg, model_config& m);

struct provider_spec {
  /// The `provider:` spelling, e.g. "vllm".
  std::string_view name;
  /// `base_url` when the model sets none; empty: base_url is required
  /// (unless the provider is local or its loader sets one).
  std::string_view default_base_url;
  /// Answers inside the gateway: takes no base_url or ca_file, and has no
  /// price (no pricing warning).
  bool local = false;
  /// The model id when `model` is unset; empty: `model` is required.
  std::string_view default_model;
  /// Every endpoint it can serve (count_tokens included where it counts).
  endpoint_set endpoints;
  /// Its own keys under `models.<alias>`, beside the common ones.
  std::vector<std::string_view> keys;
  /// Reads those keys; null when it has none.
  provider_loader load = nullptr;
};

} // namespace pw
