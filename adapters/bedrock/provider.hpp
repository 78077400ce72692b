#pragma once

// `provider: bedrock`, AWS Bedrock's Converse and ConverseStream APIs:
// requests go through the Anthropic translation and converse.hpp, are
// signed with SigV4, and answers and streams come back the same way;
// embeddings go to InvokeModel (embeddings.hpp), signed alike.
// Credentials: static ones read at load (the environment, or a shared
// credentials file and profile), or temporary ones the MODEL actor gets
// from STS with a web identity token file and renews.

#include "adapters/bedrock/sigv4.hpp"
#include "adapters/provider.hpp"

#include <string>

namespace pw::adapters::bedrock {

/// The settings of a bedrock model (docs/configuration.md).
struct bedrock_options : provider_options {
  std::string region;
  /// Static credentials (environment, or a shared credentials file).
  aws_credentials credentials;
  /// Where the static credentials came from, for messages.
  std::string credentials_source;
  /// AssumeRoleWithWebIdentity instead: the role, the token file (read at
  /// each fetch), the session name and the STS endpoint.
  bool web_identity = false;
  std::string role_arn;
  std::string web_identity_token_file;
  std::string role_session_name = "pw-router";
  endpoint sts;
};

const provider& bedrock_provider();

/// Temporary credentials packed into model_config::access_token by the
/// MODEL (key id, secret and session token, one per line), and back.
std::string pack(const aws_credentials& c);
aws_credentials unpack(const std::string& packed);

/// The credentials a request of `model` is signed with.
aws_credentials credentials_of(const model_config& model);

} // namespace pw::adapters::bedrock
