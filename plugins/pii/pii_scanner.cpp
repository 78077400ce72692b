#include "plugins/pii/pii_scanner.hpp"

#include "plugins/pii/pii_tables.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <cassert>

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

/// Where findings overlap, the kind listed first wins: the narrower, better
/// validated kinds before the broader ones (an IBAN holds card-shaped
/// digits; an SSN is a valid phone number in some regions).
constexpr pii_kind ranks[] = {pii_kind::email, pii_kind::iban, pii_kind::card,
                              pii_kind::ssn, pii_kind::phone};

// -- candidate patterns -------------------------------------------------------

// RE2 guarantees linear-time matching. The patterns only find candidates;
// the validators below decide. Numeric candidates are either bounded (IBAN,
// SSN), so resuming one byte after a rejected one stays linear, or are
// consumed whole (card runs, phone candidates).

/// RFC 5321 atext in the local part, dot-separated; domain labels of ASCII
/// letters, digits and UTF-8 bytes; an ASCII or punycode top-level domain.
constexpr auto email_pattern
  = R"([A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+)*)"
    R"(@(?:[A-Za-z0-9\x80-\xff](?:[A-Za-z0-9\x80-\xff\-]*[A-Za-z0-9\x80-\xff])?\.)+)"
    R"((?:[Xx][Nn]--[A-Za-z0-9\-]*[A-Za-z0-9]|[A-Za-z]{2,63}))";

/// Country, check digits, then a compact BBAN or one in groups of four
/// split by spaces or dashes; either case (checked uniform later).
constexpr auto iban_pattern
  = R"((?i)\b[a-z]{2}[0-9]{2}(?:[a-z0-9]{11,30}|(?:[ \-][a-z0-9]{4}){2,7})"
    R"((?:[ \-][a-z0-9]{1,4})?)\b)";

/// 3-2-4 digits split by two equal separators, or the plain shapes that
/// count only after a context word: 9 digits, 3-6 and 5-4.
constexpr auto ssn_pattern
  = R"(\b(?:[0-9]{3}(?:-[0-9]{2}-|\.[0-9]{2}\.| [0-9]{2} )[0-9]{4})"
    R"(|[0-9]{9}|[0-9]{3}-[0-9]{6}|[0-9]{5}-[0-9]{4})\b)";

/// A lead (`+`, `(`; not "+ ", an addition), digits with separators and
/// parentheses, then an optional extension (`x123`, `ext. 12`, `extension 4`,
/// `#12`).
constexpr auto phone_pattern
  = R"((?:\+|\()?[0-9][0-9().\-/ ]*[0-9]\)?)"
    R"((?:(?: ?(?i:ext\.?|extension|x) ?|#)[0-9]{1,6})?)";

/// Shapes inside a phone candidate that make it something else: a date
/// (`2024-01-15`, `15/01/2024`), a page reference (`12-34 (2001`), an IPv4
/// address.
constexpr auto not_phone_pattern
  = R"((?:19|20)[0-9]{2}[\-./][0-9]{2}[\-./][0-9]{2})"
    R"(|\b[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}\b)"
    R"(|[0-9]{1,5}-+[0-9]{1,5}\s{0,4}\([0-9]{1,4})"
    R"(|^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$)";

re2::RE2::Options pattern_options() {
  // Latin-1 makes every byte one character, so offsets are byte offsets and
  // invalid UTF-8 in the input cannot upset the match.
  re2::RE2::Options opts;
  opts.set_encoding(re2::RE2::Options::EncodingLatin1);
  opts.set_log_errors(false);
  return opts;
}

std::unique_ptr<const re2::RE2> compile(const char* pattern) {
  auto re = std::make_unique<const re2::RE2>(pattern, pattern_options());
  // The patterns are constants above; the unit tests exercise every one.
  assert(re->ok());
  return re;
}

// -- character helpers --------------------------------------------------------

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
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

/// True if the number starting at `begin` is glued to what comes before: a
/// word character or `@` right before it, or a glue character after a digit.
bool glued_before(std::string_view text, size_t begin) {
  if (begin == 0)
    return false;
  char c = text[begin - 1];
  if (is_word(c) || c == '@')
    return true;
  return number_glue.find(c) != std::string_view::npos && begin > 1
         && is_digit(text[begin - 2]);
}

/// The mirror of `glued_before` for the number ending at `end`.
bool glued_after(std::string_view text, size_t end) {
  if (end >= text.size())
    return false;
  char c = text[end];
  if (is_word(c) || c == '@')
    return true;
  return number_glue.find(c) != std::string_view::npos && end + 1 < text.size()
         && is_digit(text[end + 1]);
}

/// True if `text[begin, end)` is a token of its own.
bool stands_alone(std::string_view text, size_t begin, size_t end) {
  return !glued_before(text, begin) && !glued_after(text, end);
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

bool one_repeated_digit(std::string_view digits) {
  return digits.find_first_not_of(digits[0]) == std::string_view::npos;
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

/// Calls `f(match_begin, match_end)` for each match of `re` in `text`;
/// `f` returns where to search next (past the match begin).
template <class F>
void for_each_match(const re2::RE2& re, std::string_view text, F f) {
  re2::StringPiece input{text.data(), text.size()};
  re2::StringPiece match;
  size_t pos = 0;
  while (
    pos < text.size()
    && re.Match(input, pos, text.size(), re2::RE2::UNANCHORED, &match, 1)) {
    auto begin = static_cast<size_t>(match.data() - text.data());
    pos = f(begin, begin + match.size());
  }
}

// -- e-mail -------------------------------------------------------------------

/// RFC 5321 atext.
bool is_atext(char c) {
  return is_alnum(c)
         || std::string_view{"!#$%&'*+/=?^_`{|}~-"}.find(c)
              != std::string_view::npos;
}

/// Checks the e-mail candidate `text[begin, end)`; returns its accepted
/// begin (quotes around the address stripped).
std::optional<size_t> validate_email(std::string_view text, size_t begin,
                                     size_t end, size_t at) {
  // A match that starts inside a longer local part ("a..b@example.com") or
  // after another '@' ("a@b@c.de") is no address; dots after other text are
  // sentence punctuation ("...bob@example.com").
  auto p = begin;
  while (p > 0 && text[p - 1] == '.')
    --p;
  if (p > 0 && (is_atext(text[p - 1]) || text[p - 1] == '@'))
    return std::nullopt;
  // Symbols before the address belong to the sentence, markup or a URL
  // ('carol@example.org', **bob@example.com**, ssh://git@example.com);
  // `~tilde@` and `{team}@` keep theirs.
  while (begin < at
         && std::string_view{"'`/*#=|!?^-+%&$"}.find(text[begin])
              != std::string_view::npos)
    ++begin;
  auto local = text.substr(begin, at - begin);
  auto domain = text.substr(at + 1, end - at - 1);
  if (local.empty() || local.size() > 64 || domain.size() > 253)
    return std::nullopt;
  for (size_t pos = 0; pos < domain.size();) {
    auto dot = std::min(domain.find('.', pos), domain.size());
    if (dot - pos > 63)
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
  return begin;
}

void find_emails(const re2::RE2& re, std::string_view text,
                 std::vector<pii_finding>& out) {
  for_each_match(re, text, [&](size_t begin, size_t end) {
    auto at = text.find('@', begin);
    if (auto found = validate_email(text, begin, end, at)) {
      out.push_back({pii_kind::email, *found, end - *found});
      return end;
    }
    // An e-mail candidate can be long (its local part is unbounded), so
    // resume after its '@': the next address needs its own '@', and this
    // keeps the scan linear.
    return at + 1;
  });
}

// -- IBAN ---------------------------------------------------------------------

/// Checks a compact, upper-case IBAN: the registry length of its country,
/// check digits 02-98, and the ISO 7064 mod-97 remainder 1.
bool iban_valid(std::string_view iban) {
  if (tables::iban_length(iban.substr(0, 2)) != iban.size())
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

/// The length of the IBAN at the start of the candidate `text[begin, end)`,
/// trying the whole candidate, then without trailing groups.
std::optional<size_t> validate_iban(std::string_view text, size_t begin,
                                    size_t end) {
  auto candidate = text.substr(begin, end - begin);
  // One separator and one case throughout ("LV80 bANK ..." is no IBAN): the
  // first of each decides, and the candidate is cut before a change.
  char sep = 0;
  int upper = -1;
  char compact[64];
  size_t size = 0;
  // (compact size, candidate length) at the end of each group.
  std::pair<size_t, size_t> ends[16];
  size_t groups = 0;
  for (size_t i = 0; i < candidate.size() && size < sizeof compact; ++i) {
    char c = candidate[i];
    if (c == ' ' || c == '-') {
      if (sep != 0 && c != sep)
        break;
      sep = c;
      continue;
    }
    if (is_alpha(c)) {
      int is_upper = c <= 'Z' ? 1 : 0;
      if (upper >= 0 && upper != is_upper)
        break;
      upper = is_upper;
      c = static_cast<char>(is_upper ? c : c - 32);
    }
    compact[size++] = c;
    bool group_end = i + 1 == candidate.size() || candidate[i + 1] == ' '
                     || candidate[i + 1] == '-';
    if (group_end && groups < std::size(ends))
      ends[groups++] = {size, i + 1};
  }
  for (auto g = groups; g > 0; --g) {
    auto [n, length] = ends[g - 1];
    if (n < 15)
      break;
    if (iban_valid(std::string_view{compact, n})
        && stands_alone(text, begin, begin + length))
      return length;
  }
  return std::nullopt;
}

void find_ibans(const re2::RE2& re, std::string_view text,
                std::vector<pii_finding>& out) {
  for_each_match(re, text, [&](size_t begin, size_t end) {
    if (auto length = validate_iban(text, begin, end)) {
      out.push_back({pii_kind::iban, begin, *length});
      return begin + *length;
    }
    // Candidates are at most 44 bytes: retrying one byte later is linear.
    return begin + 1;
  });
}

// -- cards --------------------------------------------------------------------

bool is_card(std::string_view digits) {
  return digits.size() >= 12 && digits.size() <= 19
         && !one_repeated_digit(digits) && luhn_valid(digits)
         && tables::card_network_issues(digits);
}

/// Digit groups as printed on cards: one group of any length, or a first
/// group of 4, middle groups of 3-6 and a last group of 2-6 (4-4-4-4,
/// 4-6-5, 4-4-4-4-3).
bool card_grouping(const std::vector<size_t>& lengths) {
  auto n = lengths.size();
  if (n == 1)
    return true;
  if (lengths[0] != 4 || lengths[n - 1] < 2 || lengths[n - 1] > 6)
    return false;
  for (size_t i = 1; i + 1 < n; ++i)
    if (lengths[i] < 3 || lengths[i] > 6)
      return false;
  return true;
}

/// True if the number at `begin` follows, across a space or dash, a word
/// that mixes letters and digits: it is the tail of a code such as an
/// account number or an IBAN with a wrong check digit ("RS35 2600 ...").
bool after_code_head(std::string_view text, size_t begin) {
  if (begin < 2 || (text[begin - 1] != ' ' && text[begin - 1] != '-'))
    return false;
  auto i = begin - 1;
  auto limit = begin > 65 ? begin - 65 : 0;
  bool letter = false;
  bool digit = false;
  while (i > limit && is_alnum(text[i - 1])) {
    --i;
    letter = letter || is_alpha(text[i]);
    digit = digit || is_digit(text[i]);
  }
  return letter && digit;
}

/// True if three groups in a row of `tokens[from..to]` count up by one
/// ("4100 7944 7945 7946"): a list of codes, not a card.
template <class Pieces>
bool counting_groups(std::string_view text, const Pieces& tokens, size_t from,
                     size_t to) {
  auto value = [&](size_t i) {
    long v = 0;
    for (auto p = tokens[i].begin; p < tokens[i].end; ++p)
      v = v * 10 + (text[p] - '0');
    return v;
  };
  for (auto i = from; i + 2 <= to; ++i)
    if (value(i + 1) == value(i) + 1 && value(i + 2) == value(i + 1) + 1)
      return true;
  return false;
}

/// A part of a run: `[begin, end)` of the text.
struct piece {
  size_t begin;
  size_t end;
};

/// Splits `text[begin, end)` at every `sep`.
std::vector<piece> split(std::string_view text, size_t begin, size_t end,
                         char sep) {
  std::vector<piece> result;
  auto start = begin;
  for (auto i = begin; i <= end; ++i)
    if (i == end || text[i] == sep) {
      result.push_back({start, i});
      start = i + 1;
    }
  return result;
}

/// The cards that cover the dash-joined groups of one token exactly
/// ("5500-0000-0000-0004-4111-1111-1111-1111" holds two); none if no exact
/// cover exists ("4111-1111-1111-1111-12").
void cards_in_dash_token(std::string_view text, piece token,
                         std::vector<pii_finding>& out) {
  auto groups = split(text, token.begin, token.end, '-');
  auto n = groups.size();
  // start[z]: where the last card of a cover of groups [0, z) starts; -1
  // for z = 0, -2 if no cover reaches z.
  std::vector<long> start(n + 1, -2);
  start[0] = -1;
  std::string digits;
  std::vector<size_t> lengths;
  for (size_t a = 0; a < n; ++a) {
    if (start[a] == -2)
      continue;
    digits.clear();
    lengths.clear();
    for (auto z = a; z < n; ++z) {
      auto g = text.substr(groups[z].begin, groups[z].end - groups[z].begin);
      digits += g;
      lengths.push_back(g.size());
      if (digits.size() > 19)
        break;
      if (start[z + 1] == -2 && card_grouping(lengths) && is_card(digits))
        start[z + 1] = static_cast<long>(a);
    }
  }
  if (start[n] == -2)
    return;
  std::vector<pii_finding> cards;
  for (auto z = n; z > 0;) {
    auto a = static_cast<size_t>(start[z]);
    cards.push_back(
      {pii_kind::card, groups[a].begin, groups[z - 1].end - groups[a].begin});
    z = a;
  }
  out.insert(out.end(), cards.rbegin(), cards.rend());
}

/// The cards in one run of digits joined by single spaces or dashes. Each
/// card is judged with its neighbours in the run (never more than a token
/// away, so a held stream's window sees everything a finding depends on).
void cards_in_run(std::string_view text, size_t begin, size_t end,
                  std::vector<pii_finding>& out) {
  auto tokens = split(text, begin, end, ' ');
  size_t first = 0;
  auto last = tokens.size();
  // A first token glued to what comes before is not read. No card starts
  // at the token that continues a code ("RS35 2600 ...", "x1234 4111 ...")
  // or a phone number ("+4111 ...").
  std::optional<size_t> no_card_at;
  // Tokens of four digits that no card took, and glued tokens that are
  // four-character words ("39D8" in a table of hex codes).
  std::vector<bool> four_left(tokens.size(), false);
  auto word_of_four = [&](size_t from, size_t to) {
    while (from > 0 && is_alnum(text[from - 1]) && to - from <= 4)
      --from;
    while (to < text.size() && is_alnum(text[to]) && to - from <= 4)
      ++to;
    return to - from == 4;
  };
  if (glued_before(text, begin)) {
    four_left[0] = word_of_four(tokens[0].begin, tokens[0].end);
    ++first;
    if (is_alpha(text[begin - 1]) && tokens[0].end - tokens[0].begin <= 4)
      no_card_at = 1;
  } else if ((begin > 0 && text[begin - 1] == '+')
             || after_code_head(text, begin)) {
    no_card_at = 0;
  }
  if (first < last && glued_after(text, end)) {
    --last;
    four_left[last] = word_of_four(tokens[last].begin, tokens[last].end);
  }
  if (first >= last)
    return;
  // A card found, with the first and last token it spans.
  struct candidate {
    pii_finding finding;
    size_t from;
    size_t to;
  };
  std::vector<candidate> found;
  std::string digits;
  std::vector<size_t> lengths;
  std::vector<pii_finding> dash_cards;
  for (auto i = first; i < last;) {
    auto token = text.substr(tokens[i].begin, tokens[i].end - tokens[i].begin);
    if (token.find('-') != std::string_view::npos) {
      dash_cards.clear();
      cards_in_dash_token(text, tokens[i], dash_cards);
      for (const auto& f : dash_cards)
        if (no_card_at != i || f.offset != tokens[i].begin)
          found.push_back({f, i, i});
      ++i;
      continue;
    }
    // The longest reading from token i, over at most 8 tokens and 19
    // digits, that is a card in a card's grouping.
    std::optional<size_t> best;
    digits.clear();
    lengths.clear();
    for (auto j = i; j < std::min(last, i + 8); ++j) {
      auto t = text.substr(tokens[j].begin, tokens[j].end - tokens[j].begin);
      if (t.find('-') != std::string_view::npos)
        break;
      digits += t;
      lengths.push_back(t.size());
      if (digits.size() > 19)
        break;
      if (card_grouping(lengths) && is_card(digits))
        best = j;
    }
    if (best && no_card_at != i) {
      found.push_back(
        {{pii_kind::card, tokens[i].begin, tokens[*best].end - tokens[i].begin},
         i,
         *best});
      i = *best + 1;
    } else {
      four_left[i] = token.size() == 4;
      ++i;
    }
  }
  // A group of four left over next to a card written in groups means the
  // card is a slice of a longer number ("4111 1111 1111 1111 1111",
  // "1234 4111 1111 1111 1111"): it is not reported.
  for (const auto& c : found) {
    bool grouped = c.to > c.from;
    bool slice = grouped
                 && ((c.from > 0 && four_left[c.from - 1])
                     || (c.to + 1 < tokens.size() && four_left[c.to + 1]));
    if (!slice && !(grouped && counting_groups(text, tokens, c.from, c.to)))
      out.push_back(c.finding);
  }
}

void find_cards(std::string_view text, std::vector<pii_finding>& out) {
  for (size_t i = 0; i < text.size();) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    auto begin = i;
    size_t digits = 0;
    while (i < text.size()
           && (is_digit(text[i])
               || ((text[i] == ' ' || text[i] == '-') && i + 1 < text.size()
                   && is_digit(text[i + 1])))) {
      digits += is_digit(text[i]) ? 1 : 0;
      ++i;
    }
    // The shortest card has 12 digits; most runs are years and amounts.
    if (digits >= 12)
      cards_in_run(text, begin, i, out);
  }
}

// -- SSN ----------------------------------------------------------------------

/// Words of context: runs of `[a-z0-9#]` after lower-casing.
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> result;
  std::string word;
  for (char c : text) {
    auto lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
    if ((lower >= 'a' && lower <= 'z') || is_digit(lower) || lower == '#') {
      word.push_back(lower);
    } else if (!word.empty()) {
      result.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty())
    result.push_back(std::move(word));
  return result;
}

/// True if one of `phrases` occurs among the five words before `begin`
/// (within 80 bytes), as Presidio's context enhancer reads its prefix.
bool context_before(std::string_view text, size_t begin,
                    const std::vector<std::vector<std::string>>& phrases) {
  auto from = begin > 80 ? begin - 80 : 0;
  auto words = words_of(text.substr(from, begin - from));
  // The first word of the window may be cut; five words are enough anyway.
  auto first = words.size() > 5 ? words.size() - 5 : 0;
  for (const auto& phrase : phrases)
    for (auto i = first; i + phrase.size() <= words.size(); ++i)
      if (std::equal(phrase.begin(), phrase.end(), words.begin() + i))
        return true;
  return false;
}

/// Published numbers that are not anyone's: the Woolworth wallet card
/// (078-05-1120) and the SSA's 1940 pamphlet (219-09-9999).
constexpr std::string_view voided_ssns[] = {"078051120", "219099999"};

bool validate_ssn(std::string_view text, size_t begin, size_t end,
                  const std::vector<std::vector<std::string>>& context) {
  if (!stands_alone(text, begin, end))
    return false;
  auto candidate = text.substr(begin, end - begin);
  auto digits = digits_of(candidate);
  if (digits.size() != 9)
    return false;
  // Plain digits (9, 3-6, 5-4) are an SSN only after a context word.
  bool separated = candidate.size() == 11 && candidate[3] == candidate[6];
  if (!separated && !context_before(text, begin, context))
    return false;
  auto area = std::string_view{digits}.substr(0, 3);
  auto group = std::string_view{digits}.substr(3, 2);
  auto serial = std::string_view{digits}.substr(5);
  // The SSA never issues area 000, 666 or 900-999, group 00 or serial 0000.
  if (area == "000" || area == "666" || area[0] == '9' || group == "00"
      || serial == "0000" || one_repeated_digit(digits))
    return false;
  return std::find(std::begin(voided_ssns), std::end(voided_ssns), digits)
         == std::end(voided_ssns);
}

// -- phones -------------------------------------------------------------------

/// The longest phone candidate read, in bytes.
constexpr size_t max_phone_bytes = 48;

/// A national significant number of the North-American plan: area and
/// exchange start with 2-9, and the area is not an N11 service code.
bool nanp_number(std::string_view nsn) {
  return nsn.size() == 10 && nsn[0] >= '2' && !(nsn[1] == '1' && nsn[2] == '1')
         && nsn[3] >= '2';
}

/// `candidate` without a trailing extension ("x4587", " ext. 12",
/// " extension 4", "#3"): at most six digits after the marker.
std::string_view without_extension(std::string_view candidate) {
  size_t digits = 0;
  while (digits < candidate.size()
         && is_digit(candidate[candidate.size() - 1 - digits]))
    ++digits;
  if (digits == 0 || digits > 6 || digits == candidate.size())
    return candidate;
  auto marker_end = candidate.size() - digits;
  if (candidate[marker_end - 1] == '#')
    return candidate.substr(0, marker_end - 1);
  if (candidate[marker_end - 1] == ' ')
    --marker_end;
  auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
  };
  for (std::string_view marker : {"extension", "ext.", "ext", "x"}) {
    if (marker_end < marker.size())
      continue;
    auto at = marker_end - marker.size();
    bool same = true;
    for (size_t i = 0; i < marker.size() && same; ++i)
      same = lower(candidate[at + i]) == marker[i];
    if (!same)
      continue;
    if (at > 0 && candidate[at - 1] == ' ')
      --at;
    return candidate.substr(0, at);
  }
  return candidate;
}

/// Digits no one is reachable at: counting up ("012-345-6789"); written
/// together (`bare`), counting down ("9876543210") or five equal digits in
/// a row ("0101000000"), which integers in code and tables have more often
/// than phone numbers written without separators.
bool placeholder(std::string_view digits, bool bare) {
  if (digits.size() < 7)
    return false;
  bool up = true;
  bool down = true;
  size_t same = 1;
  size_t longest_same = 1;
  for (size_t i = 1; i < digits.size(); ++i) {
    auto prev = digits[i - 1];
    up = up && digits[i] == (prev == '9' ? '0' : prev + 1);
    down = down && digits[i] == (prev == '0' ? '9' : prev - 1);
    same = digits[i] == prev ? same + 1 : 1;
    longest_same = std::max(longest_same, same);
  }
  return up || (bare && (down || longest_same >= 5));
}

/// Checks an international number: `number` is what follows `+`, `00` or
/// `011`. The calling code must exist and the rest fit its lengths.
bool international_number(std::string_view number) {
  auto trunk = number.find("(0)");
  std::string digits;
  for (size_t i = 0; i < number.size(); ++i) {
    if (i == trunk) {
      i += 2;
      continue;
    }
    if (is_digit(number[i]))
      digits.push_back(number[i]);
  }
  for (size_t n = 1; n <= 3 && n < digits.size(); ++n) {
    auto code = std::string_view{digits}.substr(0, n);
    auto lengths = tables::calling_code(code);
    if (!lengths)
      continue;
    auto nsn = std::string_view{digits}.substr(n);
    // Only Italy and San Marino keep a leading 0 after the country code.
    if (trunk == std::string_view::npos && nsn[0] == '0' && code != "39"
        && code != "378")
      return false;
    if (code == "1")
      return nanp_number(nsn);
    // Mobile numbers of China and India have one length.
    if (code == "86" && nsn.size() > 1 && nsn[0] == '1' && nsn[1] >= '3')
      return nsn.size() == 11;
    if (code == "91" && nsn[0] >= '6')
      return nsn.size() == 10;
    return nsn.size() >= lengths->min && nsn.size() <= lengths->max;
  }
  return false;
}

} // namespace

// -- the scanner
// ---------------------------------------------------------------

struct pii_scanner::compiled {
  std::unique_ptr<const re2::RE2> email;
  std::unique_ptr<const re2::RE2> iban;
  std::unique_ptr<const re2::RE2> ssn;
  std::unique_ptr<const re2::RE2> phone;
  std::unique_ptr<const re2::RE2> not_phone;
  /// National formats of the configured regions, matched whole at once.
  std::unique_ptr<re2::RE2::Set> national;
  /// The region of each pattern in `national`, by index.
  std::vector<const tables::phone_region*> national_region;
  /// Configured regions without formats of their own (the generic rule).
  std::vector<const tables::phone_region*> generic;
  /// Configured regions other than the North-American plan.
  std::vector<const tables::phone_region*> non_nanp;
  /// True if US or CA is configured.
  bool nanp = false;
  /// The SSN context entries, as word sequences.
  std::vector<std::vector<std::string>> ssn_context;

  bool phone_valid(std::string_view candidate) const;
  bool national_number(std::string_view number, size_t groups) const;
  void find_phones(std::string_view text, std::vector<pii_finding>& out) const;
  void find_ssns(std::string_view text, std::vector<pii_finding>& out) const;
};

bool pii_scanner::compiled::national_number(std::string_view number,
                                            size_t groups) const {
  auto digits = digits_of(number);
  // A configured region's calling code without '+', as its own group,
  // before the national number ("91-415-555-0132").
  for (const auto* region : non_nanp) {
    auto cc = region->calling_code;
    if (groups >= 3 && number.size() > cc.size() + 1
        && number.substr(0, cc.size()) == cc
        && (number[cc.size()] == ' ' || number[cc.size()] == '-')) {
      auto nsn = std::string_view{digits}.substr(cc.size());
      if (nsn[0] != '0' && nsn.size() >= region->nsn.min
          && nsn.size() <= region->nsn.max)
        return true;
    }
  }
  // Ten digits alone: a North-American number if its area is in service.
  if (nanp && number.size() == 10 && digits.size() == 10 && nanp_number(digits)
      && tables::nanp_area_in_service(digits.substr(0, 3)))
    return true;
  if (national) {
    std::vector<int> matched;
    if (national->Match(re2::StringPiece{number.data(), number.size()},
                        &matched)) {
      for (auto index : matched) {
        const auto* region = national_region[static_cast<size_t>(index)];
        if (region->calling_code == "1") {
          auto nsn = std::string_view{digits};
          if (nsn.size() == 11)
            nsn.remove_prefix(1);
          if (nanp_number(nsn))
            return true;
          continue;
        }
        auto nsn = std::string_view{digits};
        if (region->trunk_zero && nsn[0] == '0')
          nsn.remove_prefix(1);
        if (nsn.size() >= region->nsn.min && nsn.size() <= region->nsn.max)
          return true;
      }
    }
  }
  // Regions without formats of their own: groups split by spaces or
  // dashes, a first group of 2-5 digits, the trunk 0 where the region has
  // one, and the national number's length.
  if (!generic.empty() && groups >= 2
      && number.find_first_not_of("0123456789 -") == std::string_view::npos) {
    auto first = number.find_first_of(" -");
    for (const auto* region : generic) {
      auto nsn = std::string_view{digits};
      if (first < 2 || first > 5)
        break;
      if (region->trunk_zero) {
        if (nsn[0] != '0' || nsn[1] == '0')
          continue;
        nsn.remove_prefix(1);
      }
      if (nsn.size() >= region->nsn.min && nsn.size() <= region->nsn.max)
        return true;
    }
  }
  return false;
}

bool pii_scanner::compiled::phone_valid(std::string_view candidate) const {
  // The longest real number with its extension is about 35 bytes
  // ("+46 (0)8 928 571 38 ext. 123456"); longer runs are tables of numbers.
  if (candidate.size() > max_phone_bytes)
    return false;
  auto number = without_extension(candidate);
  if (number.empty())
    return false;
  std::string without_trunk{number};
  if (auto t = without_trunk.find("(0)"); t != std::string::npos)
    without_trunk.erase(t, 3);
  auto groups = digit_runs(without_trunk);
  if (groups.empty())
    return false;
  bool dot = number.find('.') != std::string_view::npos;
  // Dots do not mix with other separators ("+1.202-555 0147"), and short
  // dotted numbers are amounts ("+3.140000").
  auto digits = digits_of(number);
  if (dot
      && (number.find_first_of(" -/") != std::string_view::npos
          || digits.size() < 10))
    return false;
  if (std::count(number.begin(), number.end(), '/') > 1
      || number.find(" / ") != std::string_view::npos)
    return false;
  // "+33 1 42 68 53 00" has one single-digit group; "1 2 3 4 5 6 7" many.
  if (std::count(groups.begin(), groups.end(), size_t{1}) > 1
      || (groups.size() > 1 && groups.back() == 1))
    return false;
  if (std::count(number.begin(), number.end(), '(')
      != std::count(number.begin(), number.end(), ')'))
    return false;
  re2::StringPiece input{candidate.data(), candidate.size()};
  if (re2::RE2::PartialMatch(input, *not_phone))
    return false;
  // An SSN's shape is an SSN's ("078-05-1123"), even where it is also a
  // valid number of some plan.
  if (number.size() == 11 && number[3] == number[6]
      && std::string_view{" .-"}.find(number[3]) != std::string_view::npos
      && groups.size() == 3 && groups[0] == 3 && groups[1] == 2)
    return false;
  if (placeholder(digits, number.size() == digits.size()))
    return false;
  if (number[0] == '+')
    return international_number(number.substr(1));
  // "00" and "011 " lead an international number; a national number never
  // starts with "00".
  if (number.starts_with("00"))
    return international_number(
      number.substr(number.size() > 2 && number[2] == ' ' ? 3 : 2));
  if (number.starts_with("011 "))
    return international_number(number.substr(4));
  // Written without a country code, these shapes are something else: a US
  // ZIP+4 code ("Boston, MA 02110-1301"), a range ("ports 60000-64999"),
  // 2^31 ("2147483647").
  auto dash = number.find('-');
  if (groups.size() == 2 && dash != std::string_view::npos
      && number.find_first_not_of("0123456789-") == std::string_view::npos) {
    auto low = number.substr(0, dash);
    auto high = number.substr(dash + 1);
    if ((low.size() == 5 && high.size() == 4)
        || (low.size() == high.size() && low[0] == high[0] && high > low))
      return false;
  }
  if (digits.starts_with("214748364"))
    return false;
  return national_number(number, groups.size());
}

void pii_scanner::compiled::find_phones(std::string_view text,
                                        std::vector<pii_finding>& out) const {
  auto check = [&](size_t begin, size_t end) {
    while (begin < end && text[begin] == ' ')
      ++begin;
    while (end > begin && text[end - 1] == ' ')
      --end;
    auto part = text.substr(begin, end - begin);
    auto opens = std::count(part.begin(), part.end(), '(');
    auto closes = std::count(part.begin(), part.end(), ')');
    // A bracket of the sentence: "(call +44 20 7946 0958)".
    if (!part.empty() && part.front() == '(' && opens > closes) {
      ++begin;
      part.remove_prefix(1);
    }
    if (!part.empty() && part.back() == ')' && closes > opens) {
      --end;
      part.remove_suffix(1);
    }
    if (part.empty() || (begin > 0 && text[begin - 1] == '+')
        || !stands_alone(text, begin, end))
      return;
    if (phone_valid(part))
      out.push_back({pii_kind::phone, begin, end - begin});
  };
  for_each_match(*phone, text, [&](size_t begin, size_t end) {
    // Two numbers side by side: "212-555-0123 / 212-555-0199".
    auto candidate = text.substr(begin, end - begin);
    size_t from = 0;
    for (auto slash = candidate.find(" / "); slash != std::string_view::npos;
         slash = candidate.find(" / ", from)) {
      check(begin + from, begin + slash);
      from = slash + 3;
    }
    check(begin + from, end);
    // Each candidate is read once: the scan stays linear.
    return end;
  });
}

void pii_scanner::compiled::find_ssns(std::string_view text,
                                      std::vector<pii_finding>& out) const {
  for_each_match(*ssn, text, [&](size_t begin, size_t end) {
    if (validate_ssn(text, begin, end, ssn_context)) {
      out.push_back({pii_kind::ssn, begin, end - begin});
      return end;
    }
    return begin + 1;
  });
}

namespace {

bool overlaps(const pii_finding& x, const pii_finding& y) {
  return x.offset < y.offset + y.length && y.offset < x.offset + x.length;
}

/// True if `f` overlaps a finding of `kept` (sorted, non-overlapping).
bool overlaps_any(const std::vector<pii_finding>& kept, const pii_finding& f) {
  auto i = std::upper_bound(kept.begin(), kept.end(), f.offset,
                            [](size_t offset, const pii_finding& k) {
                              return offset < k.offset + k.length;
                            });
  return i != kept.end() && overlaps(*i, f);
}

/// Splits a context entry into its words; empty if it is not made of
/// `[a-z0-9#]` words separated by single spaces.
std::vector<std::string> context_words(std::string_view entry) {
  auto words = words_of(entry);
  std::string joined;
  for (const auto& w : words)
    joined += (joined.empty() ? "" : " ") + w;
  if (joined != entry)
    return {};
  return words;
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

std::vector<std::string> default_phone_regions() {
  return tables::default_phone_regions();
}

std::vector<std::string> default_ssn_context() {
  return {"ssn", "ssns", "ssn#", "ss#", "social security", "soc sec"};
}

std::vector<std::string> known_phone_regions() {
  std::vector<std::string> result;
  for (const auto& region : tables::phone_regions())
    result.emplace_back(region.code);
  std::sort(result.begin(), result.end());
  return result;
}

std::optional<std::string> region_problem(std::string_view code) {
  if (tables::find_phone_region(code))
    return std::nullopt;
  if (code == "UK")
    return "unknown region 'UK': the ISO 3166 code of the United Kingdom is "
           "GB";
  std::string known;
  for (const auto& k : known_phone_regions())
    known += (known.empty() ? "" : ", ") + k;
  return "unknown region '" + std::string{code} + "' (known: " + known + ")";
}

std::optional<std::string> context_problem(std::string_view entry) {
  if (!context_words(entry).empty())
    return std::nullopt;
  return "'" + std::string{entry}
         + "' must be lower-case words of a-z, 0-9 and #, separated by "
           "single spaces";
}

pii_scanner::pii_scanner(const pii_options& options) {
  for (auto x : options.kinds)
    enabled_ |= static_cast<uint8_t>(1u << static_cast<unsigned>(x));
  auto impl = std::make_shared<compiled>();
  impl->email = compile(email_pattern);
  impl->iban = compile(iban_pattern);
  impl->ssn = compile(ssn_pattern);
  impl->phone = compile(phone_pattern);
  impl->not_phone = compile(not_phone_pattern);
  auto set
    = std::make_unique<re2::RE2::Set>(pattern_options(), re2::RE2::ANCHOR_BOTH);
  for (const auto& code : options.phone_regions) {
    const auto* region = tables::find_phone_region(code);
    if (!region)
      continue;
    if (region->calling_code == "1") {
      // US and CA share one plan: add its formats once.
      if (impl->nanp)
        continue;
      impl->nanp = true;
    } else {
      impl->non_nanp.push_back(region);
    }
    if (region->formats.empty())
      impl->generic.push_back(region);
    for (auto format : region->formats) {
      [[maybe_unused]] auto index
        = set->Add(re2::StringPiece{format.data(), format.size()}, nullptr);
      assert(index >= 0);
      impl->national_region.push_back(region);
    }
  }
  if (!impl->national_region.empty()) {
    [[maybe_unused]] bool compiled_ok = set->Compile();
    assert(compiled_ok);
    impl->national = std::move(set);
  }
  for (const auto& entry : options.ssn_context)
    if (auto words = context_words(entry); !words.empty())
      impl->ssn_context.push_back(std::move(words));
  impl_ = std::move(impl);
}

pii_scanner::pii_scanner(std::vector<pii_kind> enabled)
    : pii_scanner(pii_options{std::move(enabled), default_phone_regions(),
                              default_ssn_context()}) {}

bool pii_scanner::enabled(pii_kind x) const {
  return (enabled_ & (1u << static_cast<unsigned>(x))) != 0;
}

void pii_scanner::collect(pii_kind kind, std::string_view text,
                          std::vector<pii_finding>& out) const {
  switch (kind) {
  case pii_kind::email:
    find_emails(*impl_->email, text, out);
    break;
  case pii_kind::phone:
    impl_->find_phones(text, out);
    break;
  case pii_kind::card:
    find_cards(text, out);
    break;
  case pii_kind::iban:
    find_ibans(*impl_->iban, text, out);
    break;
  case pii_kind::ssn:
    impl_->find_ssns(text, out);
    break;
  }
  std::sort(out.begin(), out.end(),
            [](const auto& x, const auto& y) { return x.offset < y.offset; });
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
  // The kinds up to the lowest-ranked enabled one run: a kind that is not
  // reported still keeps its findings from a kind ranked below it.
  size_t run_to = 0;
  for (size_t r = 0; r < std::size(ranks); ++r)
    if (enabled(ranks[r]))
      run_to = r + 1;
  std::vector<pii_finding> kept[std::size(ranks)];
  std::vector<pii_finding> result;
  std::vector<pii_finding> found;
  for (size_t r = 0; r < run_to; ++r) {
    if (!possible(ranks[r]))
      continue;
    found.clear();
    collect(ranks[r], text, found);
    for (const auto& f : found) {
      bool shadowed = !kept[r].empty() && overlaps(kept[r].back(), f);
      for (size_t h = 0; h < r && !shadowed; ++h)
        shadowed = overlaps_any(kept[h], f);
      if (!shadowed)
        kept[r].push_back(f);
    }
    if (enabled(ranks[r]))
      result.insert(result.end(), kept[r].begin(), kept[r].end());
  }
  std::sort(result.begin(), result.end(),
            [](const auto& x, const auto& y) { return x.offset < y.offset; });
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
