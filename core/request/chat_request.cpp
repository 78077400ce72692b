#include "core/request/chat_request.hpp"

#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "core/request/body_checks.hpp"

namespace pw {

namespace {

namespace dom = simdjson::dom;
using dom::element;
using dom::element_type;

using body_checks::invalid;

bool is_role(std::string_view role) {
  return role == "system" || role == "developer" || role == "user"
         || role == "assistant" || role == "tool";
}

/// A message's `content` given as typed parts: objects with a string type.
caf::error check_parts(dom::array parts, const std::string& where) {
  size_t i = 0;
  for (auto part : parts) {
    auto part_where = where + ".content[" + std::to_string(i++) + "]";
    if (!part.is_object())
      return invalid("'" + part_where + "' must be an object.", part_where);
    auto type = json::member(part, "type");
    if (!type || !type->is_string())
      return invalid("'" + part_where + ".type' must be a string.",
                     part_where + ".type");
  }
  return {};
}

/// One message: one of the five roles, and a string, parts, or (for an
/// assistant turn with tool calls) null as its content.
caf::error check_message(element message, const std::string& where) {
  dom::object fields;
  if (message.get(fields) != simdjson::SUCCESS)
    return invalid("'" + where + "' must be an object.", where);
  std::string_view role;
  bool has_role = false;
  bool content_null = false;
  // Members in the client's order, so the first problem is reported.
  for (auto [key, value] : fields) {
    if (key == "role" && value.get(role) == simdjson::SUCCESS) {
      has_role = true;
      if (!is_role(role))
        return invalid("'" + where
                         + ".role' must be one of 'system', 'developer', "
                           "'user', 'assistant' or 'tool'.",
                       where + ".role");
    } else if (key == "content") {
      if (value.is_null())
        content_null = true;
      else if (value.is_array()) {
        if (auto err = check_parts(value.get_array().value_unsafe(), where))
          return err;
      } else if (!value.is_string())
        return invalid("'" + where
                         + ".content' must be a string, an array of content "
                           "parts or null.",
                       where + ".content");
    }
  }
  if (!has_role)
    return invalid("'" + where + ".role' must be a string.", where + ".role");
  // Only an assistant turn (with tool calls) may have no content.
  if (content_null && role != "assistant")
    return invalid("'" + where
                     + ".content' may be null only in an assistant message.",
                   where + ".content");
  return {};
}

caf::error check_messages(element value) {
  dom::array messages;
  if (value.get(messages) != simdjson::SUCCESS)
    return invalid("'messages' must be an array.", "messages");
  size_t i = 0;
  for (auto message : messages)
    if (auto err
        = check_message(message, "messages[" + std::to_string(i++) + "]"))
      return err;
  if (i == 0)
    return invalid("'messages' must contain at least one message.", "messages");
  return {};
}

/// The shape of a body the JSON layer accepted.
caf::expected<chat_summary> check_shape(element root) {
  dom::object top;
  if (root.get(top) != simdjson::SUCCESS)
    return invalid("The request body must be a JSON object.");
  chat_summary out;
  bool has_messages = false;
  for (auto [key, value] : top) {
    if (key == "model") {
      std::string_view model;
      if (value.get(model) == simdjson::SUCCESS)
        out.model = model;
      else if (!value.is_null())
        return invalid("'model' must be a string.", "model");
    } else if (key == "messages") {
      has_messages = true;
      if (auto err = check_messages(value))
        return err;
    } else if (key == "stream") {
      if (!value.is_bool() && !value.is_null())
        return invalid("'stream' must be a boolean.", "stream");
      out.stream = value.is_bool() && value.get_bool().value_unsafe();
    } else if (key == "stream_options") {
      auto usage = json::member(value, "include_usage");
      out.include_usage
        = usage && usage->is_bool() && usage->get_bool().value_unsafe();
    } else if (auto err = body_checks::check_sampling(key, value)) {
      return err;
    }
  }
  if (!has_messages)
    return invalid("'messages' is a required property.", "messages");
  return out;
}

} // namespace

caf::expected<chat_summary> check_chat_request(std::string_view body) {
  auto doc = json::read(body, json::client_limits);
  if (!doc)
    return body_checks::unreadable(doc.error());
  return check_shape(doc->root());
}

const nlohmann::ordered_json& chat_payload::json() const {
  return *shared();
}

std::shared_ptr<const nlohmann::ordered_json> chat_payload::shared() const {
  if (!doc_) {
    // The same reader and limits as check_chat_request: a body that passed
    // it gives the same document here, so the plugins see what is sent.
    auto doc = json::parse(raw_, json::client_limits);
    doc_ = std::make_shared<const nlohmann::ordered_json>(
      doc ? std::move(*doc) : nlohmann::ordered_json::object());
  }
  return doc_;
}

nlohmann::ordered_json& chat_payload::mutable_json() {
  // Copy on write: plugins may still hold the shared document.
  auto own = std::make_shared<nlohmann::ordered_json>(json());
  raw_.clear();
  doc_ = own;
  return *own;
}

} // namespace pw
