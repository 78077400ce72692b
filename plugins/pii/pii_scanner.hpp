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
  /// An e-mail address, `local@domain.tld`.
  email,
  /// A phone number: international (`+44 20 7946 0958`) or North-American
  /// with separators (`(212) 555-0123`, `212-555-0123`).
  phone,
  /// A payment card number: 13-19 digits, Luhn-valid.
  card,
  /// An International Bank Account Number, mod-97 valid.
  iban,
  /// A US Social Security Number, `ddd-dd-dddd`.
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

/// Scans text for the enabled kinds of personal data. RE2 finds candidates
/// in linear time; C++ checks (Luhn, mod-97, SSN ranges, separator shapes)
/// then reject most look-alikes, because precision matters more than recall.
/// Immutable after construction: copies share the compiled patterns, and
/// `scan` may run concurrently on several threads.
class pii_scanner {
public:
  /// Builds a scanner that reports only the kinds in `enabled`.
  explicit pii_scanner(std::vector<pii_kind> enabled);

  /// Findings in `text`, sorted by offset, non-overlapping (on overlap keep
  /// the earlier/longer one). A number that is a card or an SSN is never
  /// reported as a phone, even when those kinds are disabled.
  std::vector<pii_finding> scan(std::string_view text) const;

  /// `text` with each finding replaced by "[REDACTED:<LABEL>]". Expects
  /// findings as `scan` returns them; skips any that overlap an earlier one
  /// or reach past the end of `text`.
  static std::string redact(std::string_view text,
                            const std::vector<pii_finding>& findings);

private:
  /// True if `x` was enabled at construction.
  bool enabled(pii_kind x) const;

  /// Appends the findings of one kind in `text` to `out`.
  void collect(pii_kind kind, std::string_view text,
               std::vector<pii_finding>& out) const;

  /// Bit `1 << x` is set for each enabled kind `x`.
  uint8_t enabled_ = 0;

  /// Candidate patterns, one per shape; RE2 const matching is thread-safe.
  std::shared_ptr<const re2::RE2> email_re_;
  std::shared_ptr<const re2::RE2> phone_intl_re_;
  std::shared_ptr<const re2::RE2> phone_nanp_re_;
  std::shared_ptr<const re2::RE2> card_re_;
  std::shared_ptr<const re2::RE2> iban_re_;
  std::shared_ptr<const re2::RE2> ssn_re_;
};

} // namespace pw::plugins::pii
