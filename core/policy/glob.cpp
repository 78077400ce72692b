#include "core/policy/glob.hpp"

namespace pw {

namespace {

/// Matches one bracket expression at `pattern[pi]` ('[') against `c`.
/// Returns the index after the expression, or npos when it is unterminated
/// (then '[' is an ordinary character, as in fnmatch).
size_t match_set(std::string_view pattern, size_t pi, char c, bool& matched) {
  size_t i = pi + 1;
  bool negate = false;
  if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
    negate = true;
    ++i;
  }
  bool found = false;
  bool first = true;
  while (i < pattern.size() && (first || pattern[i] != ']')) {
    first = false;
    char lo = pattern[i];
    if (i + 2 < pattern.size() && pattern[i + 1] == '-'
        && pattern[i + 2] != ']') {
      char hi = pattern[i + 2];
      if (lo <= c && c <= hi)
        found = true;
      i += 3;
    } else {
      if (lo == c)
        found = true;
      ++i;
    }
  }
  if (i >= pattern.size())
    return std::string_view::npos;
  matched = found != negate;
  return i + 1;
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view name) {
  // Iterative matcher with one backtrack point for the last '*': linear in
  // practice and never exponential.
  size_t pi = 0;
  size_t ni = 0;
  size_t star_pi = std::string_view::npos;
  size_t star_ni = 0;
  while (ni < name.size()) {
    if (pi < pattern.size()) {
      char p = pattern[pi];
      if (p == '*') {
        star_pi = pi++;
        star_ni = ni;
        continue;
      }
      if (p == '?') {
        ++pi;
        ++ni;
        continue;
      }
      if (p == '[') {
        bool matched = false;
        auto next = match_set(pattern, pi, name[ni], matched);
        if (next != std::string_view::npos) {
          if (matched) {
            pi = next;
            ++ni;
            continue;
          }
        } else if (name[ni] == '[') {
          ++pi;
          ++ni;
          continue;
        }
      } else if (p == name[ni]) {
        ++pi;
        ++ni;
        continue;
      }
    }
    if (star_pi == std::string_view::npos)
      return false;
    pi = star_pi + 1;
    ni = ++star_ni;
  }
  while (pi < pattern.size() && pattern[pi] == '*')
    ++pi;
  return pi == pattern.size();
}

bool glob_any(const std::vector<std::string>& globs, std::string_view name) {
  for (const auto& g : globs)
    if (g == "*" || glob_match(g, name))
      return true;
  return false;
}

} // namespace pw
