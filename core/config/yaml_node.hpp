#pragma once

// Small questions about YAML nodes that the config loader and the plugins'
// config readers both ask.

#include <yaml-cpp/yaml.h>

namespace pw {

/// True for a key that is missing or set to null (`key:` or `key: ~`).
inline bool is_absent(const YAML::Node& n) {
  return !n.IsDefined() || n.IsNull();
}

/// What a node is, for messages: "a mapping", "a list", ...
inline const char* kind_name(const YAML::Node& n) {
  switch (n.Type()) {
  case YAML::NodeType::Map:
    return "a mapping";
  case YAML::NodeType::Sequence:
    return "a list";
  case YAML::NodeType::Scalar:
    return "a scalar";
  case YAML::NodeType::Null:
    return "null";
  default:
    return "nothing";
  }
}

} // namespace pw
