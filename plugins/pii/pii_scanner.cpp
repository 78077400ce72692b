#include "plugins/pii/pii_scanner.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <cassert>
#include <tuple>

namespace pw::plugins::pii {

namespace {

/// One row per kind: the single place that names kinds for config and labels.
struct kind_row {
  pii_kind kind;
  std::string_view name;
  std::string_view label;
};

constexpr kind_row kind_table[] = {
  {pii_kind::email, "email", "EMAIL"}, {pii_kind::phone, "phone", "PHONE"},
  {pii_kind::card, "card", "CARD"},    {pii_kind::iban, "iban", "IBAN"},
  {pii_kind::ssn, "ssn", "SSN"},
};

const kind_row& row_of(pii_kind x) {
  auto index = static_cast<size_t>(x);
  assert(index < std::size(kind_table) && kind_table[index].kind == x);
  return kind_table[index];
}

// -- candidate patterns -------------------------------------------------------

// RE2 guarantees linear-time matching. The patterns only find candidates;
// the validators below decide. Bounded repetitions keep every numeric
// candidate short, so resuming one byte after a rejected candidate stays
// linear in the text size.

/// `local@domain.tld` with a letters-only TLD of at least two letters.
constexpr auto email_pattern
  = R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})";

/// `+`, a country code, then digit groups with optional single separators
/// and at most one parenthesised group per repetition.
constexpr auto phone_intl_pattern
  = R"(\+\d{1,3}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,5})){1,6})";

/// North-American numbers with separators: `(212) 555-0123`,
/// `212-555-0123`, `212.555.0123`, optionally led by `1-`, `1.` or `1 `.
constexpr auto phone_nanp_pattern
  = R"((?:1[\-. ])?(?:\(\d{3}\) ?\d{3}[\-. ]\d{4}|\d{3}-\d{3}-\d{4})"
    R"(|\d{3}\.\d{3}\.\d{4}))";

/// 13-19 digits, optionally split by single spaces or dashes.
constexpr auto card_pattern = R"(\b\d(?:[ \-]?\d){12,18}\b)";

/// Country, check digits, then a compact BBAN or one grouped by spaces in 4s.
constexpr auto iban_pattern
  = R"(\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7})"
    R"((?: [A-Z0-9]{1,4})?)\b)";

/// `ddd-dd-dddd` with dashes only.
constexpr auto ssn_pattern = R"(\b\d{3}-\d{2}-\d{4}\b)";

std::shared_ptr<const re2::RE2> compile(const char* pattern) {
  // Latin-1 makes every byte one character, so offsets are byte offsets and
  // invalid UTF-8 in the input cannot upset the match.
  re2::RE2::Options opts;
  opts.set_encoding(re2::RE2::Options::EncodingLatin1);
  opts.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(pattern, opts);
  // The patterns are constants above; the unit tests exercise every one.
  assert(re->ok());
  return re;
}

// -- character helpers --------------------------------------------------------

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}

bool is_alpha(char c) {
  return is_upper(c) || (c >= 'a' && c <= 'z');
}

bool is_alnum(char c) {
  return is_digit(c) || is_alpha(c);
}

/// A character that makes a token part of a longer word (RE2's `\w`).
bool is_word(char c) {
  return is_alnum(c) || c == '_';
}

/// Characters that glue a number to a neighbouring number, as in
/// "2024-01-15", "10.4.1", "15/01" or "10:30".
constexpr std::string_view number_glue = ".-/:";

/// True if `text[begin, end)` is a token of its own: no word character or
/// `@` right next to it, and no `glue` character that leads on to a digit.
bool stands_alone(std::string_view text, size_t begin, size_t end,
                  std::string_view glue = number_glue) {
  if (begin > 0) {
    char c = text[begin - 1];
    if (is_word(c) || c == '@')
      return false;
    if (glue.find(c) != std::string_view::npos && begin > 1
        && is_digit(text[begin - 2]))
      return false;
  }
  if (end < text.size()) {
    char c = text[end];
    if (is_word(c) || c == '@')
      return false;
    if (glue.find(c) != std::string_view::npos && end + 1 < text.size()
        && is_digit(text[end + 1]))
      return false;
  }
  return true;
}

/// The digits of `s`, in order.
std::string digits_of(std::string_view s) {
  std::string result;
  for (char c : s)
    if (is_digit(c))
      result.push_back(c);
  return result;
}

/// Lengths of the maximal digit runs in `s`, in order.
std::vector<size_t> digit_runs(std::string_view s) {
  std::vector<size_t> result;
  size_t run = 0;
  for (char c : s) {
    if (is_digit(c)) {
      ++run;
    } else if (run > 0) {
      result.push_back(run);
      run = 0;
    }
  }
  if (run > 0)
    result.push_back(run);
  return result;
}

/// True if `s` contains a `yyyy-mm-dd`-like date (19xx or 20xx, then two
/// pairs of digits, separated by `-`, `.` or `/`).
bool contains_date(std::string_view s) {
  auto sep = [](char c) { return c == '-' || c == '.' || c == '/'; };
  for (size_t i = 0; i + 10 <= s.size(); ++i) {
    auto d = s.substr(i, 10);
    bool century = (d[0] == '1' && d[1] == '9') || (d[0] == '2' && d[1] == '0');
    if (century && is_digit(d[2]) && is_digit(d[3]) && sep(d[4])
        && is_digit(d[5]) && is_digit(d[6]) && sep(d[7]) && is_digit(d[8])
        && is_digit(d[9]))
      return true;
  }
  return false;
}

// -- validators ---------------------------------------------------------------

/// The part of a candidate that a validator accepts.
struct span {
  size_t offset;
  size_t length;
};

/// Decides whether `text[begin, end)`, a regex candidate, is a finding.
using validator
  = std::optional<span> (*)(std::string_view text, size_t begin, size_t end);

std::optional<span> validate_email(std::string_view text, size_t begin,
                                   size_t end) {
  auto at = text.find('@', begin);
  // Leading punctuation belongs to the sentence, not the address.
  while (begin < at
         && std::string_view{"._%+-"}.find(text[begin])
              != std::string_view::npos)
    ++begin;
  // "a@b@c.de" is no address, not even from its second '@'.
  if (begin > 0 && text[begin - 1] == '@')
    return std::nullopt;
  auto local = text.substr(begin, at - begin);
  auto domain = text.substr(at + 1, end - at - 1);
  if (local.empty() || local.size() > 64 || local.back() == '.'
      || local.find("..") != std::string_view::npos || domain.size() > 253)
    return std::nullopt;
  for (size_t pos = 0; pos <= domain.size();) {
    auto dot = std::min(domain.find('.', pos), domain.size());
    auto part = domain.substr(pos, dot - pos);
    if (part.empty() || part.size() > 63 || part.front() == '-'
        || part.back() == '-')
      return std::nullopt;
    pos = dot + 1;
  }
  // "a@b.com1", "a@b.com-x", "a@b.com.x1" and "a@b.com@c" are no addresses.
  if (end < text.size()) {
    char c = text[end];
    if (is_word(c) || c == '-' || c == '@')
      return std::nullopt;
    if (c == '.' && end + 1 < text.size() && is_word(text[end + 1]))
      return std::nullopt;
  }
  return span{begin, end - begin};
}

std::optional<span> validate_phone_intl(std::string_view text, size_t begin,
                                        size_t end) {
  auto candidate = text.substr(begin, end - begin);
  if (!is_digit(candidate.back()) || !stands_alone(text, begin, end)
      || contains_date(candidate))
    return std::nullopt;
  auto number = candidate.substr(1);
  auto runs = digit_runs(number);
  auto digits = digits_of(number).size();
  bool has_dot = number.find('.') != std::string_view::npos;
  bool has_space_or_dash = number.find_first_of(" -") != std::string_view::npos;
  if (runs.size() == 1)
    // Canonical E.164 without separators: "+442079460958".
    return digits >= 10 && digits <= 15
             ? std::optional{span{begin, end - begin}}
             : std::nullopt;
  // The country code comes first and has 1-3 digits; "+2024-01-15" is none.
  if (digits < 8 || digits > 15 || runs.front() > 3 || runs.back() < 2)
    return std::nullopt;
  // Dots do not mix with other separators ("+1.202-555 0147"), and short
  // dotted numbers read as amounts ("+12.345.678").
  if (has_dot && (has_space_or_dash || digits < 10))
    return std::nullopt;
  // An IPv4 address after a plus: "+192.168.100.200".
  if (has_dot && runs.size() == 4
      && std::all_of(runs.begin(), runs.end(), [](size_t n) { return n <= 3; }))
    return std::nullopt;
  // "+33 1 42 68 53 00" has one single-digit group; "+1.2.3.4.5.6.7.8" many.
  auto singles = std::count(runs.begin() + 1, runs.end(), size_t{1});
  if (singles > 1)
    return std::nullopt;
  return span{begin, end - begin};
}

std::optional<span> validate_phone_nanp(std::string_view text, size_t begin,
                                        size_t end) {
  if (!stands_alone(text, begin, end))
    return std::nullopt;
  auto candidate = text.substr(begin, end - begin);
  auto body = candidate;
  std::optional<char> prefix_sep;
  // The optional trunk prefix: "1-", "1." or "1 ". A body never starts with
  // '1' followed by a separator, so this cannot misread a body.
  if (body.size() > 2 && body[0] == '1' && !is_digit(body[1])) {
    prefix_sep = body[1];
    body.remove_prefix(2);
  }
  char area_first = body[0] == '(' ? body[1] : body[0];
  // NANP area codes start with 2-9.
  if (area_first < '2')
    return std::nullopt;
  // "1-212.555.0123" mixes separators; "1-(212) 555-0123" may.
  if (prefix_sep && body[0] != '(' && *prefix_sep != body[3])
    return std::nullopt;
  return span{begin, end - begin};
}

/// True for the first digits of a known card network at this length: Visa
/// (4: 13, 16, 19), Amex (34, 37: 15), and 2/3/5/6 (Mastercard, Diners, JCB,
/// Discover, UnionPay, Maestro: 14-19).
bool plausible_card_prefix(std::string_view digits) {
  auto n = digits.size();
  switch (digits[0]) {
  case '4':
    return n == 13 || n == 16 || n == 19;
  case '3':
    if (digits[1] == '4' || digits[1] == '7')
      return n == 15;
    return n >= 14;
  case '2':
  case '5':
  case '6':
    return n >= 14;
  default:
    return false;
  }
}

bool luhn_valid(std::string_view digits) {
  int sum = 0;
  bool twice = false;
  for (auto i = digits.rbegin(); i != digits.rend(); ++i) {
    int d = *i - '0';
    if (twice) {
      d *= 2;
      if (d > 9)
        d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

/// Checks one card span whose digit groups are split by `sep` (0 if none).
bool card_valid(std::string_view text, size_t begin, size_t end, char sep) {
  if (!stands_alone(text, begin, end))
    return false;
  auto candidate = text.substr(begin, end - begin);
  if (sep != 0) {
    // Groups as printed on cards: the first has 4 digits ("4111 1111 1111
    // 1111", "3782 822463 10005"), none is shorter than 3 or longer than 6.
    auto runs = digit_runs(candidate);
    if (runs.front() != 4
        || std::any_of(runs.begin(), runs.end(),
                       [](size_t n) { return n < 3 || n > 6; }))
      return false;
    // A 4-digit group across a space continues the grouping: the span is a
    // slice of a longer number ("9400 1000 0000 0000 0000 00").
    auto group_of_four = [&](size_t pos, int step) {
      size_t n = 0;
      for (; pos < text.size() && is_digit(text[pos]); pos += step)
        ++n;
      return n == 4;
    };
    if (sep == ' ' && begin >= 2 && text[begin - 1] == ' '
        && group_of_four(begin - 2, -1))
      return false;
    if (sep == ' ' && end + 1 < text.size() && text[end] == ' '
        && group_of_four(end + 1, 1))
      return false;
  }
  auto digits = digits_of(candidate);
  return digits.size() >= 13 && digits.size() <= 19
         && plausible_card_prefix(digits)
         && digits.find_first_not_of(digits[0]) != std::string::npos
         && luhn_valid(digits);
}

std::optional<span> validate_card(std::string_view text, size_t begin,
                                  size_t end) {
  auto candidate = text.substr(begin, end - begin);
  auto first_sep = candidate.find_first_not_of("0123456789");
  if (first_sep == std::string_view::npos)
    return card_valid(text, begin, end, 0)
             ? std::optional{span{begin, end - begin}}
             : std::nullopt;
  // One kind of separator only: "4111-1111 1111-1111" is no card.
  char sep = candidate[first_sep];
  if (candidate.find_first_not_of(std::string{"0123456789"} + sep)
      != std::string_view::npos)
    return std::nullopt;
  // An unseparated card followed by a short number ("4111111111111111
  // 12/29"): only the first group can be the card.
  if (first_sep != 4)
    return card_valid(text, begin, begin + first_sep, 0)
             ? std::optional{span{begin, first_sep}}
             : std::nullopt;
  // The pattern is greedy, so a card followed by a short number ("4111 1111
  // 1111 1111 123") arrives with it: retry without trailing groups.
  for (auto length = candidate.size();;) {
    if (length == std::string_view::npos
        || digits_of(candidate.substr(0, length)).size() < 13)
      return std::nullopt;
    if (card_valid(text, begin, begin + length, sep))
      return span{begin, length};
    length = candidate.rfind(sep, length - 1);
  }
}

/// IBAN lengths by country (ISO 13616 registry).
struct iban_country {
  std::string_view code;
  size_t length;
};

constexpr iban_country iban_countries[] = {
  {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20},
  {"BE", 16}, {"BG", 22}, {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21},
  {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28},
  {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
  {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28},
  {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
  {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
  {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
  {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18},
  {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29},
  {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SC", 31}, {"SE", 24}, {"SI", 19},
  {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
  {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

/// Checks a compact IBAN: length (per country when known), check digits
/// 02-98, and the ISO 7064 mod-97 remainder 1.
bool iban_valid(std::string_view iban) {
  if (iban.size() < 15 || iban.size() > 34)
    return false;
  auto country = iban.substr(0, 2);
  for (const auto& row : iban_countries)
    if (row.code == country && row.length != iban.size())
      return false;
  auto check = (iban[2] - '0') * 10 + (iban[3] - '0');
  if (check < 2 || check > 98)
    return false;
  unsigned remainder = 0;
  auto feed = [&](char c) {
    if (is_digit(c))
      remainder = (remainder * 10 + static_cast<unsigned>(c - '0')) % 97;
    else
      remainder = (remainder * 100 + static_cast<unsigned>(c - 'A' + 10)) % 97;
  };
  for (char c : iban.substr(4))
    feed(c);
  for (char c : iban.substr(0, 4))
    feed(c);
  return remainder == 1;
}

std::optional<span> validate_iban(std::string_view text, size_t begin,
                                  size_t end) {
  auto candidate = text.substr(begin, end - begin);
  std::string compact;
  // End offset (in `candidate`) of the group ending at each compact size.
  std::vector<std::pair<size_t, size_t>> group_ends;
  for (size_t i = 0; i < candidate.size(); ++i) {
    if (candidate[i] != ' ')
      compact.push_back(candidate[i]);
    if (i + 1 == candidate.size() || candidate[i + 1] == ' ')
      group_ends.emplace_back(compact.size(), i + 1);
  }
  // A grouped IBAN may run into a following word or number ("... 7654 32
  // 1234"): retry without trailing groups until the rest is valid.
  for (auto i = group_ends.rbegin(); i != group_ends.rend(); ++i) {
    auto [size, length] = *i;
    if (size < 15)
      break;
    if (iban_valid(std::string_view{compact}.substr(0, size))
        && stands_alone(text, begin, begin + length))
      return span{begin, length};
  }
  return std::nullopt;
}

std::optional<span> validate_ssn(std::string_view text, size_t begin,
                                 size_t end) {
  if (!stands_alone(text, begin, end))
    return std::nullopt;
  auto area = text.substr(begin, 3);
  auto group = text.substr(begin + 4, 2);
  auto serial = text.substr(begin + 7, 4);
  // The SSA never issues area 000, 666 or 900-999, group 00 or serial 0000.
  if (area == "000" || area == "666" || area[0] == '9' || group == "00"
      || serial == "0000")
    return std::nullopt;
  return span{begin, end - begin};
}

/// Appends every candidate of `re` in `text` that `validate` accepts.
void find_all(const re2::RE2& re, std::string_view text, pii_kind kind,
              validator validate, std::vector<pii_finding>& out) {
  re2::StringPiece input{text.data(), text.size()};
  size_t pos = 0;
  re2::StringPiece match;
  while (
    pos < text.size()
    && re.Match(input, pos, text.size(), re2::RE2::UNANCHORED, &match, 1)) {
    auto begin = static_cast<size_t>(match.data() - text.data());
    auto end = begin + match.size();
    if (auto found = validate(text, begin, end)) {
      out.push_back({kind, found->offset, found->length});
      pos = found->offset + found->length;
    } else if (kind == pii_kind::email) {
      // An e-mail candidate can be long (its local part is unbounded), so
      // resume after its '@' rather than one byte later: the next address
      // needs its own '@', and this keeps the scan linear.
      pos = text.find('@', begin) + 1;
    } else {
      // Numeric candidates are short; a valid one may start inside this one
      // ("12 4111 1111 1111 1111").
      pos = begin + 1;
    }
  }
}

bool overlaps(const pii_finding& x, const pii_finding& y) {
  return x.offset < y.offset + y.length && y.offset < x.offset + x.length;
}

} // namespace

std::string_view to_string(pii_kind x) {
  return row_of(x).name;
}

std::string_view label(pii_kind x) {
  return row_of(x).label;
}

std::optional<pii_kind> parse_pii_kind(std::string_view name) {
  for (const auto& row : kind_table)
    if (row.name == name)
      return row.kind;
  return std::nullopt;
}

std::vector<pii_kind> all_pii_kinds() {
  std::vector<pii_kind> result;
  for (const auto& row : kind_table)
    result.push_back(row.kind);
  return result;
}

pii_scanner::pii_scanner(std::vector<pii_kind> enabled)
    : email_re_(compile(email_pattern)),
      phone_intl_re_(compile(phone_intl_pattern)),
      phone_nanp_re_(compile(phone_nanp_pattern)),
      card_re_(compile(card_pattern)), iban_re_(compile(iban_pattern)),
      ssn_re_(compile(ssn_pattern)) {
  for (auto x : enabled)
    enabled_ |= static_cast<uint8_t>(1u << static_cast<unsigned>(x));
}

bool pii_scanner::enabled(pii_kind x) const {
  return (enabled_ & (1u << static_cast<unsigned>(x))) != 0;
}

void pii_scanner::collect(pii_kind kind, std::string_view text,
                          std::vector<pii_finding>& out) const {
  switch (kind) {
  case pii_kind::email:
    find_all(*email_re_, text, kind, validate_email, out);
    break;
  case pii_kind::phone:
    find_all(*phone_intl_re_, text, kind, validate_phone_intl, out);
    find_all(*phone_nanp_re_, text, kind, validate_phone_nanp, out);
    break;
  case pii_kind::card:
    find_all(*card_re_, text, kind, validate_card, out);
    break;
  case pii_kind::iban:
    find_all(*iban_re_, text, kind, validate_iban, out);
    break;
  case pii_kind::ssn:
    find_all(*ssn_re_, text, kind, validate_ssn, out);
    break;
  }
}

std::vector<pii_finding> pii_scanner::scan(std::string_view text) const {
  // A cheap necessary condition first: most prompts hold no '@' and few
  // digits, and then no pattern needs to run. Each kind needs at least
  // this many digits in the whole text (an e-mail needs an '@').
  size_t digits = 0;
  bool at = false;
  for (char c : text) {
    digits += c >= '0' && c <= '9' ? 1 : 0;
    at = at || c == '@';
  }
  auto possible = [&](pii_kind kind) {
    switch (kind) {
    case pii_kind::email:
      return at;
    case pii_kind::phone:
      return digits >= 7;
    case pii_kind::card:
      return digits >= 12;
    case pii_kind::iban:
      return digits >= 2;
    case pii_kind::ssn:
      return digits >= 9;
    }
    return true;
  };
  std::vector<pii_finding> found;
  for (const auto& row : kind_table)
    if (row.kind != pii_kind::phone && enabled(row.kind) && possible(row.kind))
      collect(row.kind, text, found);
  if (enabled(pii_kind::phone) && possible(pii_kind::phone)) {
    // Cards and SSNs shadow phones even when they are not reported.
    std::vector<pii_finding> shadows;
    for (auto kind : {pii_kind::card, pii_kind::ssn})
      if (enabled(kind))
        std::copy_if(found.begin(), found.end(), std::back_inserter(shadows),
                     [&](const auto& f) { return f.kind == kind; });
      else
        collect(kind, text, shadows);
    std::vector<pii_finding> phones;
    collect(pii_kind::phone, text, phones);
    for (const auto& phone : phones)
      if (std::none_of(shadows.begin(), shadows.end(),
                       [&](const auto& s) { return overlaps(s, phone); }))
        found.push_back(phone);
  }
  // Earlier first, then longer first; keep each that clears the last kept.
  std::sort(found.begin(), found.end(), [](const auto& x, const auto& y) {
    return std::tuple{x.offset, y.length, x.kind}
           < std::tuple{y.offset, x.length, y.kind};
  });
  std::vector<pii_finding> result;
  for (const auto& f : found)
    if (result.empty()
        || f.offset >= result.back().offset + result.back().length)
      result.push_back(f);
  return result;
}

std::string pii_scanner::redact(std::string_view text,
                                const std::vector<pii_finding>& findings) {
  std::string result;
  result.reserve(text.size());
  size_t pos = 0;
  for (const auto& f : findings) {
    if (f.offset < pos || f.offset > text.size()
        || f.length > text.size() - f.offset)
      continue;
    result.append(text.substr(pos, f.offset - pos));
    result.append("[REDACTED:");
    result.append(label(f.kind));
    result.push_back(']');
    pos = f.offset + f.length;
  }
  result.append(text.substr(pos));
  return result;
}

} // namespace pw::plugins::pii
