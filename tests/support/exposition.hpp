#pragma once

// A strict parser of the Prometheus text exposition format 0.0.4, for tests:
// it refuses anything a scraper could misread (a sample before its TYPE, a
// family split in two, a duplicate series, a bad escape, histogram buckets
// that are not cumulative or whose +Inf bucket differs from _count).

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pw::test {

using label_map = std::map<std::string, std::string>;

struct prom_sample {
  std::string name;
  label_map labels;
  double value = 0;
};

struct prom_family {
  std::string name;
  std::string type;
  std::string help;
  std::vector<prom_sample> samples;
};

struct prom_text {
  std::map<std::string, prom_family> families;

  /// The family `name`; throws when absent.
  const prom_family& family(const std::string& name) const {
    auto it = families.find(name);
    if (it == families.end())
      throw std::runtime_error("no family " + name);
    return it->second;
  }

  bool has(const std::string& name) const { return families.count(name) > 0; }

  /// The value of the series `name{labels}` (exactly these labels), or NaN.
  double value(const std::string& name, const label_map& labels = {}) const {
    for (const auto& [fname, fam] : families)
      for (const auto& s : fam.samples)
        if (s.name == name && s.labels == labels)
          return s.value;
    return std::nan("");
  }

  /// Every sample of every family.
  std::vector<prom_sample> all() const {
    std::vector<prom_sample> out;
    for (const auto& [fname, fam] : families)
      out.insert(out.end(), fam.samples.begin(), fam.samples.end());
    return out;
  }
};

namespace detail {

inline bool name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
         || (colon && c == ':');
}

inline bool name_char(char c, bool colon) {
  return name_start(c, colon) || (c >= '0' && c <= '9');
}

inline bool valid_name(std::string_view s, bool colon) {
  if (s.empty() || !name_start(s[0], colon))
    return false;
  for (char c : s)
    if (!name_char(c, colon))
      return false;
  return true;
}

[[noreturn]] inline void fail(size_t line, const std::string& why) {
  throw std::runtime_error("exposition line " + std::to_string(line) + ": "
                           + why);
}

inline double parse_value(std::string_view text, size_t line) {
  if (text == "+Inf")
    return INFINITY;
  if (text == "-Inf")
    return -INFINITY;
  if (text == "NaN")
    return NAN;
  std::string s{text};
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    fail(line, "bad value '" + s + "'");
  return v;
}

/// The family a sample named `name` belongs to, given the current family.
inline bool belongs(const prom_family& fam, const std::string& name) {
  if (fam.type == "histogram")
    return name == fam.name + "_bucket" || name == fam.name + "_sum"
           || name == fam.name + "_count";
  if (fam.type == "summary")
    return name == fam.name || name == fam.name + "_sum"
           || name == fam.name + "_count";
  return name == fam.name;
}

/// Buckets cumulative, le ascending, +Inf last and equal to _count, _sum
/// present; for each label set of the histogram.
inline void check_histogram(const prom_family& fam) {
  struct series {
    std::vector<std::pair<double, double>> buckets; // le, value
    bool has_sum = false;
    bool has_count = false;
    double count = 0;
  };
  std::map<label_map, series> by_labels;
  for (const auto& s : fam.samples) {
    auto labels = s.labels;
    if (s.name == fam.name + "_bucket") {
      auto it = labels.find("le");
      if (it == labels.end())
        throw std::runtime_error(fam.name + ": bucket without le");
      double le = it->second == "+Inf" ? INFINITY : std::stod(it->second);
      labels.erase(it);
      by_labels[labels].buckets.emplace_back(le, s.value);
    } else if (s.name == fam.name + "_sum") {
      by_labels[labels].has_sum = true;
    } else {
      by_labels[labels].has_count = true;
      by_labels[labels].count = s.value;
    }
  }
  for (const auto& [labels, h] : by_labels) {
    if (h.buckets.empty() || !h.has_sum || !h.has_count)
      throw std::runtime_error(fam.name + ": incomplete histogram");
    for (size_t i = 1; i < h.buckets.size(); ++i) {
      if (!(h.buckets[i].first > h.buckets[i - 1].first))
        throw std::runtime_error(fam.name + ": le not ascending");
      if (h.buckets[i].second < h.buckets[i - 1].second)
        throw std::runtime_error(fam.name + ": buckets not cumulative");
    }
    if (!std::isinf(h.buckets.back().first))
      throw std::runtime_error(fam.name + ": no +Inf bucket");
    if (h.buckets.back().second != h.count)
      throw std::runtime_error(fam.name + ": +Inf bucket != _count");
  }
}

} // namespace detail

/// Parses `text`; throws std::runtime_error naming the line on any fault.
inline prom_text parse_exposition(std::string_view text) {
  using detail::fail;
  prom_text out;
  std::set<std::string> closed; // families whose samples ended
  std::set<std::pair<std::string, label_map>> seen;
  prom_family* current = nullptr;
  if (!text.empty() && text.back() != '\n')
    fail(0, "the text must end with a newline");
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    ++line_no;
    auto nl = text.find('\n', pos);
    auto line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty())
      fail(line_no, "empty line");
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      if (sp == std::string_view::npos)
        fail(line_no, "HELP/TYPE without text");
      std::string name{rest.substr(0, sp)};
      auto arg = rest.substr(sp + 1);
      if (!detail::valid_name(name, true))
        fail(line_no, "bad metric name '" + name + "'");
      if (closed.count(name))
        fail(line_no, "family " + name + " appears twice");
      if (current == nullptr || current->name != name) {
        if (current != nullptr)
          closed.insert(current->name);
        if (out.families.count(name))
          fail(line_no, "family " + name + " appears twice");
        current = &out.families[name];
        current->name = name;
      }
      if (line[2] == 'H') {
        if (!current->help.empty())
          fail(line_no, "second HELP for " + name);
        current->help = std::string{arg};
      } else {
        if (!current->type.empty())
          fail(line_no, "second TYPE for " + name);
        if (!current->samples.empty())
          fail(line_no, "TYPE after samples of " + name);
        static const std::set<std::string_view> types{
          "counter", "gauge", "histogram", "summary", "untyped"};
        if (!types.count(arg))
          fail(line_no, "unknown type '" + std::string{arg} + "'");
        current->type = std::string{arg};
      }
      continue;
    }
    if (line[0] == '#')
      continue; // a comment
    // name{label="value",...} value
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    std::string name{line.substr(0, i)};
    if (!detail::valid_name(name, true))
      fail(line_no, "bad metric name '" + name + "'");
    if (current == nullptr || current->type.empty()
        || !detail::belongs(*current, name))
      fail(line_no, "sample " + name + " outside its family's TYPE");
    label_map labels;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t start = i;
        while (i < line.size() && line[i] != '=')
          ++i;
        std::string lname{line.substr(start, i - start)};
        if (!detail::valid_name(lname, false) || lname.starts_with("__"))
          fail(line_no, "bad label name '" + lname + "'");
        if (i + 1 >= line.size() || line[i + 1] != '"')
          fail(line_no, "label value not quoted");
        i += 2;
        std::string value;
        for (;; ++i) {
          if (i >= line.size())
            fail(line_no, "unterminated label value");
          char c = line[i];
          if (c == '"')
            break;
          if (c == '\\') {
            if (++i >= line.size())
              fail(line_no, "dangling escape");
            char e = line[i];
            if (e == '\\' || e == '"')
              value += e;
            else if (e == 'n')
              value += '\n';
            else
              fail(line_no, "bad escape");
          } else {
            value += c;
          }
        }
        ++i; // the closing quote
        if (!labels.emplace(lname, value).second)
          fail(line_no, "label " + lname + " twice");
        if (i < line.size() && line[i] == ',')
          ++i;
        else if (i >= line.size() || line[i] != '}')
          fail(line_no, "expected , or }");
      }
      if (i >= line.size())
        fail(line_no, "unterminated labels");
      ++i; // '}'
    }
    if (i >= line.size() || line[i] != ' ')
      fail(line_no, "expected a space before the value");
    auto value_text = line.substr(i + 1);
    if (auto sp = value_text.find(' '); sp != std::string_view::npos)
      value_text = value_text.substr(0, sp); // a timestamp follows
    auto value = detail::parse_value(value_text, line_no);
    if (current->type == "counter" && (std::isnan(value) || value < 0))
      fail(line_no, "a counter must be a number >= 0");
    if (!seen.emplace(name, labels).second)
      fail(line_no, "duplicate series " + name);
    current->samples.push_back({name, std::move(labels), value});
  }
  for (const auto& [name, fam] : out.families)
    if (fam.type == "histogram")
      detail::check_histogram(fam);
  return out;
}

} // namespace pw::test
