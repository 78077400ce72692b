#pragma once

// A service pw-router POSTs JSON to off the provider path: an `http`
// plugin's decision service, an audit witness, a trace collector. One
// place builds their requests, so each sends one Content-Type.

#include "core/request/exchange.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace pw {

struct service_target {
  endpoint target;
  /// Path and query of the POST.
  std::string path;
  /// Configured headers (e.g. an API key of the service).
  std::vector<header_field> headers;
  /// CA bundle that verifies the service (empty: system store).
  std::string ca_file;
  /// For the connection, the first byte and the whole exchange.
  std::chrono::milliseconds timeout{5000};
};

/// The POST of `body` to `to`: `Content-Type: application/json` first,
/// then the configured headers but a configured Content-Type.
upstream_request service_post(const service_target& to, std::string body);

} // namespace pw
