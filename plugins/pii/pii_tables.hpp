#pragma once

// The compiled tables the `pii` SCANNER validates against: card networks by
// leading digits and length, IBAN lengths by country, phone numbering plans
// (country calling codes, North-American area codes, national formats).
// Facts of public numbering plans, not code: sources are named in
// pii_tables.cpp.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pw::plugins::pii::tables {

/// True if some card network issues `digits` (12-19 ASCII digits): its
/// leading digits fall in a network's IIN range and its length is one that
/// network uses. No Luhn check here.
bool card_network_issues(std::string_view digits);

/// The registry length of IBANs of `country` (two upper-case letters), or 0
/// if the country is not in the IBAN registry.
size_t iban_length(std::string_view country);

/// Lengths of the national significant number behind a calling code.
struct nsn_lengths {
  uint8_t min;
  uint8_t max;
};

/// The NSN lengths of country calling code `code` (1-3 digits), or nullopt
/// if no country uses that code. Codes are prefix-free.
std::optional<nsn_lengths> calling_code(std::string_view code);

/// True if the North-American area code `area` (3 digits) is in service.
bool nanp_area_in_service(std::string_view area);

/// A region whose national phone formats (without `+` and country code) the
/// SCANNER finds when the region is listed in `phone_regions`.
struct phone_region {
  /// ISO 3166 code, as written in config: "US", "GB".
  std::string_view code;
  /// Its calling code without `+`: "1", "44".
  std::string_view calling_code;
  /// True if national numbers start with a trunk 0 that is not part of the
  /// national significant number (GB 020 ..., DE 030 ...).
  bool trunk_zero;
  /// Lengths of the national significant number.
  nsn_lengths nsn;
  /// RE2 patterns of the national formats, matched against the whole
  /// number (extension removed). Empty: the generic rule of pii_scanner.cpp.
  std::span<const std::string_view> formats;
};

/// Every region `phone_regions` accepts, by code.
std::span<const phone_region> phone_regions();

/// The region with ISO code `code`, or nullptr.
const phone_region* find_phone_region(std::string_view code);

/// The regions used when `phone_regions` is not configured.
std::vector<std::string> default_phone_regions();

} // namespace pw::plugins::pii::tables
