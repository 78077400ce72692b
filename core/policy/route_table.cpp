#include "core/policy/route_table.hpp"

#include "core/errc.hpp"
#include "core/policy/glob.hpp"

#include <algorithm>

namespace pw {

route_table::route_table(const gateway_config& cfg) : routing_(cfg.routing) {
  for (const auto& m : cfg.models) {
    models_.push_back(m->alias);
    serves_.push_back(m->endpoints);
  }
}

endpoint_set route_table::endpoints_of(std::string_view alias) const {
  for (size_t i = 0; i < models_.size(); ++i)
    if (models_[i] == alias)
      return serves_[i];
  return {};
}

namespace {

/// "chat, embeddings": what a model serves, for an error message.
std::string list_of(endpoint_set set) {
  std::string out;
  for (auto e : all_endpoints) {
    if (!configurable(e) || !set.has(e))
      continue;
    if (!out.empty())
      out += ", ";
    out += to_string(e);
  }
  return out;
}

} // namespace

std::vector<std::string>
route_table::from_chain_of(const std::string& alias) const {
  for (const auto& chain : routing_.fallback_chains) {
    auto pos = std::find(chain.members.begin(), chain.members.end(), alias);
    if (pos != chain.members.end())
      return {pos, chain.members.end()};
  }
  return {alias};
}

caf::expected<route>
route_table::candidates(std::string_view requested,
                        const std::vector<std::string>& tags) const {
  route base;
  if (!requested.empty()) {
    const chain_config* named = nullptr;
    for (const auto& chain : routing_.fallback_chains)
      if (chain.name == requested)
        named = &chain;
    auto name = std::string{requested};
    if (named != nullptr) {
      base = {named->members, "chain:" + name};
    } else {
      if (std::find(models_.begin(), models_.end(), name) == models_.end())
        return make_error(errc::model_not_found,
                          "The model '" + name + "' does not exist");
      base = {from_chain_of(name), "model:" + name};
    }
  } else {
    base = {from_chain_of(routing_.default_model),
            "default:" + routing_.default_model};
  }
  return apply_tag_rules(requested, std::move(base), tags);
}

caf::expected<route>
route_table::apply_tag_rules(std::string_view requested, route base,
                             const std::vector<std::string>& tags) const {
  // Every matched rule narrows the models that may serve: fail closed.
  std::vector<std::string> permitted;
  std::string reason;
  std::string tag_list;
  std::string chain_list;
  bool matched = false;
  for (const auto& rule : routing_.rules) {
    if (std::find(tags.begin(), tags.end(), rule.tag) == tags.end())
      continue;
    const auto* chain = [&]() -> const chain_config* {
      for (const auto& c : routing_.fallback_chains)
        if (c.name == rule.chain)
          return &c;
      return nullptr;
    }();
    // The loader checks that every rule names a chain; an unknown one
    // permits nothing.
    const std::vector<std::string> none;
    const auto& members = chain != nullptr ? chain->members : none;
    if (!matched) {
      permitted = members;
    } else {
      std::erase_if(permitted, [&](const std::string& m) {
        return std::find(members.begin(), members.end(), m) == members.end();
      });
    }
    matched = true;
    if (!reason.empty()) {
      reason += ",";
      tag_list += ", ";
      chain_list += ", ";
    }
    reason += "tag:" + rule.tag + "->chain:" + rule.chain;
    tag_list += "'" + rule.tag + "'";
    chain_list += "'" + rule.chain + "'";
  }
  if (!matched)
    return base;
  if (permitted.empty())
    return make_error(errc::policy_forbidden,
                      "The request is tagged " + tag_list
                        + " and the chains its routing rules allow ("
                        + chain_list + ") share no model");
  if (requested.empty())
    return route{std::move(permitted), std::move(reason)};
  // The client's own choice, as far as the tags permit it.
  std::vector<std::string> kept;
  for (const auto& m : base.models)
    if (std::find(permitted.begin(), permitted.end(), m) != permitted.end())
      kept.push_back(m);
  auto name = std::string{requested};
  bool is_chain = base.reason.starts_with("chain:");
  if (!is_chain && !kept.empty() && kept.front() == name) {
    // A permitted model: tried first, then the rest of the permitted
    // chain after it.
    auto pos = std::find(permitted.begin(), permitted.end(), name);
    return route{{pos, permitted.end()}, std::move(reason)};
  }
  if (is_chain && !kept.empty())
    return route{std::move(kept), reason + " (" + base.reason + ")"};
  if (routing_.on_tag_conflict == tag_override::reject)
    return make_error(errc::policy_forbidden,
                      "The " + std::string{is_chain ? "chain" : "model"} + " '"
                        + name + "' may not serve a request tagged " + tag_list
                        + " (routing.rules allow chain " + chain_list + ")");
  return route{std::move(permitted), reason + " (rerouted from " + name + ")"};
}

caf::expected<route> route_table::resolve(std::string_view requested,
                                          const std::vector<std::string>& tags,
                                          const std::vector<std::string>& globs,
                                          api_endpoint endpoint) const {
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
  for (auto& alias : all->models)
    if (glob_any(globs, alias))
      allowed.push_back(std::move(alias));
  if (allowed.empty()) {
    auto what = requested.empty() ? std::string{"the default route"}
                                  : "'" + std::string{requested} + "'";
    return make_error(errc::no_allowed_model,
                      "No model of " + what + " is allowed for this API key");
  }
  // The client's own mistake when it named the model: said as such, even
  // if tags would have rerouted the request.
  auto path = std::string{path_of(endpoint)};
  if (is_model && !endpoints_of(requested).has(endpoint))
    return make_error(
      errc::endpoint_unsupported,
      "The model '" + std::string{requested} + "' does not serve " + path
        + " (it serves: " + list_of(endpoints_of(requested)) + ")"
        + (endpoint == api_endpoint::count_tokens
               && endpoints_of(requested).has(api_endpoint::messages)
             ? "; only anthropic and echo models count tokens"
             : ""),
      "model");
  std::erase_if(allowed, [&](const std::string& alias) {
    return !endpoints_of(alias).has(endpoint);
  });
  if (allowed.empty()) {
    auto what = requested.empty() ? std::string{"the default route"}
                                  : "'" + std::string{requested} + "'";
    return make_error(errc::endpoint_unsupported,
                      "No model of " + what
                        + " that this API key may use serves " + path,
                      "model");
  }
  all->models = std::move(allowed);
  // The reason becomes a response header (X-Route-Reason): printable
  // ASCII only, whatever names the config uses.
  for (auto& c : all->reason)
    if (c < 0x20 || c > 0x7e)
      c = '?';
  return all;
}

} // namespace pw
