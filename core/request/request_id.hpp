#pragma once

// Request ids: echo a sane client value, else generate one.

#include <string>
#include <string_view>

namespace pw {

/// True for 1..128 visible ASCII characters (no spaces, no controls).
bool sane_request_id(std::string_view id);

/// Returns 32 random lowercase hex characters (thread-local generator).
std::string new_request_id();

} // namespace pw
