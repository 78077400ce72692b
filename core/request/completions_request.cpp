#include "core/request/completions_request.hpp"

#include "core/json/reader.hpp"
#include "core/request/body_checks.hpp"

namespace pw {

namespace {

namespace dom = simdjson::dom;
using dom::element;

using body_checks::invalid;

caf::expected<completions_summary> check_shape(element root) {
  dom::object top;
  if (root.get(top) != simdjson::SUCCESS)
    return invalid("The request body must be a JSON object.");
  completions_summary out;
  bool has_prompt = false;
  for (auto [key, value] : top) {
    caf::error err;
    if (key == "model") {
      std::string_view model;
      if (value.get(model) == simdjson::SUCCESS)
        out.model = model;
      else if (!value.is_null())
        err = invalid("'model' must be a string.", "model");
    } else if (key == "prompt") {
      has_prompt = true;
      err = body_checks::check_text_or_tokens(value, {"prompt", true},
                                              out.token_input);
    } else if (key == "suffix") {
      if (!value.is_string() && !value.is_null())
        err = invalid("'suffix' must be a string.", "suffix");
    } else if (key == "stream") {
      if (!value.is_bool() && !value.is_null())
        err = invalid("'stream' must be a boolean.", "stream");
      out.stream = value.is_bool() && value.get_bool().value_unsafe();
    } else if (key == "stream_options") {
      auto usage = json::member(value, "include_usage");
      out.include_usage
        = usage && usage->is_bool() && usage->get_bool().value_unsafe();
    } else {
      err = body_checks::check_sampling(key, value);
    }
    if (err)
      return err;
  }
  if (!has_prompt)
    return invalid("'prompt' is a required property.", "prompt");
  return out;
}

} // namespace

caf::expected<completions_summary>
check_completions_request(std::string_view body) {
  auto doc = json::read(body, json::client_limits);
  if (!doc)
    return body_checks::unreadable(doc.error());
  return check_shape(doc->root());
}

} // namespace pw
