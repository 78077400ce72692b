#pragma once

// `provider: gemini`: Google's Gemini API through its OpenAI-compatible
// endpoint, with an API key.

#include "adapters/provider.hpp"

namespace pw::adapters::gemini {

const provider& gemini_provider();

} // namespace pw::adapters::gemini
