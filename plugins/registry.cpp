// The one list of built-in plugins. The plugin work adds each plugin here
// (name, config validation, actor factory); until then the list is empty and
// every middleware entry is a configuration error that says so.

#include "plugins/plugin.hpp"

#include <algorithm>

namespace pw::plugins {

namespace {

std::string joined_builtins() {
  std::string out;
  for (auto name : builtin_names()) {
    if (!out.empty())
      out += ", ";
    out += name;
  }
  return out.empty() ? std::string{"none in this build"} : out;
}

void check_list(const std::vector<plugin_entry>& entries,
                std::vector<std::string>& errors) {
  for (const auto& e : entries) {
    auto names = builtin_names();
    if (std::find(names.begin(), names.end(), e.plugin) != names.end())
      continue;
    std::string why = "unknown plugin '" + e.plugin + "'";
    if (e.plugin.starts_with("plugins."))
      why += " (pw-router's Python plugin modules do not run here; use a "
             "built-in plugin)";
    errors.push_back(e.path + ".plugin: " + why
                     + "; built-in plugins: " + joined_builtins());
  }
}

} // namespace

std::vector<std::string_view> builtin_names() {
  return {};
}

std::vector<std::string> check_middleware(const gateway_config& cfg) {
  std::vector<std::string> errors;
  check_list(cfg.middleware.pre_request, errors);
  check_list(cfg.middleware.post_response, errors);
  return errors;
}

} // namespace pw::plugins
