#pragma once

// `provider: azure`, Azure OpenAI: the OpenAI adapters with Azure's URLs
// (deployment-based, or the v1 API) and credentials (an `api-key` header,
// or a Microsoft Entra ID token the MODEL actor fetches and renews).

#include "adapters/openai/dialect.hpp"
#include "adapters/provider.hpp"

#include <string>

namespace pw::adapters::azure {

/// The settings of an azure model (its own keys; docs/configuration.md).
struct azure_options : provider_options {
  /// Deployment-based URLs when set; else the v1 API (`/openai/v1`).
  std::string deployment;
  /// `api-version` query parameter (deployment URLs: 2024-10-21 by
  /// default; v1: none unless set).
  std::string api_version;
  /// Microsoft Entra ID instead of the `api-key` header.
  bool entra = false;
  std::string tenant_id;
  std::string client_id;
  /// Client credentials, or ...
  redacted_string client_secret;
  /// ... a workload-identity federated token file, read at each fetch.
  std::string federated_token_file;
  /// Where tokens come from (`authority_host`), parsed.
  endpoint authority;
  std::string scope = "https://cognitiveservices.azure.com/.default";
};

const provider& azure_provider();

/// The Azure dialect of the OpenAI adapters.
const openai::dialect& azure_dialect();

} // namespace pw::adapters::azure
