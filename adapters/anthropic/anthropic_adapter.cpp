#include "adapters/anthropic/anthropic_adapter.hpp"

#include "adapters/anthropic/anthropic_wire.hpp"
#include "adapters/sse.hpp"
#include "core/errc.hpp"
#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_map>

namespace pw::adapters::anthropic {

namespace {

// The documents of the JSON layer (core/json/reader.hpp); every text from
// outside is read through pw::json.
using json = nlohmann::ordered_json;

caf::error invalid(std::string message, std::string param) {
  return make_error(errc::invalid_request, std::move(message),
                    std::move(param));
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

json text_block(std::string text) {
  return json{{"type", wire::text}, {"text", std::move(text)}};
}

/// `image_url` -> an Anthropic image block: data URLs become base64
/// sources, http(s) URLs url sources.
caf::expected<json> image_block(const json& part, const std::string& where) {
  const json* url = nullptr;
  if (auto it = part.find("image_url"); it != part.end()) {
    if (it->is_string())
      url = &*it;
    else if (it->is_object())
      if (auto u = it->find("url"); u != it->end() && u->is_string())
        url = &*u;
  }
  if (url == nullptr)
    return invalid("'" + where + ".image_url.url' must be a string.",
                   where + ".image_url.url");
  const auto& text = url->get_ref<const std::string&>();
  if (text.starts_with("data:")) {
    auto semi = text.find(';');
    auto comma = text.find(',');
    if (semi == std::string::npos || comma == std::string::npos || semi > comma
        || text.substr(semi, comma - semi) != ";base64")
      return invalid("'" + where
                       + ".image_url.url' must be a base64 data URL or an "
                         "http(s) URL.",
                     where + ".image_url.url");
    return json{{"type", wire::image},
                {"source",
                 {{"type", "base64"},
                  {"media_type", text.substr(5, semi - 5)},
                  {"data", text.substr(comma + 1)}}}};
  }
  if (text.starts_with("https://") || text.starts_with("http://"))
    return json{{"type", wire::image},
                {"source", {{"type", "url"}, {"url", text}}}};
  return invalid("'" + where
                   + ".image_url.url' must be a base64 data URL or an "
                     "http(s) URL.",
                 where + ".image_url.url");
}

/// The blocks of a message's `content`: a string, null, or typed parts.
/// `images` says whether image parts are allowed here.
caf::expected<json> content_blocks(const json& message,
                                   const std::string& where, bool images) {
  json blocks = json::array();
  auto content = message.find("content");
  if (content == message.end() || content->is_null())
    return blocks;
  if (content->is_string()) {
    if (!content->get_ref<const std::string&>().empty())
      blocks.push_back(text_block(content->get<std::string>()));
    return blocks;
  }
  if (!content->is_array())
    return invalid("'" + where + ".content' must be a string or an array.",
                   where + ".content");
  for (size_t i = 0; i < content->size(); ++i) {
    const auto& part = (*content)[i];
    auto part_where = where + ".content[" + std::to_string(i) + "]";
    auto type = part.is_object() ? string_or(part, "type") : std::string{};
    if (type == "text") {
      auto t = part.find("text");
      if (t == part.end() || !t->is_string())
        return invalid("'" + part_where + ".text' must be a string.",
                       part_where + ".text");
      blocks.push_back(text_block(t->get<std::string>()));
    } else if (type == "image_url" && images) {
      auto img = image_block(part, part_where);
      if (!img)
        return img.error();
      blocks.push_back(std::move(*img));
    } else if (type == "refusal") {
      // An assistant's earlier refusal goes back as text.
      blocks.push_back(text_block(string_or(part, "refusal")));
    } else {
      return invalid("Content parts of type '" + type
                       + "' are not supported by Anthropic models here.",
                     part_where + ".type");
    }
  }
  return blocks;
}

/// Appends blocks as a turn of `role`, merged into the previous turn when
/// it has the same role (Anthropic requires alternating turns).
void append_turn(json& messages, const char* role, json blocks) {
  if (blocks.empty())
    return;
  if (!messages.empty() && messages.back()["role"] == role) {
    auto& content = messages.back()["content"];
    for (auto& b : blocks)
      content.push_back(std::move(b));
    return;
  }
  messages.push_back(json{{"role", role}, {"content", std::move(blocks)}});
}

caf::expected<json> tool_use_blocks(const json& message,
                                    const std::string& where) {
  json blocks = json::array();
  auto calls = message.find("tool_calls");
  if (calls == message.end() || calls->is_null())
    return blocks;
  if (!calls->is_array())
    return invalid("'" + where + ".tool_calls' must be an array.",
                   where + ".tool_calls");
  for (size_t i = 0; i < calls->size(); ++i) {
    const auto& call = (*calls)[i];
    auto call_where = where + ".tool_calls[" + std::to_string(i) + "]";
    const json* fn = nullptr;
    if (call.is_object())
      if (auto f = call.find("function"); f != call.end() && f->is_object())
        fn = &*f;
    if (fn == nullptr || !call.contains("id") || !call["id"].is_string())
      return invalid("'" + call_where
                       + "' must have a string 'id' and a 'function'.",
                     call_where);
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string())
      return invalid("'" + call_where + ".function.name' must be a string.",
                     call_where + ".function.name");
    json input = json::object();
    if (auto args = fn->find("arguments"); args != fn->end()) {
      if (!args->is_string())
        return invalid("'" + call_where
                         + ".function.arguments' must be a JSON string.",
                       call_where + ".function.arguments");
      const auto& text = args->get_ref<const std::string&>();
      if (!text.empty()) {
        // JSON in a string is read like the body around it.
        auto parsed = pw::json::parse(text, pw::json::client_limits);
        if (!parsed)
          return invalid("'" + call_where + ".function.arguments' "
                           + parsed.error().what(pw::json::client_limits) + ".",
                         call_where + ".function.arguments");
        if (!parsed->is_object())
          return invalid("'" + call_where
                           + ".function.arguments' must be a JSON object.",
                         call_where + ".function.arguments");
        input = std::move(*parsed);
      }
    }
    blocks.push_back(json{{"type", wire::tool_use},
                          {"id", call["id"]},
                          {"name", *name},
                          {"input", std::move(input)}});
  }
  return blocks;
}

caf::expected<json> tool_result_block(const json& message,
                                      const std::string& where) {
  auto id = message.find("tool_call_id");
  if (id == message.end() || !id->is_string())
    return invalid("'" + where + ".tool_call_id' must be a string.",
                   where + ".tool_call_id");
  json block = {{"type", wire::tool_result}, {"tool_use_id", *id}};
  auto content = message.find("content");
  if (content != message.end() && content->is_string()) {
    block["content"] = *content;
  } else {
    auto blocks = content_blocks(message, where, false);
    if (!blocks)
      return blocks.error();
    block["content"] = std::move(*blocks);
  }
  return block;
}

caf::expected<json> translate_tools(const json& tools) {
  if (!tools.is_array())
    return invalid("'tools' must be an array.", "tools");
  json out = json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& tool = tools[i];
    auto where = "tools[" + std::to_string(i) + "]";
    if (!tool.is_object() || string_or(tool, "type") != "function"
        || !tool.contains("function") || !tool["function"].is_object())
      return invalid("'" + where
                       + "' must be a function tool; Anthropic models take "
                         "no other kinds here.",
                     where);
    const auto& fn = tool["function"];
    if (!fn.contains("name") || !fn["name"].is_string())
      return invalid("'" + where + ".function.name' must be a string.",
                     where + ".function.name");
    json t = {{"name", fn["name"]}};
    if (auto d = fn.find("description"); d != fn.end() && d->is_string())
      t["description"] = *d;
    if (auto p = fn.find("parameters"); p != fn.end() && p->is_object())
      t["input_schema"] = *p;
    else
      t["input_schema"]
        = json{{"type", "object"}, {"properties", json::object()}};
    out.push_back(std::move(t));
  }
  return out;
}

caf::expected<json> translate_tool_choice(const json& choice) {
  if (choice.is_string()) {
    const auto& c = choice.get_ref<const std::string&>();
    if (c == "auto")
      return json{{"type", "auto"}};
    if (c == "none")
      return json{{"type", "none"}};
    if (c == "required")
      return json{{"type", "any"}};
  } else if (choice.is_object() && string_or(choice, "type") == "function"
             && choice.contains("function") && choice["function"].is_object()
             && choice["function"].contains("name")
             && choice["function"]["name"].is_string()) {
    return json{{"type", "tool"}, {"name", choice["function"]["name"]}};
  }
  return invalid("'tool_choice' must be \"auto\", \"none\", \"required\" or "
                 "a named function.",
                 "tool_choice");
}

/// Adds one OpenAI message, by its role, to `system` or as a turn of
/// `messages`.
caf::error append_message(const json& m, const std::string& where, json& system,
                          json& messages) {
  auto role = string_or(m, "role");
  if (role == "system" || role == "developer") {
    // Every system and developer message, in order, becomes `system`.
    auto blocks = content_blocks(m, where, false);
    if (!blocks)
      return blocks.error();
    for (auto& b : *blocks)
      system.push_back(std::move(b));
  } else if (role == "user") {
    auto blocks = content_blocks(m, where, true);
    if (!blocks)
      return blocks.error();
    append_turn(messages, "user", std::move(*blocks));
  } else if (role == "assistant") {
    auto blocks = content_blocks(m, where, false);
    if (!blocks)
      return blocks.error();
    auto tools = tool_use_blocks(m, where);
    if (!tools)
      return tools.error();
    for (auto& t : *tools)
      blocks->push_back(std::move(t));
    append_turn(messages, "assistant", std::move(*blocks));
  } else if (role == "tool") {
    auto block = tool_result_block(m, where);
    if (!block)
      return block.error();
    append_turn(messages, "user", json::array({std::move(*block)}));
  } else {
    return invalid("Role '" + role
                     + "' is not supported by Anthropic models (use "
                       "system, developer, user, assistant or tool).",
                   where + ".role");
  }
  return {};
}

/// Sets `system` (a string when there is one block) and `messages`.
caf::error translate_messages(const json& in_messages, json& out) {
  json system = json::array();
  json messages = json::array();
  for (size_t i = 0; i < in_messages.size(); ++i) {
    auto where = "messages[" + std::to_string(i) + "]";
    if (auto err = append_message(in_messages[i], where, system, messages))
      return err;
  }
  if (system.size() == 1)
    out["system"] = system[0]["text"];
  else if (!system.empty())
    out["system"] = std::move(system);
  out["messages"] = std::move(messages);
  return {};
}

/// Sets `max_tokens`, `temperature` and `top_p`.
caf::error translate_sampling(const json& request, uint64_t default_max_tokens,
                              json& out) {
  // max_tokens is required by Anthropic; the model's default fills it.
  uint64_t max_tokens = default_max_tokens;
  for (const auto* key : {"max_completion_tokens", "max_tokens"})
    if (auto it = request.find(key); it != request.end() && !it->is_null()) {
      if (!it->is_number_unsigned() || it->get<uint64_t>() == 0)
        return invalid(std::string{"'"} + key + "' must be a positive integer.",
                       key);
      max_tokens = it->get<uint64_t>();
      break;
    }
  out["max_tokens"] = max_tokens;
  for (const auto* key : {"temperature", "top_p"})
    if (auto it = request.find(key); it != request.end() && !it->is_null()) {
      if (!it->is_number())
        return invalid(std::string{"'"} + key + "' must be a number.", key);
      out[key] = *it;
    }
  return {};
}

/// `stop` (a string or a list of them) -> `stop_sequences`.
caf::error translate_stop(const json& request, json& out) {
  auto stop = request.find("stop");
  if (stop == request.end() || stop->is_null())
    return {};
  auto strings = [](const json& list) {
    return std::all_of(list.begin(), list.end(),
                       [](const json& x) { return x.is_string(); });
  };
  if (stop->is_string())
    out["stop_sequences"] = json::array({*stop});
  else if (stop->is_array() && strings(*stop))
    out["stop_sequences"] = *stop;
  else
    return invalid("'stop' must be a string or an array of strings.", "stop");
  return {};
}

/// Sets `tools` and `tool_choice`; `parallel_tool_calls: false` becomes
/// `disable_parallel_tool_use`.
caf::error translate_tool_fields(const json& request, json& out) {
  if (auto tools = request.find("tools");
      tools != request.end() && !tools->is_null()) {
    auto t = translate_tools(*tools);
    if (!t)
      return t.error();
    if (!t->empty())
      out["tools"] = std::move(*t);
  }
  json choice;
  if (auto c = request.find("tool_choice");
      c != request.end() && !c->is_null()) {
    auto t = translate_tool_choice(*c);
    if (!t)
      return t.error();
    choice = std::move(*t);
  }
  if (auto p = request.find("parallel_tool_calls");
      p != request.end() && p->is_boolean() && !p->get<bool>()) {
    if (choice.is_null())
      choice = json{{"type", "auto"}};
    if (choice["type"] != "none")
      choice["disable_parallel_tool_use"] = true;
  }
  if (!choice.is_null())
    out["tool_choice"] = std::move(choice);
  return {};
}

/// OpenAI's prompt tokens include cached ones; Anthropic counts them apart.
uint64_t prompt_tokens_of(const json& usage) {
  uint64_t total = 0;
  for (const auto* key : {"input_tokens", "cache_creation_input_tokens",
                          "cache_read_input_tokens"})
    if (auto it = usage.find(key);
        it != usage.end() && it->is_number_unsigned())
      total += it->get<uint64_t>();
  return total;
}

/// Cache reads: the part of the prompt priced at `cached_input`.
uint64_t cache_reads_of(const json& usage) {
  auto it = usage.find("cache_read_input_tokens");
  return it != usage.end() && it->is_number_unsigned() ? it->get<uint64_t>()
                                                       : 0;
}

uint64_t output_tokens_of(const json& usage) {
  auto it = usage.find("output_tokens");
  return it != usage.end() && it->is_number_unsigned() ? it->get<uint64_t>()
                                                       : 0;
}

json usage_json(uint64_t prompt, uint64_t completion) {
  return json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
}

} // namespace

std::string_view finish_reason_of(std::string_view stop_reason) {
  if (stop_reason == "max_tokens")
    return "length";
  if (stop_reason == "tool_use")
    return "tool_calls";
  if (stop_reason == "refusal")
    return "content_filter";
  // end_turn, stop_sequence, pause_turn and anything new
  return "stop";
}

caf::expected<json> to_messages_request(const json& request,
                                        const model_config& model) {
  json out = json::object();
  out["model"] = model.model;
  if (auto err = translate_messages(request.at("messages"), out))
    return err;
  if (auto err = translate_sampling(request, model.default_max_tokens, out))
    return err;
  if (auto err = translate_stop(request, out))
    return err;
  if (auto user = request.find("user");
      user != request.end() && user->is_string())
    out["metadata"] = json{{"user_id", *user}};
  if (auto n = request.find("n");
      n != request.end() && n->is_number_unsigned() && n->get<uint64_t>() > 1)
    return invalid("'n' greater than 1 is not supported by Anthropic models.",
                   "n");
  if (auto err = translate_tool_fields(request, out))
    return err;
  if (auto s = request.find("stream");
      s != request.end() && s->is_boolean() && s->get<bool>())
    out["stream"] = true;
  return out;
}

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

/// `value[key]`, unless absent or null.
std::optional<element> present(element value, std::string_view key) {
  auto m = pw::json::member(value, key);
  if (m && m->type() == element_type::NULL_VALUE)
    return std::nullopt;
  return m;
}

/// The turns of `messages` as simple_messages_request writes them: one
/// text block per message, a turn merged into the one before it when the
/// role is the same (as append_turn does).
class turn_writer {
public:
  explicit turn_writer(std::string& out) : out_(out) {
    out_ += R"("messages":[)";
  }

  void add(std::string_view role, std::string_view text) {
    if (role == open_) {
      out_ += ',';
    } else {
      if (!open_.empty())
        out_ += "]},";
      out_ += R"({"role":")";
      out_ += role;
      out_ += R"(","content":[)";
      open_ = role;
    }
    out_ += R"({"type":"text","text":)";
    append_json_string(out_, text);
    out_ += '}';
  }

  void close() {
    if (!open_.empty())
      out_ += "]}";
    out_ += ']';
  }

private:
  std::string& out_;
  std::string_view open_;
};

} // namespace

void append_scalar(std::string& out, element value) {
  if (value.type() == element_type::STRING)
    append_json_string(out, value.get_string().value_unsafe());
  else
    out += pw::json::dump(pw::json::to_document(value));
}

std::optional<simple_chat> read_simple_chat(element request,
                                            const model_config& model) {
  if (request.type() != element_type::OBJECT)
    return std::nullopt;
  // What only the document form translates (or refuses).
  for (auto key : {"stop", "tools", "tool_choice", "parallel_tool_calls", "n"})
    if (present(request, key))
      return std::nullopt;
  auto messages = present(request, "messages");
  simdjson::dom::array list;
  if (!messages || messages->get(list) != simdjson::SUCCESS)
    return std::nullopt;
  // Every message a system, developer, user or assistant one with a string
  // or no content, and no tool calls.
  simple_chat out;
  for (element m : list) {
    if (m.type() != element_type::OBJECT)
      return std::nullopt;
    auto role = pw::json::string_of(m, "role");
    if (role != "system" && role != "developer" && role != "user"
        && role != "assistant")
      return std::nullopt;
    if (role == "assistant" && present(m, "tool_calls"))
      return std::nullopt;
    auto content = present(m, "content");
    if (content && content->type() != element_type::STRING)
      return std::nullopt;
    auto text
      = content ? content->get_string().value_unsafe() : std::string_view{};
    if (text.empty())
      continue;
    if (role == "system" || role == "developer")
      out.system.push_back(text);
    else
      out.turns.push_back({role, text});
  }
  out.max_tokens = model.default_max_tokens;
  for (auto key : {"max_completion_tokens", "max_tokens"})
    if (auto v = present(request, key)) {
      uint64_t n = 0;
      if (v->get(n) != simdjson::SUCCESS || n == 0)
        return std::nullopt; // refused by the document form
      out.max_tokens = n;
      break;
    }
  for (auto [key, slot] : {std::pair{"temperature", &out.temperature},
                           std::pair{"top_p", &out.top_p}})
    if (auto v = present(request, key)) {
      if (!v->is_number())
        return std::nullopt;
      *slot = v;
    }
  if (auto user = present(request, "user");
      user && user->type() == element_type::STRING)
    out.user = user;
  if (auto stream = present(request, "stream");
      stream && stream->type() == element_type::BOOL)
    out.stream = stream->get_bool().value_unsafe();
  return out;
}

std::optional<std::string> simple_messages_request(std::string_view body,
                                                   const model_config& model) {
  auto read = pw::json::read(body, pw::json::client_limits);
  if (!read)
    return std::nullopt;
  auto chat = read_simple_chat(read->root(), model);
  if (!chat)
    return std::nullopt;
  // The keys in the order to_messages_request sets them.
  std::string out;
  out.reserve(body.size() + 128);
  out += R"({"model":)";
  append_json_string(out, model.model);
  out += ',';
  const auto& system = chat->system;
  if (system.size() == 1) {
    out += R"("system":)";
    append_json_string(out, system.front());
    out += ',';
  } else if (!system.empty()) {
    out += R"("system":[)";
    for (size_t i = 0; i < system.size(); ++i) {
      if (i > 0)
        out += ',';
      out += R"({"type":"text","text":)";
      append_json_string(out, system[i]);
      out += '}';
    }
    out += "],";
  }
  turn_writer turns{out};
  for (const auto& t : chat->turns)
    turns.add(t.role, t.text);
  turns.close();
  out += R"(,"max_tokens":)";
  append_integer(out, chat->max_tokens);
  if (chat->temperature) {
    out += R"(,"temperature":)";
    append_scalar(out, *chat->temperature);
  }
  if (chat->top_p) {
    out += R"(,"top_p":)";
    append_scalar(out, *chat->top_p);
  }
  if (chat->user) {
    out += R"(,"metadata":{"user_id":)";
    append_scalar(out, *chat->user);
    out += '}';
  }
  if (chat->stream)
    out += R"(,"stream":true)";
  out += '}';
  return out;
}

void append_tool_call(std::string& calls, std::string_view id,
                      std::string_view name, std::optional<element> input) {
  if (!calls.empty())
    calls.push_back(',');
  calls += R"({"id":)";
  append_json_string(calls, id);
  calls += R"(,"type":"function","function":{"name":)";
  append_json_string(calls, name);
  calls += R"(,"arguments":)";
  // The arguments as the document form writes them (numbers included).
  append_json_string(calls, input
                              ? pw::json::dump(pw::json::to_document(*input))
                              : std::string{"{}"});
  calls += "}}";
}

// The answer is written as text, not built as a document and dumped:
// building and dumping it took more instructions than the rest of the
// request (docs/performance.md).
chat_response write_chat_completion(const completion_parts& parts,
                                    const model_config& model,
                                    int64_t created) {
  chat_response out;
  out.prompt_tokens = parts.prompt_tokens;
  out.completion_tokens = parts.completion_tokens;
  out.cached_tokens = parts.cached_tokens;
  auto& body = out.body;
  body.reserve(320 + model.alias.size() + parts.text.size()
               + parts.tool_calls.size());
  body += R"({"id":)";
  append_json_string(body, "chatcmpl-" + std::string{parts.id});
  body += R"(,"object":"chat.completion","created":)";
  append_integer(body, created);
  body += R"(,"model":)";
  append_json_string(body, model.alias);
  body += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
  if (parts.has_text || parts.tool_calls.empty())
    append_json_string(body, parts.text);
  else
    body += "null";
  if (!parts.tool_calls.empty()) {
    body += R"(,"tool_calls":[)";
    body += parts.tool_calls;
    body += ']';
  }
  body += R"(},"logprobs":null,"finish_reason":)";
  append_json_string(body, parts.finish_reason);
  body += R"(}],"usage":{"prompt_tokens":)";
  append_integer(body, out.prompt_tokens);
  body += R"(,"completion_tokens":)";
  append_integer(body, out.completion_tokens);
  body += R"(,"total_tokens":)";
  append_integer(body, out.prompt_tokens + out.completion_tokens);
  body += "}}";
  return out;
}

caf::expected<chat_response> to_chat_completion(element message,
                                                const model_config& model,
                                                int64_t created) {
  auto malformed
    = [&](std::string_view why) { return malformed_answer(model, why); };
  if (message.type() != element_type::OBJECT)
    return malformed("not a JSON object");
  auto content = pw::json::member(message, "content");
  simdjson::dom::array blocks;
  if (!content || content->get(blocks) != simdjson::SUCCESS)
    return malformed("no 'content' list");
  completion_parts parts;
  for (element block : blocks) {
    if (block.type() != element_type::OBJECT)
      continue;
    auto type = pw::json::string_of(block, "type");
    if (type == wire::text) {
      parts.text += pw::json::string_of(block, "text");
      parts.has_text = true;
    } else if (type == wire::tool_use) {
      append_tool_call(parts.tool_calls, pw::json::string_of(block, "id"),
                       pw::json::string_of(block, "name"),
                       pw::json::member(block, "input"));
    }
    // thinking and other blocks have no OpenAI counterpart.
  }
  parts.id = pw::json::string_of(message, "id");
  parts.finish_reason
    = finish_reason_of(pw::json::string_of(message, "stop_reason"));
  if (auto u = pw::json::member(message, "usage");
      u && u->type() == element_type::OBJECT) {
    using pw::json::uint_of;
    parts.prompt_tokens = uint_of(*u, "input_tokens")
                          + uint_of(*u, "cache_creation_input_tokens")
                          + uint_of(*u, "cache_read_input_tokens");
    parts.completion_tokens = uint_of(*u, "output_tokens");
    parts.cached_tokens = uint_of(*u, "cache_read_input_tokens");
  }
  return write_chat_completion(parts, model, created);
}

namespace {

/// Anthropic events in, OpenAI chunks out.
class anthropic_stream_decoder final : public stream_decoder {
public:
  anthropic_stream_decoder(model_config_ptr model, stream_options options,
                           int64_t created)
      : stream_decoder(std::move(options)), model_(std::move(model)),
        created_(created) {
    // nop
  }

protected:
  stream_state on_bytes(std::string_view bytes, std::string& out) override {
    events_.clear();
    if (!parser_.feed(bytes, events_))
      return fail(out, "An upstream stream event exceeds 1 MiB");
    for (auto& ev : events_) {
      auto parsed = pw::json::parse(ev.data, pw::json::upstream_limits);
      if (!parsed)
        return fail(out, "The upstream sent a malformed stream event ("
                           + parsed.error().what(pw::json::upstream_limits)
                           + ")");
      const auto& data = *parsed;
      if (!data.is_object())
        return fail(out, "The upstream sent a malformed stream event (not "
                         "a JSON object)");
      auto type = string_or(data, "type", ev.event);
      if (type == wire::message_start) {
        on_message_start(data, out);
      } else if (type == wire::content_block_start) {
        if (on_block_start(data, out) != stream_state::open)
          return state_;
      } else if (type == wire::content_block_delta) {
        on_block_delta(data, out);
      } else if (type == wire::message_delta) {
        on_message_delta(data, out);
      } else if (type == wire::message_stop) {
        if (options_.include_usage)
          emit_usage(out);
        return end(out);
      } else if (type == wire::error) {
        return on_error(data, out);
      }
      // ping, content_block_stop and future event types: nothing to send.
    }
    return stream_state::open;
  }

private:
  json chunk(json delta, json finish_reason = nullptr) const {
    return json{{"id", id_},
                {"object", "chat.completion.chunk"},
                {"created", created_},
                {"model", options_.alias},
                {"choices",
                 json::array({{{"index", 0},
                               {"delta", std::move(delta)},
                               {"logprobs", nullptr},
                               {"finish_reason", std::move(finish_reason)}}})}};
  }

  void send(std::string& out, const json& value) {
    emit(out, pw::json::dump(value));
  }

  void on_message_start(const json& data, std::string& out) {
    auto message = data.find("message");
    if (message != data.end() && message->is_object()) {
      id_ = "chatcmpl-" + string_or(*message, "id", options_.request_id);
      if (auto u = message->find("usage");
          u != message->end() && u->is_object()) {
        summary_.prompt_tokens = prompt_tokens_of(*u);
        summary_.completion_tokens = output_tokens_of(*u);
        summary_.cached_tokens = cache_reads_of(*u);
      }
    }
    send(out, chunk(json{{"role", "assistant"}, {"content", ""}}));
  }

  stream_state on_block_start(const json& data, std::string& out) {
    auto block = data.find("content_block");
    if (block == data.end() || !block->is_object())
      return stream_state::open;
    auto type = string_or(*block, "type");
    if (type == wire::text) {
      auto text = string_or(*block, "text");
      if (!text.empty()) {
        saw_content();
        keep_text(text);
        send(out, chunk(json{{"content", text}}));
      }
    } else if (type == wire::tool_use) {
      saw_content();
      auto index = uint_or(data, "index");
      auto tool_index = tool_calls_.size();
      if (tool_index == max_stream_tool_calls)
        return fail(out, "The upstream sent more than "
                           + std::to_string(max_stream_tool_calls)
                           + " tool calls in one answer");
      tool_calls_.emplace(index, tool_index);
      send(out, chunk(json{{"tool_calls",
                            json::array({{{"index", tool_index},
                                          {"id", string_or(*block, "id")},
                                          {"type", "function"},
                                          {"function",
                                           {{"name", string_or(*block, "name")},
                                            {"arguments", ""}}}}})}}));
    }
    return stream_state::open;
  }

  void on_block_delta(const json& data, std::string& out) {
    auto delta = data.find("delta");
    if (delta == data.end() || !delta->is_object())
      return;
    auto type = string_or(*delta, "type");
    if (type == wire::text_delta) {
      auto text = string_or(*delta, "text");
      saw_content();
      keep_text(text);
      send(out, chunk(json{{"content", std::move(text)}}));
    } else if (type == wire::input_json_delta) {
      auto it = tool_calls_.find(uint_or(data, "index"));
      if (it == tool_calls_.end())
        return;
      saw_content();
      send(out,
           chunk(json{
             {"tool_calls",
              json::array(
                {{{"index", it->second},
                  {"function",
                   {{"arguments", string_or(*delta, "partial_json")}}}}})}}));
    }
    // thinking and signature deltas have no OpenAI counterpart.
  }

  void on_message_delta(const json& data, std::string& out) {
    if (auto u = data.find("usage"); u != data.end() && u->is_object()) {
      if (u->contains("output_tokens"))
        summary_.completion_tokens = output_tokens_of(*u);
      if (u->contains("input_tokens")) {
        summary_.prompt_tokens = prompt_tokens_of(*u);
        summary_.cached_tokens = cache_reads_of(*u);
      }
    }
    auto delta = data.find("delta");
    if (delta == data.end() || !delta->is_object())
      return;
    auto stop = delta->find("stop_reason");
    if (stop == delta->end() || !stop->is_string())
      return;
    auto reason = std::string{finish_reason_of(stop->get<std::string>())};
    summary_.finish_reason = reason;
    send(out, chunk(json::object(), reason));
  }

  void emit_usage(std::string& out) {
    json usage_chunk = {{"id", id_},
                        {"object", "chat.completion.chunk"},
                        {"created", created_},
                        {"model", options_.alias},
                        {"choices", json::array()},
                        {"usage", usage_json(summary_.prompt_tokens,
                                             summary_.completion_tokens)}};
    send(out, usage_chunk);
  }

  stream_state on_error(const json& data, std::string& out) {
    summary_.provider_error = true;
    std::string message = "The upstream reported an error";
    std::string type = "upstream_error";
    if (auto e = data.find("error"); e != data.end() && e->is_object()) {
      if (auto m = e->find("message"); m != e->end() && m->is_string())
        message = scrubbed(m->get<std::string>(), *model_);
      if (auto t = e->find("type"); t != e->end() && t->is_string())
        type = scrubbed(t->get<std::string>(), *model_, 128);
    }
    return fail(out, std::move(message), type, "upstream_stream_error");
  }

  model_config_ptr model_;
  int64_t created_;
  std::string id_ = "chatcmpl-";
  sse_parser parser_;
  std::vector<sse_event> events_;
  /// Anthropic content block index -> OpenAI tool call index.
  std::unordered_map<uint64_t, size_t> tool_calls_;
};

} // namespace

void add_version_and_key(upstream_request& out, const model_config& model) {
  out.headers.push_back(
    {std::string{wire::version_header}, std::string{wire::version}});
  if (!model.api_key.empty())
    out.headers.push_back(
      {std::string{wire::key_header}, model.api_key.reveal()});
}

std::unique_ptr<stream_decoder>
make_decoder(model_config_ptr model, stream_options options, int64_t created) {
  return std::make_unique<anthropic_stream_decoder>(
    std::move(model), std::move(options), created);
}

caf::expected<upstream_request>
anthropic_adapter::to_provider_request(const chat_payload& request,
                                       const model_config& model) const {
  // The usual request is written straight from the bytes; anything else
  // goes through the document (docs/performance.md).
  std::optional<std::string> body;
  if (!request.raw().empty())
    body = simple_messages_request(request.raw(), model);
  if (!body) {
    auto doc = to_messages_request(request.json(), model);
    if (!doc)
      return doc.error();
    body = pw::json::dump(*doc);
  }
  auto out = json_post(model, wire::messages_path, std::move(*body));
  add_version_and_key(out, model);
  return out;
}

caf::expected<chat_response>
anthropic_adapter::from_provider_response(const upstream_result& result,
                                          const model_config& model) const {
  // Read, not made into a document: the answer is written from the view.
  auto message = pw::json::read(result.body, pw::json::upstream_limits);
  if (!message)
    return malformed_answer(model,
                            message.error().what(pw::json::upstream_limits));
  return to_chat_completion(message->root(), model, now_seconds());
}

std::optional<upstream_request>
anthropic_adapter::health_request(const model_config& model) const {
  auto out
    = json_get(model, model.target.base_path + std::string{wire::models_path});
  add_version_and_key(out, model);
  return out;
}

std::unique_ptr<stream_decoder>
anthropic_adapter::make_stream_decoder(model_config_ptr model,
                                       stream_options options) const {
  return make_decoder(std::move(model), std::move(options), now_seconds());
}

} // namespace pw::adapters::anthropic
