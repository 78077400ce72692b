#pragma once

// Finds personal data (e-mail addresses, phone numbers, payment cards, IBANs,
// US SSNs) in free text for the `pii` plugin, and redacts what it finds.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
} // namespace re2

namespace pw::plugins::pii {

/// A kind of personal data the SCANNER looks for.
enum class pii_kind : uint8_t {
  /// An e-mail address, `local@domain.tld` (punycode and UTF-8 domains).
  email,
  /// A phone number: international (`+44 20 7946 0958`, `0044 ...`) of any
  /// country, or in a national format of a configured region
  /// (`(212) 555-0123`, `020 7946 0958`, `090-1234-5678`).
  phone,
  /// A payment card number: 12-19 digits of a known network, Luhn-valid.
  card,
  /// An International Bank Account Number of a registry country, mod-97
  /// valid.
  iban,
  /// A US Social Security Number: `ddd-dd-dddd` (dashes, dots or spaces), or
  /// plain digits after a context word.
  ssn,
};

/// Config name: "email", "phone", "card", "iban", "ssn".
std::string_view to_string(pii_kind x);

/// Redaction label: "EMAIL", "PHONE", "CARD", "IBAN", "SSN".
std::string_view label(pii_kind x);

/// Parses a config name; nullopt if unknown.
std::optional<pii_kind> parse_pii_kind(std::string_view name);

/// Every kind, in enum order.
std::vector<pii_kind> all_pii_kinds();

/// One piece of personal data: `length` bytes at byte `offset` of the text.
struct pii_finding {
  pii_kind kind;
  size_t offset;
  size_t length;

  friend bool operator==(const pii_finding&, const pii_finding&) = default;
};

/// The phone regions used when none are configured.
std::vector<std::string> default_phone_regions();

/// The SSN context words used when none are configured.
std::vector<std::string> default_ssn_context();

/// What a SCANNER looks for.
struct pii_options {
  /// The kinds reported (the others still keep their numbers from being
  /// read as a kind of lower rank: a card is never a phone).
  std::vector<pii_kind> kinds = all_pii_kinds();
  /// ISO 3166 codes of the regions whose national phone formats are found;
  /// international numbers of every country are found regardless.
  std::vector<std::string> phone_regions = default_phone_regions();
  /// Words or phrases (lower case) that, among the five words before them,
  /// make plain digits (`123456789`, `123-456789`) an SSN.
  std::vector<std::string> ssn_context = default_ssn_context();
};

/// Every region code `phone_regions` accepts, sorted.
std::vector<std::string> known_phone_regions();

/// Why `code` cannot be a phone region (not a known ISO code; "UK" is
/// GB), or nullopt if it can.
std::optional<std::string> region_problem(std::string_view code);

/// Why `entry` cannot be an SSN context entry (not lower-case words of
/// a-z, 0-9 and # separated by single spaces), or nullopt if it can.
std::optional<std::string> context_problem(std::string_view entry);

/// Scans text for the enabled kinds of personal data. RE2 finds candidates
/// in linear time; C++ checks against compiled tables (card networks, Luhn,
/// IBAN registry and mod-97, SSA ranges, calling codes and national plans)
/// then reject look-alikes. Immutable after construction: copies share the
/// compiled patterns, and `scan` may run concurrently on several threads.
class pii_scanner {
public:
  /// Builds a scanner from checked options (`region_problem`,
  /// `context_problem`); unknown regions and malformed entries are ignored.
  explicit pii_scanner(const pii_options& options);

  /// Builds a scanner that reports only the kinds in `enabled`, with the
  /// default regions and context words.
  explicit pii_scanner(std::vector<pii_kind> enabled);

  /// Findings in `text`, sorted by offset, non-overlapping. Where findings
  /// overlap the higher rank wins: email, IBAN, card, SSN, phone; the kinds
  /// not reported still take part (a card is never reported as a phone).
  std::vector<pii_finding> scan(std::string_view text) const;

  /// `text` with each finding replaced by "[REDACTED:<LABEL>]". Expects
  /// findings as `scan` returns them; skips any that overlap an earlier one
  /// or reach past the end of `text`.
  static std::string redact(std::string_view text,
                            const std::vector<pii_finding>& findings);

private:
  /// True if `x` was enabled at construction.
  bool enabled(pii_kind x) const;

  /// Appends the findings of one kind in `text` to `out`, sorted by offset.
  void collect(pii_kind kind, std::string_view text,
               std::vector<pii_finding>& out) const;

  /// Bit `1 << x` is set for each enabled kind `x`.
  uint8_t enabled_ = 0;

  /// The compiled patterns and tables; shared by copies, never changed.
  struct compiled;
  std::shared_ptr<const compiled> impl_;
};

} // namespace pw::plugins::pii
