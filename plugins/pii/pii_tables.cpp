#include "plugins/pii/pii_tables.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>

namespace pw::plugins::pii::tables {

namespace {

// -- cards --------------------------------------------------------------------

/// Bit `n` set: the network issues `n`-digit numbers.
constexpr uint32_t lengths(unsigned from, unsigned to) {
  uint32_t bits = 0;
  for (auto n = from; n <= to; ++n)
    bits |= 1u << n;
  return bits;
}

constexpr uint32_t one_of(std::initializer_list<unsigned> ns) {
  uint32_t bits = 0;
  for (auto n : ns)
    bits |= 1u << n;
  return bits;
}

/// Leading digits `low`..`high` (equal lengths, compared as strings) and the
/// lengths a network issues under them.
struct iin_range {
  std::string_view low;
  std::string_view high;
  uint32_t lengths;
};

// Issuer identification number ranges of the card networks (ISO/IEC 7812),
// as the networks publish them; a number is a card if one row holds it.
// Rejected on purpose, because other numbers take those shapes: 16-digit
// numbers starting with 1, 15-digit numbers starting with 4 or 35 (IMEIs),
// 12-digit numbers outside Maestro, and the leading digits 0, 7 and 9 outside
// the rows below.
constexpr iin_range iin_ranges[] = {
  {"1", "1", one_of({15})},                   // UATP
  {"1800", "1800", one_of({15})},             // JCB (historic)
  {"2131", "2131", one_of({15})},             // JCB (historic)
  {"1946", "1946", one_of({16, 18, 19})},     // GPN
  {"2200", "2204", lengths(16, 19)},          // Mir
  {"2205", "2205", one_of({16})},             // BORICA
  {"2221", "2720", one_of({16})},             // Mastercard
  {"300", "305", lengths(14, 19)},            // Diners Club
  {"3095", "3095", lengths(14, 19)},          // Diners Club
  {"36", "36", lengths(14, 19)},              // Diners Club
  {"38", "39", lengths(14, 19)},              // Diners Club
  {"31", "31", one_of({19})},                 // China T-Union
  {"34", "34", one_of({15})},                 // American Express
  {"37", "37", one_of({15})},                 // American Express
  {"3528", "3589", lengths(16, 19)},          // JCB
  {"357111", "357111", one_of({16})},         // LankaPay
  {"4", "4", one_of({13, 16, 19})},           // Visa
  {"50", "50", one_of({16, 18, 19})},         // GPN
  {"51", "55", one_of({16})},                 // Mastercard
  {"5018", "5018", lengths(12, 19)},          // Maestro
  {"5019", "5019", one_of({16})},             // Dankort
  {"5020", "5020", lengths(12, 19)},          // Maestro
  {"5038", "5038", lengths(12, 19)},          // Maestro
  {"506099", "506198", one_of({16, 18, 19})}, // Verve
  {"507865", "507964", one_of({16, 18, 19})}, // Verve
  {"507808", "507808", one_of({16})},         // Meeza
  {"508", "508", one_of({16})},               // RuPay
  {"56", "56", one_of({16, 18, 19})},         // GPN
  {"58", "58", one_of({16, 18, 19})},         // GPN
  {"5893", "5893", lengths(12, 19)},          // Maestro
  {"60", "63", one_of({16, 18, 19})},         // GPN, RuPay
  {"6011", "6011", lengths(16, 19)},          // Discover
  {"62", "62", lengths(14, 19)},              // UnionPay
  {"622126", "622925", lengths(16, 19)},      // Discover
  {"6304", "6304", lengths(12, 19)},          // Maestro UK
  {"636", "636", lengths(16, 19)},            // InterPayment
  {"637", "639", one_of({16})},               // InstaPayment
  {"644", "649", lengths(16, 19)},            // Discover
  {"65", "65", lengths(16, 19)},              // Discover, RuPay, Troy
  {"650002", "650027", one_of({16, 18, 19})}, // Verve
  {"6759", "6759", lengths(12, 19)},          // Maestro UK
  {"6761", "6763", lengths(12, 19)},          // Maestro
  {"676770", "676770", lengths(12, 19)},      // Maestro UK
  {"676774", "676774", lengths(12, 19)},      // Maestro UK
  {"81", "82", lengths(16, 19)},              // UnionPay, RuPay
  {"8600", "8600", one_of({16})},             // UzCard
  {"9792", "9792", one_of({16})},             // Troy
  {"9860", "9860", one_of({16})},             // Humo
};

// -- IBANs --------------------------------------------------------------------

struct iban_country {
  std::string_view code;
  size_t length;
};

// IBAN lengths by country, from the SWIFT IBAN registry (ISO 13616), 89
// countries; sorted by code.
constexpr iban_country iban_countries[] = {
  {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20},
  {"BE", 16}, {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28},
  {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
  {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
  {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23},
  {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HN", 28}, {"HR", 21}, {"HU", 28},
  {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30},
  {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20},
  {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22},
  {"MK", 19}, {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28},
  {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24}, {"PL", 28}, {"PS", 29},
  {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24},
  {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
  {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26},
  {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

// -- phones -------------------------------------------------------------------

struct calling_code_row {
  std::string_view code;
  uint8_t min;
  uint8_t max;
};

// Country calling codes (ITU-T E.164 assignments) with the lengths of their
// national significant numbers: the union over each code's regions of the
// possible lengths in libphonenumber's metadata (v8.13.48, Apache-2.0; the
// lengths are facts of the national plans, no code is taken). Sorted by
// length, then code.
constexpr calling_code_row calling_codes[] = {
  {"1", 10, 10},   {"7", 10, 14},  {"20", 8, 10},   {"27", 5, 10},
  {"30", 10, 12},  {"31", 5, 11},  {"32", 8, 9},    {"33", 9, 9},
  {"34", 9, 9},    {"36", 8, 9},   {"39", 6, 12},   {"40", 6, 9},
  {"41", 9, 12},   {"43", 4, 13},  {"44", 7, 10},   {"45", 8, 8},
  {"46", 6, 12},   {"47", 5, 8},   {"48", 6, 10},   {"49", 4, 15},
  {"51", 8, 9},    {"52", 10, 10}, {"53", 6, 10},   {"54", 10, 11},
  {"55", 8, 11},   {"56", 9, 11},  {"57", 10, 11},  {"58", 10, 10},
  {"60", 8, 10},   {"61", 5, 12},  {"62", 7, 17},   {"63", 6, 13},
  {"64", 5, 10},   {"65", 8, 11},  {"66", 8, 13},   {"81", 8, 17},
  {"82", 5, 14},   {"84", 7, 10},  {"86", 7, 12},   {"90", 7, 13},
  {"91", 8, 13},   {"92", 8, 12},  {"93", 9, 9},    {"94", 9, 9},
  {"95", 6, 10},   {"98", 4, 10},  {"211", 9, 9},   {"212", 9, 9},
  {"213", 8, 9},   {"216", 8, 8},  {"218", 9, 9},   {"220", 7, 7},
  {"221", 9, 9},   {"222", 8, 8},  {"223", 8, 8},   {"224", 8, 9},
  {"225", 10, 10}, {"226", 8, 8},  {"227", 8, 8},   {"228", 8, 8},
  {"229", 8, 8},   {"230", 7, 10}, {"231", 7, 9},   {"232", 8, 8},
  {"233", 8, 9},   {"234", 8, 14}, {"235", 8, 8},   {"236", 8, 8},
  {"237", 8, 9},   {"238", 7, 7},  {"239", 7, 7},   {"240", 9, 9},
  {"241", 7, 8},   {"242", 9, 9},  {"243", 7, 10},  {"244", 9, 9},
  {"245", 7, 9},   {"246", 7, 7},  {"247", 5, 6},   {"248", 7, 7},
  {"249", 9, 9},   {"250", 8, 9},  {"251", 9, 9},   {"252", 6, 9},
  {"253", 8, 8},   {"254", 7, 10}, {"255", 9, 9},   {"256", 9, 9},
  {"257", 8, 8},   {"258", 8, 9},  {"260", 9, 9},   {"261", 9, 9},
  {"262", 9, 9},   {"263", 5, 10}, {"264", 8, 9},   {"265", 7, 9},
  {"266", 8, 8},   {"267", 7, 10}, {"268", 8, 9},   {"269", 7, 7},
  {"290", 4, 5},   {"291", 7, 7},  {"297", 7, 7},   {"298", 6, 6},
  {"299", 6, 6},   {"350", 8, 8},  {"351", 9, 9},   {"352", 4, 11},
  {"353", 7, 10},  {"354", 7, 9},  {"355", 6, 9},   {"356", 8, 8},
  {"357", 8, 8},   {"358", 5, 12}, {"359", 6, 12},  {"370", 8, 8},
  {"371", 8, 8},   {"372", 7, 10}, {"373", 8, 8},   {"374", 8, 8},
  {"375", 6, 11},  {"376", 6, 9},  {"377", 8, 9},   {"378", 8, 10},
  {"380", 9, 10},  {"381", 6, 12}, {"382", 8, 9},   {"383", 8, 12},
  {"385", 6, 9},   {"386", 5, 8},  {"387", 8, 9},   {"389", 8, 8},
  {"420", 9, 12},  {"421", 6, 9},  {"423", 7, 9},   {"500", 5, 5},
  {"501", 7, 11},  {"502", 8, 11}, {"503", 7, 11},  {"504", 8, 11},
  {"505", 8, 8},   {"506", 8, 10}, {"507", 7, 11},  {"508", 6, 9},
  {"509", 8, 8},   {"590", 9, 9},  {"591", 8, 9},   {"592", 7, 7},
  {"593", 8, 11},  {"594", 9, 9},  {"595", 6, 11},  {"596", 9, 9},
  {"597", 6, 7},   {"598", 6, 13}, {"599", 7, 8},   {"670", 7, 8},
  {"672", 6, 6},   {"673", 7, 7},  {"674", 7, 7},   {"675", 7, 8},
  {"676", 5, 7},   {"677", 5, 7},  {"678", 5, 7},   {"679", 7, 11},
  {"680", 7, 7},   {"681", 6, 9},  {"682", 5, 5},   {"683", 4, 7},
  {"685", 5, 10},  {"686", 5, 8},  {"687", 6, 6},   {"688", 5, 7},
  {"689", 6, 9},   {"690", 4, 7},  {"691", 7, 7},   {"692", 7, 7},
  {"800", 8, 8},   {"808", 8, 8},  {"850", 8, 10},  {"852", 5, 11},
  {"853", 7, 8},   {"855", 8, 10}, {"856", 8, 10},  {"870", 9, 12},
  {"878", 12, 12}, {"880", 6, 10}, {"881", 9, 10},  {"882", 7, 12},
  {"883", 8, 12},  {"886", 7, 11}, {"888", 11, 11}, {"960", 7, 10},
  {"961", 7, 8},   {"962", 8, 9},  {"963", 8, 9},   {"964", 8, 10},
  {"965", 7, 8},   {"966", 9, 10}, {"967", 7, 9},   {"968", 7, 9},
  {"970", 8, 10},  {"971", 5, 12}, {"972", 7, 12},  {"973", 8, 8},
  {"974", 7, 11},  {"975", 7, 8},  {"976", 8, 10},  {"977", 8, 11},
  {"979", 9, 9},   {"992", 9, 9},  {"993", 8, 8},   {"994", 9, 9},
  {"995", 9, 9},   {"996", 9, 10}, {"998", 9, 9},
};

// North-American area codes in service (geographic, toll-free 8xx,
// personal 5xx, non-geographic 600/622, premium 900), as libphonenumber
// v8.13.48 accepts them for US, CA and the Caribbean members of the NANP.
constexpr uint16_t nanp_areas[] = {
  201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216,
  217, 218, 219, 220, 223, 224, 225, 226, 227, 228, 229, 231, 234, 235, 236,
  239, 240, 242, 246, 248, 249, 250, 251, 252, 253, 254, 256, 260, 262, 263,
  264, 267, 268, 269, 270, 272, 276, 279, 281, 283, 284, 289, 301, 302, 303,
  304, 305, 306, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317, 318, 319,
  320, 321, 323, 325, 326, 329, 330, 331, 332, 334, 336, 337, 339, 340, 341,
  343, 345, 346, 347, 350, 351, 352, 354, 360, 361, 363, 364, 365, 367, 368,
  369, 380, 382, 385, 386, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410,
  412, 413, 414, 415, 416, 417, 418, 419, 423, 424, 425, 428, 430, 431, 432,
  434, 435, 437, 438, 440, 441, 442, 443, 445, 447, 448, 450, 458, 463, 464,
  468, 469, 470, 472, 473, 474, 475, 478, 479, 480, 484, 500, 501, 502, 503,
  504, 505, 506, 507, 508, 509, 510, 512, 513, 514, 515, 516, 517, 518, 519,
  520, 521, 522, 523, 524, 525, 526, 527, 528, 529, 530, 531, 533, 534, 539,
  540, 541, 544, 548, 551, 557, 559, 561, 562, 563, 564, 566, 567, 570, 571,
  572, 573, 574, 575, 577, 579, 580, 581, 582, 584, 585, 586, 587, 588, 600,
  601, 602, 603, 604, 605, 606, 607, 608, 609, 610, 612, 613, 614, 615, 616,
  617, 618, 619, 620, 622, 623, 626, 628, 629, 630, 631, 636, 639, 640, 641,
  645, 646, 647, 649, 650, 651, 656, 657, 658, 659, 660, 661, 662, 664, 667,
  669, 670, 671, 672, 678, 680, 681, 682, 683, 684, 689, 701, 702, 703, 704,
  705, 706, 707, 708, 709, 712, 713, 714, 715, 716, 717, 718, 719, 720, 721,
  724, 725, 726, 727, 728, 730, 731, 732, 734, 737, 740, 742, 743, 747, 753,
  754, 757, 758, 760, 762, 763, 765, 767, 769, 770, 771, 772, 773, 774, 775,
  778, 779, 780, 781, 782, 784, 785, 786, 787, 800, 801, 802, 803, 804, 805,
  806, 807, 808, 809, 810, 812, 813, 814, 815, 816, 817, 818, 819, 820, 825,
  826, 828, 829, 830, 831, 832, 833, 835, 838, 839, 840, 843, 844, 845, 847,
  848, 849, 850, 854, 855, 856, 857, 858, 859, 860, 862, 863, 864, 865, 866,
  867, 868, 869, 870, 872, 873, 876, 877, 878, 879, 888, 900, 901, 902, 903,
  904, 905, 906, 907, 908, 909, 910, 912, 913, 914, 915, 916, 917, 918, 919,
  920, 925, 928, 929, 930, 931, 934, 936, 937, 938, 939, 940, 941, 943, 945,
  947, 948, 949, 951, 952, 954, 956, 959, 970, 971, 972, 973, 978, 979, 980,
  983, 984, 985, 986, 989,
};

// National formats of the default regions (RE2, whole-number match; the
// trunk prefix, when the region has one, is part of the pattern).
constexpr std::string_view nanp_formats[] = {
  R"((?:1[ .\-]?)?\([2-9]\d\d\)[ .\-]?[2-9]\d\d[ .\-]\d{4})",
  R"((?:1-)?[2-9]\d\d-[2-9]\d\d-\d{4})",
  R"((?:1\.)?[2-9]\d\d\.[2-9]\d\d\.\d{4})",
  R"((?:1 )?[2-9]\d\d [2-9]\d\d \d{4})",
};
constexpr std::string_view gb_formats[] = {
  R"((?:0|\(0\))(?:2\d[ \-]?\d{4}[ \-]?\d{4}|1\d{2,3}[ \-]?\d{3}[ \-]?\d{3,4})"
  R"(|1\d{3,4}[ \-]?\d{4,6}|[3589]\d{2,3}[ \-]?\d{3}[ \-]?\d{3,4})"
  R"(|7\d{3}[ \-]?\d{6}))",
  R"(\(0(?:2\d|1\d{2,4}|[3589]\d{2,3})\) ?\d{3,4}[ \-]?\d{3,4})",
};
constexpr std::string_view de_formats[] = {
  R"((?:0|\(0\))[2-9]\d{1,4}[ \-/]\d{3,8})",
  R"(\(0[2-9]\d{1,4}\) ?\d{3,8})",
  R"(01[5-7]\d{1,2}[ \-/]?\d{7,8})",
};
constexpr std::string_view fr_formats[] = {
  R"(0[1-9](?: \d\d){4})",
  R"(0[1-9](?:\.\d\d){4})",
  R"(0[1-9](?:-\d\d){4})",
  R"(0[1-9]\d{8})",
};
constexpr std::string_view il_formats[] = {
  R"(0[2-489]-?\d{7})",
  R"(0[2-489]-\d{3}-\d{4})",
  R"(0[57]\d-?\d{7})",
  R"(0[57]\d-\d{3}-\d{4})",
};
constexpr std::string_view in_formats[] = {
  R"(0?[6-9]\d{4}[ \-]?\d{5})",
  R"(0[1-9]\d{1,3}[ \-]\d{3,4}[ \-]?\d{4})",
};
constexpr std::string_view br_formats[] = {
  R"(\(0?[1-9][1-9]\) ?(?:9\d{4}|[2-5]\d{3})[ \-]?\d{4})",
  R"(0?[1-9][1-9] (?:9\d{4}|[2-5]\d{3})[ \-]?\d{4})",
};
constexpr std::string_view jp_formats[] = {
  R"(0[1-9]\d{0,3}-\d{1,4}-\d{3,4})",
  R"(0[1-9]\d{0,3} \d{1,4} \d{4})",
  R"(0[789]0\d{8})",
};
constexpr std::string_view cn_formats[] = {
  R"(1[3-9]\d(?:[ \-]?\d{4}){2})",
  R"(0[1-9]\d{1,2}[ \-]?\d{7,8})",
};

// NSN lengths: libphonenumber v8.13.48 metadata, general description.
constexpr phone_region regions[] = {
  {"AT", "43", true, {4, 13}, {}},
  {"AU", "61", true, {5, 12}, {}},
  {"BE", "32", true, {8, 9}, {}},
  {"BR", "55", true, {10, 11}, br_formats},
  {"CA", "1", false, {10, 10}, nanp_formats},
  {"CH", "41", true, {9, 12}, {}},
  {"CN", "86", true, {9, 11}, cn_formats},
  {"DE", "49", true, {6, 11}, de_formats},
  {"DK", "45", false, {8, 8}, {}},
  {"ES", "34", false, {9, 9}, {}},
  {"FR", "33", true, {9, 9}, fr_formats},
  {"GB", "44", true, {9, 10}, gb_formats},
  {"IE", "353", true, {7, 10}, {}},
  {"IL", "972", true, {8, 9}, il_formats},
  {"IN", "91", true, {10, 10}, in_formats},
  {"IT", "39", false, {6, 12}, {}},
  {"JP", "81", true, {9, 10}, jp_formats},
  {"KR", "82", true, {5, 14}, {}},
  {"MX", "52", false, {10, 10}, {}},
  {"NL", "31", true, {5, 11}, {}},
  {"NO", "47", false, {5, 8}, {}},
  {"PL", "48", false, {6, 10}, {}},
  {"PT", "351", false, {9, 9}, {}},
  {"SE", "46", true, {6, 12}, {}},
  {"SG", "65", false, {8, 11}, {}},
  {"US", "1", false, {10, 10}, nanp_formats},
};

} // namespace

bool card_network_issues(std::string_view digits) {
  auto n = digits.size();
  if (n < 12 || n > 19)
    return false;
  return std::any_of(
    std::begin(iin_ranges), std::end(iin_ranges), [&](const iin_range& r) {
      auto head = digits.substr(0, r.low.size());
      return (r.lengths & (1u << n)) != 0 && head >= r.low && head <= r.high;
    });
}

size_t iban_length(std::string_view country) {
  auto i = std::lower_bound(
    std::begin(iban_countries), std::end(iban_countries), country,
    [](const iban_country& row, std::string_view x) { return row.code < x; });
  return i != std::end(iban_countries) && i->code == country ? i->length : 0;
}

std::optional<nsn_lengths> calling_code(std::string_view code) {
  for (const auto& row : calling_codes)
    if (row.code == code)
      return nsn_lengths{row.min, row.max};
  return std::nullopt;
}

bool nanp_area_in_service(std::string_view area) {
  if (area.size() != 3)
    return false;
  auto value = static_cast<uint16_t>((area[0] - '0') * 100
                                     + (area[1] - '0') * 10 + (area[2] - '0'));
  return std::binary_search(std::begin(nanp_areas), std::end(nanp_areas),
                            value);
}

std::span<const phone_region> phone_regions() {
  return regions;
}

const phone_region* find_phone_region(std::string_view code) {
  for (const auto& row : regions)
    if (row.code == code)
      return &row;
  return nullptr;
}

std::vector<std::string> default_phone_regions() {
  return {"US", "CA", "GB", "DE", "FR", "IL", "IN", "BR", "JP", "CN"};
}

} // namespace pw::plugins::pii::tables
