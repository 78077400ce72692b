#pragma once

// Where a failure in input handling is caught. Every io-thread completion
// and every actor handler that touches bytes from outside (clients,
// providers, plugin services) runs inside one of these boundaries. A
// failure there (an exception: a bug, an allocation that failed) ends only
// the request it belongs to, with a 500 or 502; it is logged with the
// request id (event `internal_error`) and counted
// (`pw_router_internal_errors_total{boundary}`). Nothing escapes to end the
// process.
//
// Builds with PW_FAULT_INJECTION (the `dev` preset) can make a boundary
// throw on purpose: the environment variable PW_ROUTER_FAULTS lists
// `name[:count]` entries (comma-separated); the first `count` passes
// through that boundary throw (default 1). The integration tests use it to
// prove that each boundary holds.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pw {

enum class boundary : uint8_t {
  /// An io thread serving one request: dispatch, the endpoints, the
  /// answer's rendering.
  request,
  /// An io thread's provider call (upstream_client), streams included.
  upstream_call,
  /// An io thread handing a provider's answer to its SESSION, including
  /// the fast path that translates and answers on the io thread.
  upstream_done,
  /// One piece of a relayed stream through its translator.
  stream_piece,
  /// A SESSION's handlers (plugin verdicts, routes, provider answers).
  session,
  /// The ROUTER resolving a request (the client's model name and tags):
  /// a failure fails that request, never the ROUTER.
  route,
  /// A PLUGIN's handlers (scanning requests and answers, decision
  /// services' answers).
  plugin,
};

/// Number of boundaries, for tables indexed by boundary.
constexpr size_t boundary_count = static_cast<size_t>(boundary::plugin) + 1;

/// What a client is told when its request failed inside the gateway.
inline constexpr std::string_view internal_failure_message
  = "The gateway failed while handling this request; the failure is logged "
    "under its request id";

/// The boundary's name: "request", "upstream_call", ...
std::string_view to_string(boundary where);

/// Logs (event `internal_error`) and counts a failure caught at `where`.
/// `what` describes it; exception texts are the gateway's own or the
/// standard library's, never input bytes or secrets.
void report_failure(boundary where, std::string_view request_id,
                    std::string_view what) noexcept;

/// Failures caught at `where` since the process started.
uint64_t failures_at(boundary where);

/// What the exception being handled says (call inside a catch block).
std::string current_exception_text();

/// Throws std::runtime_error when PW_ROUTER_FAULTS arms `where` (builds
/// with PW_FAULT_INJECTION only; elsewhere it does nothing).
void inject_fault(boundary where);

/// Throws std::runtime_error outside any boundary, so that it ends the
/// PLUGIN actor whose handler called it, when PW_ROUTER_FAULTS arms
/// `plugin_crash[:count]` (builds with PW_FAULT_INJECTION only). The
/// integration tests end PLUGINs this way to watch the SUPERVISOR restart
/// them.
void inject_plugin_crash();

} // namespace pw
