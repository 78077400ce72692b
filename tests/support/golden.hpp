#pragma once

// Golden-file helpers for the unit tests: a file read whole, a file read as
// JSON, and the cases of a golden folder (files named <case>.in.*).

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace pw::test {

/// The bytes of `path`; the test stops here if it cannot be opened.
inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// The JSON in `path`.
inline nlohmann::json load_json(const std::filesystem::path& path) {
  return nlohmann::json::parse(slurp(path));
}

/// Every case name in `dir / sub` (files named <case>.in.*), sorted.
inline std::vector<std::string> golden_cases(const std::filesystem::path& dir,
                                             const std::string& sub) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir / sub)) {
    auto name = e.path().filename().string();
    auto pos = name.find(".in.");
    if (pos != std::string::npos)
      out.push_back(name.substr(0, pos));
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace pw::test
