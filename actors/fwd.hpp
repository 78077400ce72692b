#pragma once

// Forward declarations of the actor layer, so headers need not include CAF.

#include <memory>

namespace pw::actors {

struct generation;
using generation_ptr = std::shared_ptr<const generation>;

} // namespace pw::actors
