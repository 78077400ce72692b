#pragma once

// Pure routing: turns a request's model, tags and key into the ordered list
// of candidate model aliases. The ROUTER actor owns one and asks the MODELs
// for admission in this order.

#include "core/config.hpp"

#include <caf/expected.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace pw {

class route_table {
public:
  explicit route_table(const gateway_config& cfg);

  /// Candidates for a request, before the key's allowlist:
  /// - a chain name: the chain's members in order;
  /// - a model alias: the first chain (config order) containing it, from
  ///   its position on; else just the model;
  /// - no model: the first rule whose tag is among `tags` names a chain:
  ///   that chain; else the default model's chain as for an alias.
  /// Error `model_not_found` for an unknown name.
  [[nodiscard]] caf::expected<std::vector<std::string>>
  candidates(std::string_view requested,
             const std::vector<std::string>& tags) const;

  /// Candidates filtered by the key's allowlist `globs`. Errors:
  /// `model_not_found`; `model_not_allowed` when the client named a model
  /// its key may not use; `no_allowed_model` when nothing is left.
  [[nodiscard]] caf::expected<std::vector<std::string>>
  resolve(std::string_view requested, const std::vector<std::string>& tags,
          const std::vector<std::string>& globs) const;

private:
  std::vector<std::string> from_chain_of(const std::string& alias) const;

  std::vector<std::string> models_;
  routing_config routing_;
};

} // namespace pw
