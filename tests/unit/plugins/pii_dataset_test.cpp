// Scores the `pii` SCANNER on the labelled set in tests/data/pii (format and
// scoring rule: tests/data/pii/README.md): recall and false-positive rate per
// kind, printed, and checked against floors set from the measured figures.

#include "plugins/pii/pii_scanner.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace pw::plugins::pii;

namespace {

/// One line of a data file.
struct labelled {
  size_t line = 0;
  std::string text;
  std::vector<std::string> pii;
};

std::vector<labelled> read_set(const std::string& file) {
  std::ifstream in{std::string{PW_TEST_DATA_DIR} + "/pii/" + file};
  REQUIRE(in.good());
  std::vector<labelled> result;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    INFO(file << ":" << n);
    auto doc = nlohmann::json::parse(line);
    REQUIRE(doc.is_object());
    REQUIRE(doc.size() == 3);
    REQUIRE(doc.at("text").is_string());
    REQUIRE(doc.at("pii").is_array());
    REQUIRE(doc.at("note").is_string());
    labelled x;
    x.line = n;
    x.text = doc["text"].get<std::string>();
    x.pii = doc["pii"].get<std::vector<std::string>>();
    result.push_back(std::move(x));
  }
  return result;
}

bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\n") == std::string_view::npos;
}

/// The score of one kind.
struct score {
  size_t listed = 0;
  size_t found = 0;
  size_t negatives = 0;
  size_t false_positive_lines = 0;
  size_t extra = 0;
  size_t positives = 0;
  std::ostringstream detail;
};

score score_kind(pii_kind kind, const std::string& file) {
  static const pii_scanner scanner{pii_options{}};
  score s;
  for (const auto& x : read_set(file)) {
    std::vector<pii_finding> mine;
    for (const auto& f : scanner.scan(x.text))
      if (f.kind == kind)
        mine.push_back(f);
    auto shown = [&](const pii_finding& f) {
      return "'" + x.text.substr(f.offset, f.length) + "'";
    };
    if (x.pii.empty()) {
      ++s.negatives;
      if (!mine.empty()) {
        ++s.false_positive_lines;
        s.detail << "  false positive " << file << ":" << x.line << " -> "
                 << shown(mine.front()) << "\n";
      }
      continue;
    }
    ++s.positives;
    // The k-th listing of a value is its k-th occurrence in the text.
    std::vector<std::pair<size_t, size_t>> spans;
    for (size_t i = 0; i < x.pii.size(); ++i) {
      const auto& value = x.pii[i];
      auto k = std::count(x.pii.begin(), x.pii.begin() + i, value);
      auto offset = x.text.find(value);
      for (; k > 0 && offset != std::string::npos; --k)
        offset = x.text.find(value, offset + 1);
      INFO(file << ":" << x.line << " lists '" << value << "'");
      REQUIRE(offset != std::string::npos);
      spans.emplace_back(offset, value.size());
    }
    for (auto [offset, length] : spans) {
      ++s.listed;
      // Exact, allowing only whitespace inside the finding around it.
      bool hit = std::any_of(mine.begin(), mine.end(), [&](const auto& f) {
        return f.offset <= offset && f.offset + f.length >= offset + length
               && blank(x.text.substr(f.offset, offset - f.offset))
               && blank(x.text.substr(offset + length,
                                      f.offset + f.length - offset - length));
      });
      if (hit)
        ++s.found;
      else
        s.detail << "  missed " << file << ":" << x.line << " '"
                 << x.text.substr(offset, length) << "'\n";
    }
    for (const auto& f : mine) {
      bool touches = std::any_of(spans.begin(), spans.end(), [&](auto sp) {
        return f.offset < sp.first + sp.second
               && sp.first < f.offset + f.length;
      });
      if (!touches) {
        ++s.extra;
        s.detail << "  extra " << file << ":" << x.line << " " << shown(f)
                 << "\n";
      }
    }
  }
  return s;
}

/// The floors: what this scanner reaches on the set, rounded down so one
/// deliberate label change does not fail the build, and never below what
/// Presidio reaches on the same set (docs/plugins.md#measured).
struct floor_row {
  pii_kind kind;
  const char* file;
  double recall;
  double false_positives;
};

constexpr floor_row floors[] = {
  {pii_kind::email, "email.jsonl", 0.97, 0.02},
  {pii_kind::phone, "phone.jsonl", 0.97, 0.03},
  {pii_kind::card, "card.jsonl", 0.97, 0.02},
  {pii_kind::iban, "iban.jsonl", 0.98, 0.0},
  {pii_kind::ssn, "ssn.jsonl", 0.98, 0.02},
};

} // namespace

TEST_CASE("pii dataset: recall and false positives per kind meet the floors",
          "[pii][dataset]") {
  for (const auto& row : floors) {
    auto s = score_kind(row.kind, row.file);
    auto recall = static_cast<double>(s.found) / static_cast<double>(s.listed);
    auto fp_rate = static_cast<double>(s.false_positive_lines)
                   / static_cast<double>(s.negatives);
    char line[256];
    std::snprintf(line, sizeof line,
                  "pii dataset: %s recall %zu/%zu = %.3f (floor %.2f), false "
                  "positives %zu/%zu = %.3f (ceiling %.2f), extra %zu",
                  std::string{to_string(row.kind)}.c_str(), s.found, s.listed,
                  recall, row.recall, s.false_positive_lines, s.negatives,
                  fp_rate, row.false_positives, s.extra);
    std::cout << line << "\n" << s.detail.str();
    INFO(line << "\n" << s.detail.str());
    // The set itself cannot shrink below what the issue asks for.
    CHECK(s.positives >= 50);
    CHECK(s.negatives >= 50);
    CHECK(recall >= row.recall);
    CHECK(fp_rate <= row.false_positives);
    CHECK(s.extra <= 1);
  }
}

// Not run by `make test` (hidden tag): the scanner's throughput on the
// labelled set, a PII-dense text. Run with a release build:
//   build/release/tests/pw_unit_tests "[.bench][pii]"
TEST_CASE("pii dataset: scan throughput", "[.bench][pii]") {
  std::string text;
  for (const auto& row : floors)
    for (const auto& x : read_set(row.file))
      text += x.text + "\n";
  const pii_scanner scanner{pii_options{}};
  size_t found = 0;
  constexpr int rounds = 200;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < rounds; ++i)
    found += scanner.scan(text).size();
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  auto mb = static_cast<double>(text.size()) * rounds / 1e6;
  std::cout << "pii scan: " << text.size() << " bytes x " << rounds << " in "
            << took.count() << " s = " << mb / took.count() << " MB/s, "
            << found / rounds << " findings per round\n";
  CHECK(found > 0);
}
