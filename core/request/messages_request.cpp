#include "core/request/messages_request.hpp"

#include "core/json/reader.hpp"
#include "core/request/body_checks.hpp"

namespace pw {

namespace {

namespace dom = simdjson::dom;
using dom::element;

using body_checks::invalid;

/// `where` holding a list of objects, each with a string `type`.
caf::error check_blocks(element value, const std::string& where) {
  dom::array blocks;
  if (value.get(blocks) != simdjson::SUCCESS)
    return invalid(where + ": must be a string or a list of content blocks.",
                   where);
  size_t i = 0;
  for (auto block : blocks) {
    auto at = where + "." + std::to_string(i++);
    auto type = block.is_object() ? json::member(block, "type") : std::nullopt;
    if (!type || !type->is_string())
      return invalid(at
                       + ": a content block must be an object with a string "
                         "'type'.",
                     at);
  }
  return {};
}

/// A string, or a list of content blocks.
caf::error check_content(element value, const std::string& where) {
  if (value.is_string())
    return {};
  return check_blocks(value, where);
}

caf::error check_message(element message, const std::string& where) {
  if (!message.is_object())
    return invalid(where + ": must be an object.", where);
  auto role = json::member(message, "role");
  std::string_view name;
  if (!role || role->get(name) != simdjson::SUCCESS
      || (name != "user" && name != "assistant"))
    return invalid(where + ".role: must be \"user\" or \"assistant\".",
                   where + ".role");
  auto content = json::member(message, "content");
  if (!content)
    return invalid(where + ".content: Field required.", where + ".content");
  return check_content(*content, where + ".content");
}

caf::error check_messages(element value) {
  dom::array messages;
  if (value.get(messages) != simdjson::SUCCESS || messages.size() == 0)
    return invalid("messages: must be a non-empty list of messages.",
                   "messages");
  size_t i = 0;
  for (auto m : messages)
    if (auto err = check_message(m, "messages." + std::to_string(i++)))
      return err;
  return {};
}

caf::error check_list(std::string_view key, element value,
                      bool (*item_ok)(element), std::string_view items) {
  auto name = std::string{key};
  dom::array list;
  if (value.get(list) != simdjson::SUCCESS)
    return invalid(name + ": must be a list of " + std::string{items} + ".",
                   name);
  for (auto item : list)
    if (!item_ok(item))
      return invalid(name + ": must be a list of " + std::string{items} + ".",
                     name);
  return {};
}

caf::error check_field(std::string_view key, element value,
                       messages_summary& out, bool& has_messages,
                       bool& has_max_tokens) {
  if (key == "model") {
    std::string_view model;
    if (value.get(model) == simdjson::SUCCESS)
      out.model = model;
    else if (!value.is_null())
      return invalid("model: must be a string.", "model");
  } else if (key == "messages") {
    has_messages = true;
    return check_messages(value);
  } else if (key == "max_tokens") {
    has_max_tokens = true;
    if (value.is_null())
      return invalid("max_tokens: must be an integer.", "max_tokens");
    return body_checks::check_number(key, value, 1, 1e9, true);
  } else if (key == "system") {
    return check_content(value, "system");
  } else if (key == "stream") {
    if (!value.is_bool() && !value.is_null())
      return invalid("stream: must be a boolean.", "stream");
    out.stream = value.is_bool() && value.get_bool().value_unsafe();
  } else if (key == "temperature" || key == "top_p") {
    return body_checks::check_number(key, value, 0, 1, false);
  } else if (key == "top_k") {
    return body_checks::check_number(key, value, 0, 1e9, true);
  } else if (key == "stop_sequences") {
    return check_list(
      key, value, [](element x) { return x.is_string(); }, "strings");
  } else if (key == "tools") {
    return check_list(
      key, value, [](element x) { return x.is_object(); }, "objects");
  }
  return {};
}

} // namespace

caf::expected<messages_summary> check_messages_request(std::string_view body,
                                                       bool count_tokens) {
  auto doc = json::read(body, json::client_limits);
  if (!doc)
    return body_checks::unreadable(doc.error());
  dom::object top;
  if (doc->root().get(top) != simdjson::SUCCESS)
    return invalid("The request body must be a JSON object.");
  messages_summary out;
  bool has_messages = false;
  bool has_max_tokens = false;
  for (auto [key, value] : top)
    if (auto err = check_field(key, value, out, has_messages, has_max_tokens))
      return err;
  if (!has_messages)
    return invalid("messages: Field required.", "messages");
  if (!has_max_tokens && !count_tokens)
    return invalid("max_tokens: Field required.", "max_tokens");
  return out;
}

} // namespace pw
