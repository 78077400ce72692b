#pragma once

// `provider: vertex`, Google Vertex AI: Gemini (and other Google models)
// through Vertex's OpenAI-compatible endpoint, and Anthropic's models
// through `rawPredict` / `streamRawPredict` in Anthropic's wire format;
// auth with a service account's key (a JWT signed here, exchanged for an
// access token) or a workload identity federation's token file (an STS
// token exchange). The MODEL actor fetches and renews the token.

#include "adapters/openai/dialect.hpp"
#include "adapters/provider.hpp"

#include <string>

namespace pw::adapters::vertex {

/// Which publisher's models the model is: how it is called.
enum class publisher : uint8_t { google, anthropic };

/// The kind of Google credentials file.
enum class credential_kind : uint8_t { service_account, external_account };

/// The settings of a vertex model (docs/configuration.md).
struct vertex_options : provider_options {
  std::string project;
  std::string region;
  enum publisher publisher = publisher::google;
  credential_kind kind = credential_kind::service_account;
  /// Where tokens come from (`token_uri`, or `token_url` of an external
  /// account), parsed, and as written (a JWT's audience).
  endpoint token_endpoint;
  std::string token_url;
  /// service_account: the account, its key id and its private key.
  std::string client_email;
  std::string private_key_id;
  redacted_string private_key;
  /// external_account: the STS audience, the subject token's type and the
  /// file that holds it (read at each fetch).
  std::string audience;
  std::string subject_token_type;
  std::string subject_token_file;
  std::string scope = "https://www.googleapis.com/auth/cloud-platform";
};

const provider& vertex_provider();

} // namespace pw::adapters::vertex
