#pragma once

// The `echo` provider: answers every endpoint inside the gateway.

#include "adapters/provider.hpp"

namespace pw::adapters::echo {

const provider& echo_provider();

} // namespace pw::adapters::echo
