#include "core/json/reader.hpp"

#include "core/json/text.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace pw::json {

namespace dom = simdjson::dom;
using dom::element;
using dom::element_type;

namespace {

/// Parsers up to this capacity stay with their thread for the next read;
/// a larger one (a big upstream answer) is freed with its view.
constexpr size_t kept_capacity = 256 * 1024;
constexpr size_t kept_parsers = 4;
/// Objects up to this size are checked for duplicates pairwise, larger ones
/// by sorting their keys: never quadratic.
constexpr size_t small_object = 16;
/// Longest key quoted in a path or message, and the longest path.
constexpr size_t max_key_shown = 64;
constexpr size_t max_path_shown = 256;

/// The idle parsers of this thread. A parser is used by one view at a time.
struct parser_cache {
  std::vector<std::unique_ptr<dom::parser>> idle;

  std::unique_ptr<dom::parser> take(uint32_t depth) {
    for (auto it = idle.begin(); it != idle.end(); ++it)
      if ((*it)->max_depth() == depth) {
        auto p = std::move(*it);
        idle.erase(it);
        return p;
      }
    if (!idle.empty()) {
      auto p = std::move(idle.back());
      idle.pop_back();
      return p;
    }
    return std::make_unique<dom::parser>();
  }

  void give(std::unique_ptr<dom::parser> p) {
    if (p && p->capacity() <= kept_capacity && idle.size() < kept_parsers)
      idle.push_back(std::move(p));
  }
};

parser_cache& cache() {
  thread_local parser_cache c;
  return c;
}

fault fault_of(simdjson::error_code err) {
  switch (err) {
  case simdjson::DEPTH_ERROR:
    return fault::too_deep;
  case simdjson::UTF8_ERROR:
    return fault::utf8;
  case simdjson::NUMBER_ERROR:
  case simdjson::NUMBER_OUT_OF_RANGE:
    return fault::number;
  default:
    return fault::syntax;
  }
}

/// Walks a parsed text for the bounds simdjson does not check. Recursion
/// follows the nesting, which the parser has already bounded by the
/// limit's depth. On a problem, each level adds its path segment while
/// the walk unwinds (innermost first).
class walker {
public:
  explicit walker(const limits& lim) : lim_(lim) {
    // nop
  }

  bool value(element v) {
    switch (v.type()) {
    case element_type::OBJECT:
      return object(v.get_object().value_unsafe());
    case element_type::ARRAY:
      return array(v.get_array().value_unsafe());
    case element_type::STRING:
      if (v.get_string().value_unsafe().size() > lim_.max_string)
        return fail(fault::string_too_long);
      return true;
    default:
      return true;
    }
  }

  /// The problem found, with its path joined outermost first.
  problem take() {
    std::string path;
    for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
      if (!path.empty() && it->front() != '[')
        path.push_back('.');
      path += *it;
      if (path.size() > max_path_shown) {
        path = std::string{utf8_prefix(path, max_path_shown)} + "...";
        break;
      }
    }
    problem_.path = std::move(path);
    return std::move(problem_);
  }

private:
  bool fail(fault kind) {
    problem_.kind = kind;
    return false;
  }

  bool fail_duplicate(std::string_view key) {
    problem_.key = std::string{utf8_prefix(key, max_key_shown)};
    return fail(fault::duplicate_key);
  }

  void add_key(std::string_view key) {
    segments_.emplace_back(utf8_prefix(key, max_key_shown));
  }

  bool object(dom::object obj) {
    size_t n = 0;
    std::array<std::string_view, small_object> few;
    std::vector<std::string_view> many;
    for (auto [key, val] : obj) {
      if (++n > lim_.max_members)
        return fail(fault::too_many_members);
      if (key.size() > lim_.max_string) {
        add_key(key);
        return fail(fault::string_too_long);
      }
      if (n <= small_object) {
        for (size_t i = 0; i + 1 < n; ++i)
          if (few[i] == key)
            return fail_duplicate(key);
        few[n - 1] = key;
      } else {
        if (many.empty())
          many.assign(few.begin(), few.end());
        many.push_back(key);
      }
      if (!value(val)) {
        add_key(key);
        return false;
      }
    }
    if (!many.empty()) {
      std::sort(many.begin(), many.end());
      if (auto it = std::adjacent_find(many.begin(), many.end());
          it != many.end())
        return fail_duplicate(*it);
    }
    return true;
  }

  bool array(dom::array arr) {
    size_t i = 0;
    for (auto val : arr) {
      if (i >= lim_.max_elements)
        return fail(fault::too_many_elements);
      if (!value(val)) {
        segments_.push_back("[" + std::to_string(i) + "]");
        return false;
      }
      ++i;
    }
    return true;
  }

  const limits& lim_;
  problem problem_;
  std::vector<std::string> segments_;
};

} // namespace

view::~view() {
  if (parser_)
    cache().give(std::move(parser_));
}

result<view> read(std::string_view text, const limits& lim) {
  auto parser = cache().take(lim.max_depth);
  if (parser->max_depth() != lim.max_depth || parser->capacity() < text.size())
    if (parser->allocate(std::max(parser->capacity(), text.size()),
                         lim.max_depth)
        != simdjson::SUCCESS)
      return problem{fault::syntax, {}, {}};
  element root;
  // The text is copied into the parser's padded buffer (simdjson reads
  // past the end in blocks); strings are copied out of it while parsing.
  // An empty view may have no data at all, which memcpy must not see.
  static constexpr char nothing[1] = {};
  const char* bytes = text.empty() ? nothing : text.data();
  if (auto err = parser->parse(bytes, text.size(), true).get(root)) {
    cache().give(std::move(parser));
    return problem{fault_of(err), {}, {}};
  }
  walker w{lim};
  if (!w.value(root)) {
    cache().give(std::move(parser));
    return w.take();
  }
  return view{std::move(parser), root};
}

/// simdjson counts a container's members exactly up to 2^24 - 1 and says
/// 2^24 - 1 beyond; a reservation is a hint, so it stops well below that.
constexpr size_t max_reserve = 4096;

document to_document(element value) {
  switch (value.type()) {
  case element_type::OBJECT: {
    auto out = document::object();
    // The keys are unique (read() refuses duplicates), so they are
    // appended without ordered_map's linear search for an existing key.
    auto& members = out.get_ref<document::object_t&>();
    dom::object obj = value.get_object().value_unsafe();
    members.reserve(std::min(obj.size(), max_reserve));
    for (auto [key, val] : obj)
      members.emplace_back(std::string{key}, to_document(val));
    return out;
  }
  case element_type::ARRAY: {
    auto out = document::array();
    auto& elements = out.get_ref<document::array_t&>();
    dom::array arr = value.get_array().value_unsafe();
    elements.reserve(std::min(arr.size(), max_reserve));
    for (auto val : arr)
      elements.push_back(to_document(val));
    return out;
  }
  case element_type::INT64: {
    auto i = value.get_int64().value_unsafe();
    if (i >= 0)
      return document(static_cast<uint64_t>(i));
    return document(i);
  }
  case element_type::UINT64:
    return document(value.get_uint64().value_unsafe());
  case element_type::DOUBLE:
    return document(value.get_double().value_unsafe());
  case element_type::STRING:
    return document(std::string{value.get_string().value_unsafe()});
  case element_type::BOOL:
    return document(value.get_bool().value_unsafe());
  case element_type::NULL_VALUE:
    break;
  }
  return document(nullptr);
}

result<document> parse(std::string_view text, const limits& lim) {
  auto v = read(text, lim);
  if (!v)
    return v.error();
  return to_document(v->root());
}

namespace {

/// Writes `value` compactly, as nlohmann's dump() does: strings through
/// append_json_string (a run of plain ASCII copied at once, where
/// nlohmann's serializer decodes every byte), integers through to_chars,
/// floating-point numbers (and anything else) by nlohmann itself.
void write(std::string& out, const document& value) {
  using type = document::value_t;
  switch (value.type()) {
  case type::object: {
    out.push_back('{');
    bool first = true;
    for (const auto& [key, member] :
         value.get_ref<const document::object_t&>()) {
      if (!first)
        out.push_back(',');
      first = false;
      append_json_string(out, key);
      out.push_back(':');
      write(out, member);
    }
    out.push_back('}');
    return;
  }
  case type::array: {
    out.push_back('[');
    bool first = true;
    for (const auto& item : value.get_ref<const document::array_t&>()) {
      if (!first)
        out.push_back(',');
      first = false;
      write(out, item);
    }
    out.push_back(']');
    return;
  }
  case type::string: {
    const auto& text = value.get_ref<const std::string&>();
    // Invalid UTF-8 (only in a string the gateway made) is replaced as
    // nlohmann replaces it: one U+FFFD per invalid sequence.
    if (simdjson::validate_utf8(text.data(), text.size()))
      append_json_string(out, text);
    else
      out += value.dump(-1, ' ', false, document::error_handler_t::replace);
    return;
  }
  case type::boolean:
    out += value.get<bool>() ? "true" : "false";
    return;
  case type::null:
    out += "null";
    return;
  case type::number_integer:
    append_integer(out, value.get<int64_t>());
    return;
  case type::number_unsigned:
    append_integer(out, value.get<uint64_t>());
    return;
  default: // floating point (nlohmann's shortest form), binary, discarded
    out += value.dump(-1, ' ', false, document::error_handler_t::replace);
    return;
  }
}

} // namespace

std::string dump(const document& doc) {
  // nlohmann's serializer spent more instructions on a translated
  // Anthropic answer than the rest of the request (docs/performance.md);
  // tests/unit/core/json_reader_test.cpp holds the two to the same bytes.
  std::string out;
  out.reserve(512);
  write(out, doc);
  return out;
}

std::optional<element> member(element value, std::string_view key) {
  dom::object obj;
  if (value.get(obj) != simdjson::SUCCESS)
    return std::nullopt;
  element out;
  if (obj.at_key(key).get(out) != simdjson::SUCCESS)
    return std::nullopt;
  return out;
}

std::string_view string_of(element value, std::string_view key,
                           std::string_view fallback) {
  std::string_view out;
  if (auto m = member(value, key); m && m->get(out) == simdjson::SUCCESS)
    return out;
  return fallback;
}

uint64_t uint_of(element value, std::string_view key, uint64_t fallback) {
  if (auto m = member(value, key)) {
    if (m->type() == element_type::UINT64)
      return m->get_uint64().value_unsafe();
    if (m->type() == element_type::INT64 && m->get_int64().value_unsafe() >= 0)
      return static_cast<uint64_t>(m->get_int64().value_unsafe());
  }
  return fallback;
}

} // namespace pw::json
