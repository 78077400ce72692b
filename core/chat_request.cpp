#include "core/chat_request.hpp"

#include "core/errc.hpp"

namespace pw {

namespace {

using json = nlohmann::ordered_json;

/// A SAX handler that checks the request shape as the parser streams it.
/// It records the first shape problem and lets the parse go on, so that a
/// body that is also invalid JSON reports the JSON error.
class shape_checker : public nlohmann::json_sax<json> {
public:
  chat_summary summary;
  caf::error problem;
  bool too_deep = false;

  /// Called after the parse: the verdict on the whole document.
  [[nodiscard]] caf::error finish() {
    if (problem)
      return std::move(problem);
    if (!saw_messages_)
      return invalid("'messages' is a required property.", "messages");
    return {};
  }

  // -- nlohmann::json_sax ----------------------------------------------------

  bool null() override {
    value_at_key(kind::null_value);
    return true;
  }

  bool boolean(bool val) override {
    if (value_at_key(kind::boolean) == slot::stream)
      summary.stream = val;
    else if (frames_.size() == 2 && in_stream_options_
             && nested_key_ == "include_usage")
      summary.include_usage = val;
    return true;
  }

  bool number_integer(number_integer_t val) override {
    if (value_at_key(kind::number) == slot::number)
      check_number(static_cast<double>(val), true);
    return true;
  }

  bool number_unsigned(number_unsigned_t val) override {
    if (value_at_key(kind::number) == slot::number)
      check_number(static_cast<double>(val), true);
    return true;
  }

  bool number_float(number_float_t val, const string_t&) override {
    if (value_at_key(kind::number) == slot::number)
      check_number(val, false);
    return true;
  }

  bool string(string_t& val) override {
    bool is_role = frames_.size() == 3 && in_message_ && message_key_is_role_;
    auto s = value_at_key(kind::string);
    if (s == slot::model)
      summary.model = val;
    else if (s == slot::part_type)
      part_has_type_ = true;
    if (is_role) {
      role_ = val;
      if (val != "system" && val != "developer" && val != "user"
          && val != "assistant" && val != "tool")
        fail("'" + message_path()
               + ".role' must be one of 'system', 'developer', 'user', "
                 "'assistant' or 'tool'.",
             message_path() + ".role");
    }
    return true;
  }

  bool binary(binary_t&) override {
    value_at_key(kind::other);
    return true;
  }

  bool start_object(std::size_t) override {
    auto s = value_at_key(kind::object);
    if (frames_.size() == 1 && current_key_ == "stream_options")
      in_stream_options_ = true;
    if (s == slot::message) {
      saw_role_ = false;
      in_message_ = true;
      role_.clear();
      content_null_ = false;
    } else if (s == slot::part) {
      in_part_ = true;
      part_has_type_ = false;
    }
    return push(false);
  }

  bool key(string_t& val) override {
    auto depth = frames_.size();
    if (depth == 1)
      current_key_ = val;
    else if (depth == 2 && in_stream_options_)
      nested_key_ = val;
    else if (depth == 3 && in_message_) {
      message_key_is_role_ = val == "role";
      message_key_is_content_ = val == "content";
    } else if (depth == 5 && in_part_) {
      part_key_is_type_ = val == "type";
    }
    return true;
  }

  bool end_object() override {
    frames_.pop_back();
    if (frames_.size() == 1)
      in_stream_options_ = false;
    if (frames_.size() == 4 && in_part_) {
      in_part_ = false;
      if (!part_has_type_)
        fail("'" + part_path() + ".type' must be a string.",
             part_path() + ".type");
    }
    if (frames_.size() == 2 && in_message_) {
      in_message_ = false;
      if (!saw_role_)
        fail("'" + message_path() + ".role' must be a string.",
             message_path() + ".role");
      else if (content_null_ && role_ != "assistant")
        // Only an assistant turn (with tool calls) may have no content.
        fail("'" + message_path()
               + ".content' may be null only in an "
                 "assistant message.",
             message_path() + ".content");
    }
    return true;
  }

  bool start_array(std::size_t) override {
    auto s = value_at_key(kind::array);
    if (s == slot::messages)
      message_count_ = 0;
    if (s == slot::content) {
      in_content_ = true;
      part_count_ = 0;
    }
    return push(true);
  }

  bool end_array() override {
    frames_.pop_back();
    if (frames_.size() == 3 && in_content_)
      in_content_ = false;
    if (frames_.size() == 1 && in_messages_) {
      in_messages_ = false;
      if (message_count_ == 0)
        fail("'messages' must contain at least one message.", "messages");
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

private:
  enum class kind { null_value, boolean, string, number, object, array, other };
  enum class slot {
    none,
    model,
    messages,
    message,
    stream,
    number,
    content,
    part,
    part_type
  };

  /// The sampling fields clients send most, and their ranges (OpenAI's).
  struct number_rule {
    std::string_view key;
    double min;
    double max;
    bool integer;
  };

  static constexpr number_rule number_rules[] = {
    {"temperature", 0, 2, false},
    {"top_p", 0, 1, false},
    {"max_tokens", 1, 1e9, true},
    {"max_completion_tokens", 1, 1e9, true},
    {"n", 1, 128, true},
    {"presence_penalty", -2, 2, false},
    {"frequency_penalty", -2, 2, false},
  };

  static const number_rule* rule_for(std::string_view key) {
    for (const auto& r : number_rules)
      if (r.key == key)
        return &r;
    return nullptr;
  }

  /// Checks a number at the top level against its rule.
  void check_number(double val, bool is_integer) {
    const auto* rule = rule_for(current_key_);
    if (rule == nullptr)
      return;
    auto key = std::string{rule->key};
    if (rule->integer && !is_integer) {
      fail("'" + key + "' must be an integer.", key);
      return;
    }
    if (!(val >= rule->min && val <= rule->max)) {
      auto text = [](double x) {
        auto out = std::to_string(x);
        out.erase(out.find_last_not_of('0') + 1);
        if (!out.empty() && out.back() == '.')
          out.pop_back();
        return out;
      };
      fail("'" + key + "' must be between " + text(rule->min) + " and "
             + text(rule->max) + ".",
           key);
    }
  }

  static caf::error invalid(std::string message, std::string param = {}) {
    return make_error(errc::invalid_request, std::move(message),
                      std::move(param));
  }

  void fail(std::string message, std::string param) {
    if (!problem)
      problem = invalid(std::move(message), std::move(param));
  }

  bool push(bool is_array) {
    if (frames_.size() >= max_json_depth) {
      too_deep = true;
      return false; // stops the parser
    }
    frames_.push_back(is_array);
    return true;
  }

  std::string message_path() const {
    return "messages[" + std::to_string(message_count_ - 1) + "]";
  }

  std::string part_path() const {
    return message_path() + ".content[" + std::to_string(part_count_ - 1) + "]";
  }

  /// Classifies a value by where it sits and checks its kind.
  slot value_at_key(kind k) {
    auto depth = frames_.size();
    if (depth == 0) {
      if (k != kind::object)
        fail("The request body must be a JSON object.", "");
      return slot::none;
    }
    if (depth == 1) {
      if (current_key_ == "model") {
        if (k != kind::string && k != kind::null_value)
          fail("'model' must be a string.", "model");
        if (k == kind::null_value)
          summary.model.clear();
        return slot::model;
      }
      if (current_key_ == "messages") {
        saw_messages_ = true;
        if (k != kind::array)
          fail("'messages' must be an array.", "messages");
        else
          in_messages_ = true;
        return slot::messages;
      }
      if (current_key_ == "stream") {
        if (k != kind::boolean && k != kind::null_value)
          fail("'stream' must be a boolean.", "stream");
        if (k == kind::null_value)
          summary.stream = false;
        return slot::stream;
      }
      if (rule_for(current_key_) != nullptr) {
        if (k != kind::number && k != kind::null_value)
          fail("'" + current_key_ + "' must be a number.", current_key_);
        return k == kind::number ? slot::number : slot::none;
      }
      return slot::none;
    }
    if (depth == 2 && in_messages_) {
      ++message_count_;
      if (k != kind::object) {
        fail("'" + message_path() + "' must be an object.", message_path());
        return slot::none;
      }
      return slot::message;
    }
    if (depth == 3 && in_message_ && message_key_is_role_) {
      message_key_is_role_ = false;
      if (k == kind::string)
        saw_role_ = true;
    }
    if (depth == 3 && in_message_ && message_key_is_content_) {
      message_key_is_content_ = false;
      if (k == kind::null_value)
        content_null_ = true;
      else if (k == kind::array)
        return slot::content;
      else if (k != kind::string)
        fail("'" + message_path()
               + ".content' must be a string, an array of content parts "
                 "or null.",
             message_path() + ".content");
      return slot::none;
    }
    if (depth == 4 && in_content_) {
      ++part_count_;
      if (k != kind::object) {
        fail("'" + part_path() + "' must be an object.", part_path());
        return slot::none;
      }
      return slot::part;
    }
    if (depth == 5 && in_part_ && part_key_is_type_) {
      part_key_is_type_ = false;
      return k == kind::string ? slot::part_type : slot::none;
    }
    return slot::none;
  }

  /// true = array, false = object; the top level is frames_[0].
  std::vector<bool> frames_;
  std::string current_key_;
  bool saw_messages_ = false;
  bool in_messages_ = false;
  bool in_message_ = false;
  bool message_key_is_role_ = false;
  bool message_key_is_content_ = false;
  bool saw_role_ = false;
  std::string role_;
  bool content_null_ = false;
  bool in_content_ = false;
  size_t part_count_ = 0;
  bool in_part_ = false;
  bool part_key_is_type_ = false;
  bool part_has_type_ = false;
  bool in_stream_options_ = false;
  std::string nested_key_;
  size_t message_count_ = 0;
};

} // namespace

caf::expected<chat_summary> check_chat_request(std::string_view body) {
  shape_checker checker;
  bool ok = json::sax_parse(body, &checker);
  if (checker.too_deep)
    return make_error(errc::invalid_request,
                      "The request body nests deeper than "
                        + std::to_string(max_json_depth) + " levels.",
                      std::string{});
  if (!ok)
    return make_error(errc::invalid_request,
                      "We could not parse the JSON body of your request. The "
                      "body must be valid JSON (UTF-8).",
                      std::string{});
  if (auto err = checker.finish())
    return err;
  return std::move(checker.summary);
}

const nlohmann::ordered_json& chat_payload::json() const {
  return *shared();
}

std::shared_ptr<const nlohmann::ordered_json> chat_payload::shared() const {
  if (!doc_)
    doc_ = std::make_shared<const nlohmann::ordered_json>(
      nlohmann::ordered_json::parse(raw_, nullptr, false));
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
