#pragma once

// AWS Signature Version 4 (HMAC-SHA256 with OpenSSL), as AWS services
// other than S3 check it: the canonical request (the path normalised and
// URI-encoded once more, the query sorted, the headers lower-cased,
// trimmed and sorted, the payload's SHA-256), the string to sign, the
// signing key derived from the secret, date, region and service, and the
// Authorization header. Tested against AWS's published test suite
// (tests/data/sigv4/).

#include "core/config/redacted_string.hpp"
#include "core/request/exchange.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace pw::adapters::bedrock {

struct aws_credentials {
  std::string access_key_id;
  redacted_string secret_access_key;
  /// Temporary credentials only (STS): sent as X-Amz-Security-Token.
  redacted_string session_token;
};

/// What is signed: the request as it goes on the wire.
struct signable_request {
  std::string method;
  /// The path as sent (already URI-encoded where it needs to be).
  std::string path;
  /// The query as sent, without '?'.
  std::string query;
  /// Every header that is signed (Host and X-Amz-Date among them).
  std::vector<header_field> headers;
  std::string_view payload;
  /// The payload's SHA-256 in hex when it is known already (sign() sends
  /// it as X-Amz-Content-Sha256); computed from `payload` when empty.
  std::string_view payload_hash;
};

/// The canonical request; `signed_headers` gets the signed header names.
std::string canonical_request(const signable_request& r,
                              std::string& signed_headers);

/// `YYYYMMDD/region/service/aws4_request`.
std::string credential_scope(std::string_view amz_date, std::string_view region,
                             std::string_view service);

/// The string to sign for `canonical` at `amz_date` (YYYYMMDDTHHMMSSZ).
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical);

/// The Authorization header's value for `r` (which carries X-Amz-Date,
/// and X-Amz-Security-Token when the credentials have one).
std::string authorization(const signable_request& r,
                          const aws_credentials& credentials,
                          std::string_view region, std::string_view service,
                          std::string_view amz_date);

/// `t` (seconds since the epoch) as YYYYMMDDTHHMMSSZ.
std::string amz_date(int64_t t);

/// Signs `out` (an upstream request to an AWS service): adds Host (when
/// missing), X-Amz-Date, X-Amz-Content-Sha256, X-Amz-Security-Token (for
/// temporary credentials) and Authorization.
void sign(upstream_request& out, const aws_credentials& credentials,
          std::string_view region, std::string_view service, int64_t now);

/// Lowercase hex of SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// `text` URI-encoded as SigV4 wants it: everything but unreserved
/// characters (and '/' when `keep_slash`) as %XX, upper-case hex.
std::string uri_encoded(std::string_view text, bool keep_slash);

} // namespace pw::adapters::bedrock
