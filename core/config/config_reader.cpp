#include "core/config/config_reader.hpp"

#include "core/config/yaml_node.hpp"

#include <algorithm>
#include <charconv>

namespace pw {

namespace {

std::string kind_of(const YAML::Node& n) {
  return kind_name(n);
}

} // namespace

config_reader::config_reader(const plugin_entry& entry,
                             std::vector<std::string>& errors)
    : path_(entry.path + ".config"), errors_(errors),
      initial_errors_(errors.size()) {
  if (entry.config && !is_absent(*entry.config))
    root_ = YAML::Clone(*entry.config);
  else
    root_ = YAML::Node{YAML::NodeType::Map};
}

config_reader::config_reader(YAML::Node root, std::string path,
                             std::vector<std::string>& errors)
    : root_(std::move(root)), path_(std::move(path)), errors_(errors),
      initial_errors_(errors.size()) {}

void config_reader::fail(const std::string& path, std::string why) {
  errors_.push_back(path + ": " + std::move(why));
}

std::string config_reader::join(const std::string& path, std::string_view key) {
  return path + "." + std::string{key};
}

std::string config_reader::index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

bool config_reader::check_keys(const YAML::Node& node, const std::string& path,
                               std::initializer_list<std::string_view> keys) {
  if (!node.IsMap()) {
    fail(path, "expected a mapping, got " + kind_of(node));
    return false;
  }
  bool good = true;
  for (const auto& kv : node) {
    auto key = kv.first.Scalar();
    if (std::find(keys.begin(), keys.end(), key) != keys.end())
      continue;
    std::string known;
    for (auto k : keys)
      known += (known.empty() ? "" : ", ") + std::string{k};
    fail(join(path, key), "unknown key (allowed: " + known + ")");
    good = false;
  }
  return good;
}

std::optional<std::string> config_reader::string(const YAML::Node& map,
                                                 std::string_view key,
                                                 const std::string& path,
                                                 bool required) {
  auto n = map[std::string{key}];
  if (is_absent(n)) {
    if (required)
      fail(join(path, key), "required");
    return std::nullopt;
  }
  if (!n.IsScalar()) {
    fail(join(path, key), "expected a string, got " + kind_of(n));
    return std::nullopt;
  }
  if (required && n.Scalar().empty()) {
    fail(join(path, key), "must not be empty");
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<int64_t> config_reader::integer(const YAML::Node& map,
                                              std::string_view key,
                                              const std::string& path,
                                              int64_t min, int64_t max) {
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  auto where = join(path, key);
  if (!n.IsScalar()) {
    fail(where, "expected an integer, got " + kind_of(n));
    return std::nullopt;
  }
  const auto& text = n.Scalar();
  int64_t value = 0;
  auto [ptr, ec]
    = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size()) {
    fail(where, "expected an integer (got '" + text + "')");
    return std::nullopt;
  }
  if (value < min || value > max) {
    fail(where, "must be between " + std::to_string(min) + " and "
                  + std::to_string(max) + " (got " + text + ")");
    return std::nullopt;
  }
  return value;
}

std::optional<bool> config_reader::boolean(const YAML::Node& map,
                                           std::string_view key,
                                           const std::string& path) {
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  if (n.IsScalar()) {
    const auto& t = n.Scalar();
    if (t == "true")
      return true;
    if (t == "false")
      return false;
  }
  fail(join(path, key), "expected true or false");
  return std::nullopt;
}

std::optional<std::vector<std::string>>
config_reader::strings(const YAML::Node& map, std::string_view key,
                       const std::string& path) {
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  auto where = join(path, key);
  if (!n.IsSequence()) {
    fail(where, "expected a list of strings, got " + kind_of(n));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      fail(index(where, i), "expected a string, got " + kind_of(n[i]));
      continue;
    }
    out.push_back(n[i].Scalar());
  }
  return out;
}

} // namespace pw
