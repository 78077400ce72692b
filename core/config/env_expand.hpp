#pragma once

// `${VAR}` and `${VAR:-default}` expansion for configuration values.

#include <caf/expected.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pw {

/// Looks up one environment variable; nullopt when unset.
using env_lookup
  = std::function<std::optional<std::string>(const std::string& name)>;

/// Looks up variables in the process environment.
std::optional<std::string> process_env(const std::string& name);

/// Replaces every `${NAME}` and `${NAME:-default}` in `text` in one pass
/// (values are not expanded again). NAME is `[A-Za-z_][A-Za-z0-9_]*`.
/// `${NAME:-default}` uses the default when NAME is unset or empty. A `$`
/// not followed by `{` stays as it is. Errors: an unset variable without a
/// default, and a malformed reference.
caf::expected<std::string> expand_env(std::string_view text,
                                      const env_lookup& lookup);

} // namespace pw
