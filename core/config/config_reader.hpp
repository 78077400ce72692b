#pragma once

// Reading a part of the config that its owner checks (a plugin's `config`
// mapping, a provider's own keys of a model) with the same rules as the
// config loader: unknown keys are errors, and every message starts with
// the YAML path of the value at fault.

#include "core/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pw {

class config_reader {
public:
  /// Reads `entry.config`; problems are appended to `errors`.
  config_reader(const plugin_entry& entry, std::vector<std::string>& errors);

  /// Reads `root` (a mapping at `path`); problems are appended to `errors`.
  config_reader(YAML::Node root, std::string path,
                std::vector<std::string>& errors);

  /// The mapping read (for a plugin entry: its `config`, an empty map when
  /// it has none).
  [[nodiscard]] const YAML::Node& root() const { return root_; }

  /// The YAML path of root(), e.g. "middleware.pre_request[0].config".
  [[nodiscard]] const std::string& path() const { return path_; }

  void fail(const std::string& path, std::string why);

  [[nodiscard]] bool ok() const { return errors_.size() == initial_errors_; }

  /// False (with an error) unless `node` is a mapping whose keys are all
  /// in `keys`.
  bool check_keys(const YAML::Node& node, const std::string& path,
                  std::initializer_list<std::string_view> keys);

  std::optional<std::string> string(const YAML::Node& map, std::string_view key,
                                    const std::string& path,
                                    bool required = false);

  std::optional<int64_t> integer(const YAML::Node& map, std::string_view key,
                                 const std::string& path, int64_t min,
                                 int64_t max);

  std::optional<bool> boolean(const YAML::Node& map, std::string_view key,
                              const std::string& path);

  /// A list of strings; nullopt when absent.
  std::optional<std::vector<std::string>>
  strings(const YAML::Node& map, std::string_view key, const std::string& path);

  static std::string join(const std::string& path, std::string_view key);
  static std::string index(const std::string& path, size_t i);

private:
  YAML::Node root_;
  std::string path_;
  std::vector<std::string>& errors_;
  size_t initial_errors_;
};

} // namespace pw
