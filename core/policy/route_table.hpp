#pragma once

// Pure routing: turns a request's model, tags and key into the ordered list
// of candidate model aliases. The ROUTER actor owns one and hands the list
// to the SESSION, which asks the MODELs for admission in this order.

#include "core/config/config.hpp"

#include <caf/expected.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace pw {

/// The models that may serve a request, in the order to try them, and why.
struct route {
  std::vector<std::string> models;
  /// For `X-Route-Reason` and the audit log, e.g. "model:gpt-4o",
  /// "chain:main", "default:echo", "tag:client-data->chain:local".
  std::string reason;
};

class route_table {
public:
  explicit route_table(const gateway_config& cfg);

  /// Candidates for a request, before the key's allowlist:
  /// - a chain name: the chain's members in order;
  /// - a model alias: the first chain (config order) containing it, from
  ///   its position on; else just the model;
  /// - no model: the default model's chain as for an alias.
  /// Tag rules then fail closed: when `tags` match rules, only members of
  /// every matched rule's chain may serve (their intersection, in the
  /// first matched chain's order). A named model inside that set is tried
  /// first and falls back along it; one outside is replaced by the set
  /// (`tag_override: reroute`) or refused (`reject`).
  /// Errors: `model_not_found` for an unknown name; `policy_forbidden`
  /// when the tags permit no model, or refuse the named one.
  [[nodiscard]] caf::expected<route>
  candidates(std::string_view requested,
             const std::vector<std::string>& tags) const;

  /// Candidates filtered by the key's allowlist `globs`, then by the
  /// `endpoint` called (models that do not serve it are dropped). Errors:
  /// those of candidates(); `model_not_allowed` when the client named a
  /// model its key may not use; `no_allowed_model` when nothing is left;
  /// `endpoint_unsupported` when the named model, or every allowed model
  /// of the route, does not serve `endpoint`.
  [[nodiscard]] caf::expected<route>
  resolve(std::string_view requested, const std::vector<std::string>& tags,
          const std::vector<std::string>& globs,
          api_endpoint endpoint = api_endpoint::chat) const;

private:
  std::vector<std::string> from_chain_of(const std::string& alias) const;

  caf::expected<route>
  apply_tag_rules(std::string_view requested, route base,
                  const std::vector<std::string>& tags) const;

  /// What `alias` serves (nothing for an unknown alias).
  [[nodiscard]] endpoint_set endpoints_of(std::string_view alias) const;

  std::vector<std::string> models_;
  /// The endpoints of `models_[i]`.
  std::vector<endpoint_set> serves_;
  routing_config routing_;
};

} // namespace pw
