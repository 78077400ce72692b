#include "core/request/embeddings_request.hpp"

#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "core/request/body_checks.hpp"

namespace pw {

namespace {

namespace dom = simdjson::dom;
using dom::element;
using dom::element_type;

using body_checks::invalid;

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
      err = body_checks::check_text_or_tokens(value, {"input", false},
                                              out.token_input);
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
  if (!doc)
    return body_checks::unreadable(doc.error());
  return check_shape(doc->root());
}

} // namespace pw
