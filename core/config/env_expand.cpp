#include "core/config/env_expand.hpp"

#include "core/errc.hpp"

#include <algorithm>
#include <cstdlib>

namespace pw {

namespace {

bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

} // namespace

std::optional<std::string> process_env(const std::string& name) {
  // getenv is safe here: the config is loaded before any thread starts.
  if (const char* value = std::getenv(name.c_str()))
    return std::string{value};
  return std::nullopt;
}

caf::expected<std::string> expand_env(std::string_view text,
                                      const env_lookup& lookup) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    auto dollar = text.find("${", pos);
    if (dollar == std::string_view::npos) {
      out.append(text.substr(pos));
      break;
    }
    out.append(text.substr(pos, dollar - pos));
    auto close = text.find('}', dollar + 2);
    if (close == std::string_view::npos)
      return make_error(errc::invalid_config,
                        "unterminated variable reference '${' (missing '}')");
    auto inner = text.substr(dollar + 2, close - dollar - 2);
    auto sep = inner.find(":-");
    auto name = std::string{inner.substr(0, sep)};
    // The text inside the braces is not echoed: it may be a pasted secret.
    auto valid = !name.empty() && is_name_start(name[0])
                 && std::all_of(name.begin(), name.end(), is_name_char);
    if (!valid)
      return make_error(errc::invalid_config,
                        "malformed variable reference: '${' must be followed "
                        "by a name of letters, digits and '_'");
    auto value = lookup(name);
    if (sep != std::string_view::npos) {
      if (!value || value->empty())
        value = std::string{inner.substr(sep + 2)};
    } else if (!value) {
      return make_error(errc::invalid_config,
                        "environment variable " + name + " is not set");
    }
    out.append(*value);
    pos = close + 1;
  }
  return out;
}

} // namespace pw
