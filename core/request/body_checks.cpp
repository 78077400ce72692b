#include "core/request/body_checks.hpp"

#include "core/errc.hpp"

namespace pw::body_checks {

namespace {

namespace dom = simdjson::dom;
using dom::element;
using dom::element_type;

/// The sampling fields clients send most, and their ranges (OpenAI's).
struct number_rule {
  std::string_view key;
  double min;
  double max;
  bool integer;
};

constexpr number_rule number_rules[] = {
  {"temperature", 0, 2, false},
  {"top_p", 0, 1, false},
  {"max_tokens", 1, 1e9, true},
  {"max_completion_tokens", 1, 1e9, true},
  {"n", 1, 128, true},
  {"presence_penalty", -2, 2, false},
  {"frequency_penalty", -2, 2, false},
};

const number_rule* rule_for(std::string_view key) {
  for (const auto& r : number_rules)
    if (r.key == key)
      return &r;
  return nullptr;
}

/// "0.5", "2", "1000000000": a bound as a person writes it.
std::string number_text(double x) {
  auto out = std::to_string(x);
  out.erase(out.find_last_not_of('0') + 1);
  if (!out.empty() && out.back() == '.')
    out.pop_back();
  return out;
}

/// A token id: an integer from 0 to 2^32-1 (a vocabulary index).
bool is_token(element value) {
  switch (value.type()) {
  case element_type::INT64:
    return value.get_int64().value_unsafe() >= 0
           && value.get_int64().value_unsafe() <= int64_t{UINT32_MAX};
  case element_type::UINT64:
    return value.get_uint64().value_unsafe() <= UINT32_MAX;
  default:
    return false;
  }
}

/// A non-empty list of token ids.
bool is_token_list(element value) {
  dom::array tokens;
  if (value.get(tokens) != simdjson::SUCCESS || tokens.size() == 0)
    return false;
  for (auto t : tokens)
    if (!is_token(t))
      return false;
  return true;
}

bool is_text(element value) {
  return value.is_string();
}

bool is_nonempty_text(element value) {
  std::string_view text;
  return value.get(text) == simdjson::SUCCESS && !text.empty();
}

} // namespace

caf::error invalid(std::string message, std::string param) {
  return make_error(errc::invalid_request, std::move(message),
                    std::move(param));
}

caf::error unreadable(const json::problem& p) {
  if (p.kind == json::fault::syntax || p.kind == json::fault::utf8)
    return invalid("We could not parse the JSON body of your request. The "
                   "body must be valid JSON (UTF-8).");
  return json::client_error(p, json::client_limits, "The request body");
}

caf::error check_sampling(std::string_view name, element value) {
  const auto* rule = rule_for(name);
  if (rule == nullptr)
    return {};
  return check_number(name, value, rule->min, rule->max, rule->integer);
}

caf::error check_number(std::string_view name, element value, double min,
                        double max, bool integer) {
  auto key = std::string{name};
  double x = 0;
  bool is_integer = true;
  switch (value.type()) {
  case element_type::NULL_VALUE:
    return {};
  case element_type::INT64:
    x = static_cast<double>(value.get_int64().value_unsafe());
    break;
  case element_type::UINT64:
    x = static_cast<double>(value.get_uint64().value_unsafe());
    break;
  case element_type::DOUBLE:
    x = value.get_double().value_unsafe();
    is_integer = false;
    break;
  default:
    return invalid("'" + key + "' must be a number.", key);
  }
  if (integer && !is_integer)
    return invalid("'" + key + "' must be an integer.", key);
  if (!(x >= min && x <= max))
    return invalid("'" + key + "' must be between " + number_text(min) + " and "
                     + number_text(max) + ".",
                   key);
  return {};
}

caf::error check_text_or_tokens(element value, const text_rules& rules,
                                bool& token_input) {
  auto field = std::string{rules.field};
  auto text = rules.empty_text ? is_text : is_nonempty_text;
  auto shapes = "'" + field + "' must be a "
                + (rules.empty_text ? "string" : "non-empty string")
                + ", a list of "
                + (rules.empty_text ? "strings" : "non-empty strings")
                + ", a list of token ids (integers), or a list of non-empty "
                  "lists of token ids.";
  if (value.is_string()) {
    if (!text(value))
      return invalid("'" + field + "' must not be an empty string.", field);
    return {};
  }
  dom::array items;
  if (value.get(items) != simdjson::SUCCESS || items.size() == 0)
    return invalid(shapes, field);
  if (items.size() > max_items)
    return invalid("'" + field + "' may hold at most "
                     + std::to_string(max_items) + " items (got "
                     + std::to_string(items.size()) + ").",
                   field);
  auto first = items.at(0).value_unsafe();
  // Every item the shape of the first: texts, token ids or token lists.
  bool (*same)(element) = first.is_string()  ? text
                          : first.is_array() ? is_token_list
                                             : is_token;
  size_t i = 0;
  for (auto item : items) {
    if (!same(item))
      return invalid(shapes + " Item " + std::to_string(i) + " is not.", field);
    ++i;
  }
  token_input = !first.is_string();
  return {};
}

} // namespace pw::body_checks
