#pragma once

// The `anthropic` provider: Anthropic's Messages API, for chat
// (translated), the Messages API itself and token counting.

#include "adapters/provider.hpp"

namespace pw::adapters::anthropic {

const provider& anthropic_provider();

} // namespace pw::adapters::anthropic
