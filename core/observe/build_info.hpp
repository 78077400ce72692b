#pragma once

// What this binary is: version, git revision and the libraries it was built
// with, for `pw-router --version` and pw_router_build_info.

#include <string>
#include <string_view>

namespace pw {

/// The short git revision the binary was configured from ("unknown"
/// outside a git checkout).
std::string_view git_revision();

/// One line per dependency, e.g. "CAF 0.17.6".
std::string dependency_versions();

} // namespace pw
