#pragma once

// The one error enum of pw-router: every failure a client or an operator can
// see has a code here. core/json_error.cpp maps each code to an HTTP status
// and an OpenAI error envelope.

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace pw {

enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// The request body is not valid JSON, not an object, or a field is wrong.
  invalid_request,
  /// No `Authorization` header, or one that is not `Bearer <token>`.
  missing_api_key,
  /// A bearer token that matches no configured key.
  invalid_api_key,
  /// The key's allowlist does not include the requested model.
  model_not_allowed,
  /// The key's allowlist excludes every model of the route.
  no_allowed_model,
  /// The requested model or chain is not configured.
  model_not_found,
  /// The requested model, or every model of the route, does not serve the
  /// endpoint called (`models.<alias>.endpoints`).
  endpoint_unsupported,
  /// No handler for this path.
  not_found,
  /// The path exists but not for this method.
  method_not_allowed,
  /// The request body exceeds `server.max_body_bytes`.
  payload_too_large,
  /// The request headers exceed `server.max_header_bytes`, or have too
  /// many fields.
  headers_too_large,
  /// The request target is longer than the gateway accepts.
  uri_too_long,
  /// An HTTP version other than 1.0 and 1.1.
  http_version_not_supported,
  /// A request method HTTP does not define.
  not_implemented,
  /// The client's key exceeded its `rate_limit`, or a per-minute or
  /// concurrency limit of its `limits` or its team's.
  rate_limited,
  /// A day or month token quota or the monthly budget of the key or its
  /// team is used up (OpenAI's `insufficient_quota`).
  quota_exceeded,
  /// The usage state (Redis) cannot be reached and `state.on_unavailable`
  /// is deny.
  usage_unavailable,
  /// The upstream answered 429.
  upstream_rate_limited,
  /// The upstream rejected the request (4xx); relayed with its status.
  upstream_rejected,
  /// The upstream failed: connect/TLS error, timeout, 5xx.
  upstream_failed,
  /// The upstream answered with something the gateway does not accept: not
  /// the provider's format, or JSON past a bound of the JSON layer
  /// (json::upstream_limits, duplicate keys). A failure of the model.
  upstream_invalid,
  /// The upstream said it is overloaded (Anthropic's 529).
  upstream_overloaded,
  /// No candidate model admitted the request.
  no_model_available,
  /// The gateway is at its connection limit or shutting down.
  overloaded,
  /// The request's total deadline passed.
  deadline_exceeded,
  /// The client closed its connection before the answer (logged as 499;
  /// nobody reads the body).
  client_closed,
  /// A plugin blocked the request (its status, e.g. 451; default 403).
  policy_blocked,
  /// The request's tags allow no model it may use (tag routing, fail
  /// closed).
  policy_forbidden,
  /// A plugin failed or did not answer in time and fails closed.
  plugin_failed,
  /// A bug or a dead actor: the gateway could not finish the request.
  internal,
  /// A configuration file is invalid (startup and --check-config only).
  invalid_config,
};

/// Returns the enum name of `x`, e.g. "model_not_found".
std::string_view to_string(errc x);

/// Number of codes, for tests that walk every code.
constexpr uint8_t errc_count = static_cast<uint8_t>(errc::invalid_config) + 1;

/// Makes a CAF error in category "pw"; found by ADL.
caf::error make_error(errc x);

/// Makes a CAF error in category "pw" with a human-readable message.
caf::error make_error(errc x, std::string message);

/// Makes a CAF error in category "pw" with a message and the request field
/// at fault (OpenAI's `param`).
caf::error make_error(errc x, std::string message, std::string param);

/// Makes a CAF error in category "pw" that tells the client when to retry
/// (`Retry-After`, in seconds).
caf::error make_retry_error(errc x, std::string message, uint32_t retry_after);

/// Returns the errc of a "pw" error, or errc::internal for foreign errors.
errc code_of(const caf::error& err);

/// Returns the message attached by make_error, or CAF's rendering of a
/// foreign error.
std::string message_of(const caf::error& err);

/// Returns the `param` attached by make_error, or "".
std::string param_of(const caf::error& err);

/// Returns the seconds attached by make_retry_error, or 0.
uint32_t retry_after_of(const caf::error& err);

} // namespace pw
