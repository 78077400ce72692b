#pragma once

// Shell-style glob matching for key allowlists (`*`, `?`, `[abc]`, `[!a-z]`).

#include <string>
#include <string_view>
#include <vector>

namespace pw {

/// Matches `name` against `pattern` like POSIX fnmatch without flags:
/// `*` any run (also empty), `?` one character, `[...]` a set or range,
/// `[!...]` its complement. Case-sensitive. Runs in O(|pattern| * |name|).
bool glob_match(std::string_view pattern, std::string_view name);

/// True if any pattern in `globs` matches `name`.
bool glob_any(const std::vector<std::string>& globs, std::string_view name);

} // namespace pw
