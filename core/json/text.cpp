#include "core/json/text.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace pw {

namespace {

/// Length of the valid UTF-8 sequence at `s[i]`, or 0 if invalid.
size_t utf8_length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    min = 0x80;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    min = 0x800;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    min = 0x10000;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size())
    return 0;
  for (size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

void skip_ws(std::string_view s, size_t& i) {
  while (i < s.size()
         && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    ++i;
}

/// What skip_value() stops at inside an array or object: a quote, a
/// bracket or a brace. Every other byte is passed over in a tight loop.
constexpr auto nesting_stops = [] {
  std::array<bool, 256> table{};
  for (unsigned char c : {'"', '{', '}', '[', ']'})
    table[c] = true;
  return table;
}();

/// Moves `i` to the first byte at or after it that `table` stops at (or to
/// the end).
void pass_over(std::string_view s, size_t& i,
               const std::array<bool, 256>& table) {
  while (i < s.size() && !table[static_cast<unsigned char>(s[i])])
    ++i;
}

/// Skips a string starting at the quote `s[i]`; sets `escaped` if it holds a
/// backslash. Returns false on malformed input. (memchr finds the closing
/// quote and any backslash before it: a string is most of an answer's
/// bytes.)
bool skip_string(std::string_view s, size_t& i, bool& escaped) {
  ++i; // opening quote
  for (;;) {
    auto quote = s.find('"', i);
    if (quote == std::string_view::npos)
      return false;
    const auto* slash
      = static_cast<const char*>(std::memchr(s.data() + i, '\\', quote - i));
    if (slash == nullptr) {
      i = quote + 1;
      return true;
    }
    // A backslash: the byte after it is part of the string.
    escaped = true;
    i = static_cast<size_t>(slash - s.data()) + 2;
    if (i > s.size())
      return false;
  }
}

/// Skips one JSON value starting at `s[i]`.
bool skip_value(std::string_view s, size_t& i) {
  if (i >= s.size())
    return false;
  bool escaped = false;
  char c = s[i];
  if (c == '"')
    return skip_string(s, i, escaped);
  if (c == '{' || c == '[') {
    size_t depth = 0;
    for (;;) {
      pass_over(s, i, nesting_stops);
      if (i >= s.size())
        return false;
      char d = s[i];
      if (d == '"') {
        if (!skip_string(s, i, escaped))
          return false;
        continue;
      }
      if (d == '{' || d == '[')
        ++depth;
      else if (--depth == 0) { // a closing bracket or brace
        ++i;
        return true;
      }
      ++i;
    }
  }
  // Number, true, false, null: up to the next delimiter.
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']'
         && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
    ++i;
  return true;
}

/// The bytes a JSON string holds as they are: printable ASCII but the
/// quote and the backslash.
constexpr auto plain_ascii = [] {
  std::array<bool, 256> table{};
  for (unsigned c = 0x20; c < 0x80; ++c)
    table[c] = c != '"' && c != '\\';
  return table;
}();

} // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (plain_ascii[c]) {
      // Copy the longest run of plain ASCII at once.
      size_t j = i + 1;
      while (j < text.size()
             && plain_ascii[static_cast<unsigned char>(text[j])])
        ++j;
      out.append(text.substr(i, j - i));
      i = j;
      continue;
    }
    switch (c) {
    case '"':
      out += "\\\"";
      ++i;
      continue;
    case '\\':
      out += "\\\\";
      ++i;
      continue;
    case '\n':
      out += "\\n";
      ++i;
      continue;
    case '\r':
      out += "\\r";
      ++i;
      continue;
    case '\t':
      out += "\\t";
      ++i;
      continue;
    case '\b':
      out += "\\b";
      ++i;
      continue;
    case '\f':
      out += "\\f";
      ++i;
      continue;
    default:
      break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
      ++i;
      continue;
    }
    auto n = utf8_length(text, i);
    if (n == 0) {
      out += "\xef\xbf\xbd"; // U+FFFD
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  out.push_back('"');
}

std::string_view utf8_prefix(std::string_view text, size_t max) {
  if (text.size() <= max)
    return text;
  size_t n = max;
  // Back off continuation bytes (10xxxxxx) to the start of a character.
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80)
    --n;
  return text.substr(0, n);
}

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  append_json_string(out, text);
  return out;
}

std::optional<std::string> with_top_level_string(std::string_view doc,
                                                 std::string_view key,
                                                 std::string_view value) {
  size_t i = 0;
  skip_ws(doc, i);
  if (i >= doc.size() || doc[i] != '{')
    return std::nullopt;
  size_t open = i++;
  size_t found = 0;
  size_t value_begin = 0;
  size_t value_end = 0;
  bool empty = true;
  for (;;) {
    skip_ws(doc, i);
    if (i >= doc.size())
      return std::nullopt;
    if (doc[i] == '}')
      break;
    if (doc[i] != '"')
      return std::nullopt;
    empty = false;
    size_t key_begin = i + 1;
    bool escaped = false;
    if (!skip_string(doc, i, escaped) || escaped)
      return std::nullopt; // an escaped key could spell `key`: do not guess
    auto name = doc.substr(key_begin, i - key_begin - 1);
    skip_ws(doc, i);
    if (i >= doc.size() || doc[i] != ':')
      return std::nullopt;
    ++i;
    skip_ws(doc, i);
    size_t begin = i;
    if (!skip_value(doc, i))
      return std::nullopt;
    if (name == key) {
      ++found;
      value_begin = begin;
      value_end = i;
    }
    skip_ws(doc, i);
    if (i < doc.size() && doc[i] == ',') {
      ++i;
      continue;
    }
    if (i < doc.size() && doc[i] == '}')
      break;
    return std::nullopt;
  }
  if (found > 1)
    return std::nullopt;
  std::string out;
  out.reserve(doc.size() + value.size() + key.size() + 8);
  if (found == 1) {
    out.append(doc.substr(0, value_begin));
    append_json_string(out, value);
    out.append(doc.substr(value_end));
  } else {
    out.append(doc.substr(0, open + 1));
    append_json_string(out, key);
    out.push_back(':');
    append_json_string(out, value);
    if (!empty)
      out.push_back(',');
    out.append(doc.substr(open + 1));
  }
  return out;
}

} // namespace pw
