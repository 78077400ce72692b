#include "core/chat_request.hpp"

#include "core/errc.hpp"

namespace pw {

namespace {

caf::error invalid(std::string message, std::string param = {}) {
  return make_error(errc::invalid_request, std::move(message),
                    std::move(param));
}

} // namespace

bool json_depth_ok(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
    case '"':
      in_string = true;
      break;
    case '[':
    case '{':
      if (++depth > limit)
        return false;
      break;
    case ']':
    case '}':
      if (depth > 0)
        --depth;
      break;
    default:
      break;
    }
  }
  return true;
}

caf::expected<nlohmann::ordered_json>
parse_chat_request(std::string_view body) {
  if (!json_depth_ok(body))
    return invalid("The request body nests deeper than "
                   + std::to_string(max_json_depth) + " levels.");
  auto doc = nlohmann::ordered_json::parse(body, nullptr, false);
  if (doc.is_discarded())
    return invalid("We could not parse the JSON body of your request. The "
                   "body must be valid JSON (UTF-8).");
  if (!doc.is_object())
    return invalid("The request body must be a JSON object.");
  if (auto it = doc.find("model");
      it != doc.end() && !it->is_string() && !it->is_null())
    return invalid("'model' must be a string.", "model");
  auto messages = doc.find("messages");
  if (messages == doc.end())
    return invalid("'messages' is a required property.", "messages");
  if (!messages->is_array())
    return invalid("'messages' must be an array.", "messages");
  if (messages->empty())
    return invalid("'messages' must contain at least one message.", "messages");
  for (size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    auto where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object())
      return invalid("'" + where + "' must be an object.", where);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return invalid("'" + where + ".role' must be a string.", where + ".role");
  }
  if (auto it = doc.find("stream");
      it != doc.end() && !it->is_boolean() && !it->is_null())
    return invalid("'stream' must be a boolean.", "stream");
  return doc;
}

} // namespace pw
