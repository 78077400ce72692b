#pragma once

// systemd's readiness protocol (sd_notify(3)) without libsystemd: one
// datagram to the socket named by $NOTIFY_SOCKET. Without that variable
// (not started by systemd with Type=notify) nothing is sent.

#include <string_view>

namespace pw::app {

/// Sends `state` (e.g. "READY=1"); returns false if it could not be sent.
bool sd_notify(std::string_view state);

/// "RELOADING=1" with the MONOTONIC_USEC systemd 253+ asks for.
bool sd_notify_reloading();

} // namespace pw::app
