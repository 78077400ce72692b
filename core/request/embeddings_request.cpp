#include "core/request/embeddings_request.hpp"

#include "core/errc.hpp"
#include "core/json/reader.hpp"

namespace pw {

namespace {

namespace dom = simdjson::dom;
using dom::element;
using dom::element_type;

caf::error invalid(std::string message, std::string param) {
  return make_error(errc::invalid_request, std::move(message),
                    std::move(param));
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
  std::string_view text;
  return value.get(text) == simdjson::SUCCESS && !text.empty();
}

constexpr std::string_view input_shapes
  = "'input' must be a non-empty string, a list of non-empty strings, a list "
    "of token ids (integers), or a list of non-empty lists of token ids.";

/// `input`; sets `token_input`.
caf::error check_input(element value, embeddings_summary& out) {
  if (value.is_string()) {
    if (!is_text(value))
      return invalid("'input' must not be an empty string.", "input");
    return {};
  }
  dom::array items;
  if (value.get(items) != simdjson::SUCCESS || items.size() == 0)
    return invalid(std::string{input_shapes}, "input");
  if (items.size() > max_embedding_inputs)
    return invalid("'input' may hold at most "
                     + std::to_string(max_embedding_inputs) + " items (got "
                     + std::to_string(items.size()) + ").",
                   "input");
  auto first = items.at(0).value_unsafe();
  // Every item the shape of the first: texts, token ids or token lists.
  bool (*same)(element) = first.is_string()  ? is_text
                          : first.is_array() ? is_token_list
                                             : is_token;
  size_t i = 0;
  for (auto item : items) {
    if (!same(item))
      return invalid(std::string{input_shapes} + " Item " + std::to_string(i)
                       + " is not.",
                     "input");
    ++i;
  }
  out.token_input = !first.is_string();
  return {};
}

caf::error check_format(element value, embeddings_summary& out) {
  if (value.is_null())
    return {};
  std::string_view format;
  if (value.get(format) != simdjson::SUCCESS
      || (format != "float" && format != "base64"))
    return invalid("'encoding_format' must be \"float\" or \"base64\".",
                   "encoding_format");
  out.base64 = format == "base64";
  return {};
}

caf::error check_dimensions(element value, embeddings_summary& out) {
  if (value.is_null())
    return {};
  int64_t n = 0;
  if (value.type() == element_type::INT64)
    n = value.get_int64().value_unsafe();
  else if (value.type() == element_type::UINT64)
    n = INT64_MAX;
  else
    return invalid("'dimensions' must be an integer.", "dimensions");
  if (n < 1 || n > int64_t{max_embedding_dimensions})
    return invalid("'dimensions' must be from 1 to "
                     + std::to_string(max_embedding_dimensions) + ".",
                   "dimensions");
  out.dimensions = static_cast<uint32_t>(n);
  return {};
}

caf::expected<embeddings_summary> check_shape(element root) {
  dom::object top;
  if (root.get(top) != simdjson::SUCCESS)
    return invalid("The request body must be a JSON object.", "");
  embeddings_summary out;
  bool has_input = false;
  for (auto [key, value] : top) {
    caf::error err;
    if (key == "model") {
      std::string_view model;
      if (value.get(model) == simdjson::SUCCESS)
        out.model = model;
      else if (!value.is_null())
        err = invalid("'model' must be a string.", "model");
    } else if (key == "input") {
      has_input = true;
      err = check_input(value, out);
    } else if (key == "encoding_format") {
      err = check_format(value, out);
    } else if (key == "dimensions") {
      err = check_dimensions(value, out);
    }
    if (err)
      return err;
  }
  if (!has_input)
    return invalid("'input' is a required property.", "input");
  return out;
}

} // namespace

caf::expected<embeddings_summary>
check_embeddings_request(std::string_view body) {
  auto doc = json::read(body, json::client_limits);
  if (!doc) {
    const auto& p = doc.error();
    if (p.kind == json::fault::syntax || p.kind == json::fault::utf8)
      return invalid("We could not parse the JSON body of your request. The "
                     "body must be valid JSON (UTF-8).",
                     "");
    return json::client_error(p, json::client_limits, "The request body");
  }
  return check_shape(doc->root());
}

} // namespace pw
