#pragma once

// A `POST /v1/embeddings` request: the shape check an io thread runs on the
// raw body before anything else. The body then travels as a chat_payload
// does (bytes as received, document on first use).

#include "core/request/body_checks.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pw {

/// At most this many inputs in one request (OpenAI's limit).
constexpr size_t max_embedding_inputs = body_checks::max_items;

/// At most this many dimensions asked for.
constexpr uint32_t max_embedding_dimensions = 65536;

/// What the shape check learns about an embeddings body.
struct embeddings_summary {
  /// The `model` field ("" when absent or null).
  std::string model;
  /// `input` holds token ids rather than text: no plugin can read it.
  bool token_input = false;
  /// `encoding_format: "base64"`.
  bool base64 = false;
  /// `dimensions`, when set.
  std::optional<uint32_t> dimensions;
};

/// Checks an embeddings body: read by the JSON layer under
/// json::client_limits, then its shape: an object; `model` a string or
/// null; `input` a non-empty string, or a list of 1 to 2048 items that are
/// all non-empty strings, all token ids (integers from 0 to 2^32-1), or all
/// non-empty lists of token ids; `encoding_format` "float", "base64" or
/// null; `dimensions` an integer from 1 to 65536, or null. Errors are
/// `invalid_request` with the field as `param_of`.
caf::expected<embeddings_summary>
check_embeddings_request(std::string_view body);

} // namespace pw
