#include "core/route_table.hpp"

#include "core/errc.hpp"
#include "core/glob.hpp"

#include <algorithm>

namespace pw {

route_table::route_table(const gateway_config& cfg) : routing_(cfg.routing) {
  for (const auto& m : cfg.models)
    models_.push_back(m->alias);
}

std::vector<std::string>
route_table::from_chain_of(const std::string& alias) const {
  for (const auto& chain : routing_.fallback_chains) {
    auto pos = std::find(chain.members.begin(), chain.members.end(), alias);
    if (pos != chain.members.end())
      return {pos, chain.members.end()};
  }
  return {alias};
}

caf::expected<std::vector<std::string>>
route_table::candidates(std::string_view requested,
                        const std::vector<std::string>& tags) const {
  if (!requested.empty()) {
    for (const auto& chain : routing_.fallback_chains)
      if (chain.name == requested)
        return chain.members;
    auto alias = std::string{requested};
    if (std::find(models_.begin(), models_.end(), alias) == models_.end())
      return make_error(errc::model_not_found,
                        "The model '" + alias + "' does not exist");
    return from_chain_of(alias);
  }
  for (const auto& rule : routing_.rules) {
    if (std::find(tags.begin(), tags.end(), rule.tag) == tags.end())
      continue;
    for (const auto& chain : routing_.fallback_chains)
      if (chain.name == rule.chain && !chain.members.empty())
        return chain.members;
  }
  return from_chain_of(routing_.default_model);
}

caf::expected<std::vector<std::string>>
route_table::resolve(std::string_view requested,
                     const std::vector<std::string>& tags,
                     const std::vector<std::string>& globs) const {
  auto all = candidates(requested, tags);
  if (!all)
    return all.error();
  bool is_model
    = !requested.empty()
      && std::find(models_.begin(), models_.end(), requested) != models_.end();
  if (is_model && !glob_any(globs, requested))
    return make_error(errc::model_not_allowed,
                      "The model '" + std::string{requested}
                        + "' is not allowed for this API key");
  std::vector<std::string> allowed;
  for (auto& alias : *all)
    if (glob_any(globs, alias))
      allowed.push_back(std::move(alias));
  if (allowed.empty()) {
    auto what = requested.empty() ? std::string{"the default route"}
                                  : "'" + std::string{requested} + "'";
    return make_error(errc::no_allowed_model,
                      "No model of " + what + " is allowed for this API key");
  }
  return allowed;
}

} // namespace pw
