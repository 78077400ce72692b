#include "adapters/openai/messages_chat.hpp"

#include "adapters/anthropic/anthropic_wire.hpp"
#include "adapters/anthropic/messages_adapter.hpp"
#include "adapters/openai/openai_adapter.hpp"
#include "adapters/openai/openai_wire.hpp"
#include "adapters/sse.hpp"
#include "core/errc.hpp"
#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"
#include "core/request/request_id.hpp"

#include <unordered_map>

namespace pw::adapters::openai {

namespace {

namespace dom = simdjson::dom;
namespace aw = anthropic::wire;
using dom::element;
using dom::element_type;
using doc = nlohmann::ordered_json;

caf::error invalid(std::string message, std::string param) {
  return make_error(errc::invalid_request, std::move(message),
                    std::move(param));
}

caf::error unsupported(const std::string& where, const std::string& what) {
  return invalid(where + ": " + what
                   + " cannot be sent to an OpenAI-compatible model.",
                 where);
}

// -- request: Messages -> chat completions ------------------------------------

/// The texts of a list of text blocks, joined by line breaks; an error
/// for any other block.
caf::expected<std::string> joined_text(const doc& blocks,
                                       const std::string& where) {
  if (blocks.is_string())
    return blocks.get<std::string>();
  std::string out;
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto at = where + "." + std::to_string(i);
    const auto& block = blocks[i];
    auto type = string_or(block, "type");
    if (type != aw::text)
      return unsupported(at, "a '" + type + "' block here");
    auto text = block.find("text");
    if (text == block.end() || !text->is_string())
      return invalid(at + ".text: must be a string.", at + ".text");
    if (i > 0)
      out += '\n';
    out += text->get_ref<const std::string&>();
  }
  return out;
}

/// An image block as an `image_url` part: base64 sources become data
/// URLs, url sources stay URLs.
caf::expected<doc> image_part(const doc& block, const std::string& where) {
  auto source = block.find("source");
  if (source == block.end() || !source->is_object())
    return invalid(where + ".source: must be an object.", where + ".source");
  auto type = string_or(*source, "type");
  std::string url;
  if (type == "base64") {
    auto media = string_or(*source, "media_type");
    auto data = source->find("data");
    if (media.empty() || data == source->end() || !data->is_string())
      return invalid(where
                       + ".source: a base64 source needs a string "
                         "'media_type' and 'data'.",
                     where + ".source");
    url = "data:" + media + ";base64," + data->get<std::string>();
  } else if (type == "url") {
    url = string_or(*source, "url");
    if (url.empty())
      return invalid(where + ".source.url: must be a string.",
                     where + ".source.url");
  } else {
    return unsupported(where + ".source",
                       "an image source of type '" + type + "'");
  }
  return doc{{"type", "image_url"}, {"image_url", {{"url", std::move(url)}}}};
}

/// A tool_result block as a `tool` message.
caf::expected<doc> tool_message(const doc& block, const std::string& where) {
  auto id = block.find("tool_use_id");
  if (id == block.end() || !id->is_string())
    return invalid(where + ".tool_use_id: must be a string.",
                   where + ".tool_use_id");
  std::string content;
  if (auto c = block.find("content"); c != block.end() && !c->is_null()) {
    if (!c->is_string() && !c->is_array())
      return invalid(where
                       + ".content: must be a string or a list of text "
                         "blocks.",
                     where + ".content");
    auto text = joined_text(*c, where + ".content");
    if (!text)
      return text.error();
    content = std::move(*text);
  }
  return doc{
    {"role", "tool"}, {"tool_call_id", *id}, {"content", std::move(content)}};
}

/// A user turn: its tool results first, as `tool` messages (they answer
/// the assistant turn before), then its text and images as one user
/// message.
caf::error add_user_turn(const doc& content, const std::string& where,
                         doc& out) {
  if (content.is_string()) {
    out.push_back(doc{{"role", "user"}, {"content", content}});
    return {};
  }
  doc parts = doc::array();
  for (size_t i = 0; i < content.size(); ++i) {
    auto at = where + "." + std::to_string(i);
    const auto& block = content[i];
    auto type = string_or(block, "type");
    if (type == aw::text) {
      auto text = block.find("text");
      if (text == block.end() || !text->is_string())
        return invalid(at + ".text: must be a string.", at + ".text");
      parts.push_back(doc{{"type", "text"}, {"text", *text}});
    } else if (type == aw::image) {
      auto part = image_part(block, at);
      if (!part)
        return part.error();
      parts.push_back(std::move(*part));
    } else if (type == aw::tool_result) {
      auto message = tool_message(block, at);
      if (!message)
        return message.error();
      out.push_back(std::move(*message));
    } else {
      return unsupported(at, "a '" + type + "' block");
    }
  }
  if (!parts.empty())
    out.push_back(doc{{"role", "user"}, {"content", std::move(parts)}});
  return {};
}

/// An assistant turn: its text blocks as `content`, its tool_use blocks as
/// `tool_calls`; thinking blocks (the model's own notes) are dropped.
caf::error add_assistant_turn(const doc& content, const std::string& where,
                              doc& out) {
  if (content.is_string()) {
    out.push_back(doc{{"role", "assistant"}, {"content", content}});
    return {};
  }
  std::string text;
  bool has_text = false;
  doc calls = doc::array();
  for (size_t i = 0; i < content.size(); ++i) {
    auto at = where + "." + std::to_string(i);
    const auto& block = content[i];
    auto type = string_or(block, "type");
    if (type == aw::text) {
      auto t = block.find("text");
      if (t == block.end() || !t->is_string())
        return invalid(at + ".text: must be a string.", at + ".text");
      if (has_text)
        text += '\n';
      text += t->get_ref<const std::string&>();
      has_text = true;
    } else if (type == aw::tool_use) {
      auto id = block.find("id");
      auto name = block.find("name");
      if (id == block.end() || !id->is_string() || name == block.end()
          || !name->is_string())
        return invalid(at
                         + ": a tool_use block needs a string 'id' and "
                           "'name'.",
                       at);
      auto input = block.find("input");
      std::string arguments = "{}";
      if (input != block.end() && !input->is_null()) {
        if (!input->is_object())
          return invalid(at + ".input: must be an object.", at + ".input");
        arguments = pw::json::dump(*input);
      }
      calls.push_back(
        doc{{"id", *id},
            {"type", "function"},
            {"function", {{"name", *name}, {"arguments", arguments}}}});
    } else if (type != "thinking" && type != "redacted_thinking") {
      return unsupported(at, "a '" + type + "' block");
    }
  }
  doc message = {{"role", "assistant"}};
  if (has_text || calls.empty())
    message["content"] = std::move(text);
  else
    message["content"] = nullptr;
  if (!calls.empty())
    message["tool_calls"] = std::move(calls);
  out.push_back(std::move(message));
  return {};
}

caf::error add_messages(const doc& request, doc& out) {
  if (auto system = request.find("system");
      system != request.end() && !system->is_null()) {
    auto text = joined_text(*system, "system");
    if (!text)
      return text.error();
    if (!text->empty())
      out.push_back(doc{{"role", "system"}, {"content", std::move(*text)}});
  }
  const auto& messages = request.at("messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    auto where = "messages." + std::to_string(i) + ".content";
    const auto& m = messages[i];
    const auto& content = m.at("content");
    auto err = string_or(m, "role") == "assistant"
                 ? add_assistant_turn(content, where, out)
                 : add_user_turn(content, where, out);
    if (err)
      return err;
  }
  return {};
}

caf::expected<doc> translate_tools(const doc& tools) {
  doc out = doc::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    auto where = "tools." + std::to_string(i);
    const auto& tool = tools[i];
    auto type = string_or(tool, "type", "custom");
    if (type != "custom")
      return unsupported(where, "Anthropic's server tool '" + type + "'");
    auto name = tool.find("name");
    if (name == tool.end() || !name->is_string())
      return invalid(where + ".name: must be a string.", where + ".name");
    doc fn = {{"name", *name}};
    if (auto d = tool.find("description"); d != tool.end() && d->is_string())
      fn["description"] = *d;
    if (auto s = tool.find("input_schema"); s != tool.end() && s->is_object())
      fn["parameters"] = *s;
    else
      return invalid(where + ".input_schema: must be an object.",
                     where + ".input_schema");
    out.push_back(doc{{"type", "function"}, {"function", std::move(fn)}});
  }
  return out;
}

/// `tool_choice` and `disable_parallel_tool_use`, into `out`.
caf::error translate_tool_choice(const doc& choice, bool has_tools, doc& out) {
  if (!choice.is_object())
    return invalid("tool_choice: must be an object.", "tool_choice");
  auto type = string_or(choice, "type");
  if (type == "auto") {
    out["tool_choice"] = "auto";
  } else if (type == "any") {
    out["tool_choice"] = "required";
  } else if (type == "none") {
    out["tool_choice"] = "none";
  } else if (type == "tool") {
    auto name = choice.find("name");
    if (name == choice.end() || !name->is_string())
      return invalid("tool_choice.name: must be a string.", "tool_choice.name");
    out["tool_choice"]
      = doc{{"type", "function"}, {"function", {{"name", *name}}}};
  } else {
    return invalid("tool_choice.type: must be \"auto\", \"any\", \"tool\" or "
                   "\"none\".",
                   "tool_choice.type");
  }
  if (auto p = choice.find("disable_parallel_tool_use");
      has_tools && p != choice.end() && p->is_boolean())
    out["parallel_tool_calls"] = !p->get<bool>();
  return {};
}

} // namespace

caf::expected<doc> to_chat_request(const doc& request, const dialect& dialect,
                                   const model_config& model) {
  if (auto mcp = request.find("mcp_servers");
      mcp != request.end() && !mcp->is_null())
    return unsupported("mcp_servers", "MCP servers");
  doc out = doc::object();
  out["model"] = model.model;
  doc messages = doc::array();
  if (auto err = add_messages(request, messages))
    return err;
  out["messages"] = std::move(messages);
  if (auto n = request.find("max_tokens"); n != request.end())
    // OpenAI's newer models take only max_completion_tokens; vLLM and
    // Ollama read max_tokens.
    out[dialect.max_completion_tokens() ? "max_completion_tokens"
                                        : "max_tokens"]
      = *n;
  for (const auto* key : {"temperature", "top_p"})
    if (auto it = request.find(key); it != request.end() && !it->is_null())
      out[key] = *it;
  if (auto k = request.find("top_k");
      k != request.end() && !k->is_null() && dialect.top_k())
    out["top_k"] = *k;
  if (auto stop = request.find("stop_sequences");
      stop != request.end() && stop->is_array() && !stop->empty())
    out["stop"] = *stop;
  bool has_tools = false;
  if (auto tools = request.find("tools");
      tools != request.end() && tools->is_array() && !tools->empty()) {
    auto t = translate_tools(*tools);
    if (!t)
      return t.error();
    out["tools"] = std::move(*t);
    has_tools = true;
  }
  if (auto choice = request.find("tool_choice");
      choice != request.end() && !choice->is_null())
    if (auto err = translate_tool_choice(*choice, has_tools, out))
      return err;
  if (auto meta = request.find("metadata");
      meta != request.end() && meta->is_object())
    if (auto user = meta->find("user_id");
        user != meta->end() && user->is_string())
      out["user"] = *user;
  if (auto s = request.find("stream");
      s != request.end() && s->is_boolean() && s->get<bool>()) {
    out["stream"] = true;
    // The usage ends the stream's message_delta.
    out["stream_options"] = doc{{"include_usage", true}};
  }
  return out;
}

// -- answers: chat.completion -> message --------------------------------------

std::string_view stop_reason_of(std::string_view finish_reason) {
  if (finish_reason == "length")
    return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call")
    return "tool_use";
  if (finish_reason == "content_filter")
    return "refusal";
  // stop, null and anything new
  return "end_turn";
}

namespace {

/// The token counts of an OpenAI `usage`: prompt (cached included),
/// cached, completion.
struct token_counts {
  uint64_t prompt = 0;
  uint64_t cached = 0;
  uint64_t completion = 0;
};

token_counts counts_of(element usage) {
  token_counts out;
  out.prompt = pw::json::uint_of(usage, wire::prompt_tokens);
  out.completion = pw::json::uint_of(usage, wire::completion_tokens);
  if (auto details = pw::json::member(usage, "prompt_tokens_details"))
    out.cached
      = std::min(out.prompt, pw::json::uint_of(*details, "cached_tokens"));
  return out;
}

/// Anthropic's usage: input tokens without the cached ones, which are
/// cache reads.
void append_usage(std::string& out, const token_counts& n) {
  out += R"({"input_tokens":)";
  append_integer(out, n.prompt - n.cached);
  if (n.cached > 0) {
    out += R"(,"cache_read_input_tokens":)";
    append_integer(out, n.cached);
  }
  out += R"(,"output_tokens":)";
  append_integer(out, n.completion);
  out += '}';
}

/// A message's text: `content` as a string or a list of text parts.
std::string text_of(element message) {
  auto content = pw::json::member(message, "content");
  if (!content)
    return {};
  if (content->is_string())
    return std::string{content->get_string().value_unsafe()};
  std::string out;
  dom::array parts;
  if (content->get(parts) == simdjson::SUCCESS)
    for (auto part : parts)
      if (pw::json::string_of(part, "type") == "text")
        out += pw::json::string_of(part, "text");
  return out;
}

/// The stop sequence that ended the answer, when the server says which
/// (vLLM's `stop_reason` is the matched string).
std::string_view stop_sequence_of(element choice) {
  return pw::json::string_of(choice, "stop_reason");
}

/// The id of a tool call the upstream gave none: "toolu_<id>_<n>".
std::string tool_id(std::string_view id, uint64_t n) {
  std::string out = "toolu_";
  out += id;
  out += '_';
  append_integer(out, n);
  return out;
}

/// "msg_" + the upstream's id, or `fallback`.
std::string message_id(std::string_view upstream_id,
                       std::string_view fallback) {
  return "msg_" + std::string{upstream_id.empty() ? fallback : upstream_id};
}

} // namespace

caf::expected<chat_response>
to_anthropic_message(element completion, const model_config& model,
                     std::string_view fallback_id) {
  if (!completion.is_object())
    return malformed_answer(model, "not a JSON object");
  dom::array choices;
  element choice;
  if (auto c = pw::json::member(completion, wire::choices);
      !c || c->get(choices) != simdjson::SUCCESS)
    return malformed_answer(model, "no 'choices' list");
  if (choices.at(0).get(choice) != simdjson::SUCCESS || !choice.is_object())
    return malformed_answer(model, "no choice");
  auto message = pw::json::member(choice, wire::message);
  if (!message || !message->is_object())
    return malformed_answer(model, "a choice without a 'message' object");

  std::string content = "[";
  auto add_block = [&content] {
    if (content.size() > 1)
      content += ',';
  };
  auto text = text_of(*message);
  auto refusal = pw::json::string_of(*message, "refusal");
  if (!text.empty()) {
    add_block();
    content += R"({"type":"text","text":)";
    append_json_string(content, text);
    content += '}';
  }
  if (!refusal.empty()) {
    add_block();
    content += R"({"type":"text","text":)";
    append_json_string(content, refusal);
    content += '}';
  }
  bool has_tool_calls = false;
  uint64_t calls_seen = 0;
  if (auto listed = pw::json::member(*message, wire::tool_calls);
      listed && !listed->is_null()) {
    dom::array calls;
    if (listed->get(calls) != simdjson::SUCCESS)
      return malformed_answer(model, "'tool_calls' that is not a list");
    for (auto call : calls) {
      auto fn = pw::json::member(call, "function");
      if (!fn || !fn->is_object())
        return malformed_answer(model,
                                "a tool call without a 'function' object");
      auto arguments = pw::json::string_of(*fn, "arguments");
      std::string input = "{}";
      if (!arguments.empty()) {
        auto parsed = pw::json::read(arguments, pw::json::upstream_limits);
        if (!parsed || !parsed->root().is_object())
          return malformed_answer(model,
                                  "tool call arguments that are not a JSON "
                                  "object");
        input = arguments;
      }
      add_block();
      content += R"({"type":"tool_use","id":)";
      // A call without an id gets one, so its result can name it.
      auto id = pw::json::string_of(call, "id");
      append_json_string(content, id.empty() ? tool_id(fallback_id, calls_seen)
                                             : std::string{id});
      has_tool_calls = true;
      ++calls_seen;
      content += R"(,"name":)";
      append_json_string(content, pw::json::string_of(*fn, "name"));
      content += R"(,"input":)";
      // Checked JSON: its bytes go as they came.
      content += input;
      content += '}';
    }
  }
  content += ']';

  auto finish = pw::json::string_of(choice, "finish_reason");
  auto stop_sequence = stop_sequence_of(choice);
  std::string_view stop_reason = stop_reason_of(finish);
  if (!refusal.empty())
    stop_reason = "refusal";
  else if (has_tool_calls && stop_reason == "end_turn")
    // Some servers (Ollama) end a turn that calls tools with "stop"; an
    // Anthropic client runs the tools only on "tool_use".
    stop_reason = "tool_use";
  else if (finish == "stop" && !stop_sequence.empty())
    stop_reason = "stop_sequence";
  token_counts n;
  if (auto usage = pw::json::member(completion, wire::usage))
    n = counts_of(*usage);

  chat_response out;
  out.prompt_tokens = n.prompt;
  out.completion_tokens = n.completion;
  out.cached_tokens = n.cached;
  auto& body = out.body;
  body.reserve(content.size() + 256);
  body += R"({"id":)";
  append_json_string(
    body, message_id(pw::json::string_of(completion, "id"), fallback_id));
  body += R"(,"type":"message","role":"assistant","model":)";
  append_json_string(body, model.alias);
  body += R"(,"content":)";
  body += content;
  body += R"(,"stop_reason":)";
  append_json_string(body, stop_reason);
  body += R"(,"stop_sequence":)";
  if (stop_reason == "stop_sequence")
    append_json_string(body, stop_sequence);
  else
    body += "null";
  body += R"(,"usage":)";
  append_usage(body, n);
  body += '}';
  return out;
}

// -- streams: chat.completion.chunk -> Anthropic events -----------------------

namespace {

/// Appends "event: <name>\ndata: " and returns; the caller writes the
/// JSON (no raw line breaks: it is written by hand or was checked) and
/// ends it with end_event.
void begin_event(std::string& out, std::string_view name) {
  out += "event: ";
  out += name;
  out += "\ndata: ";
}

void end_event(std::string& out) {
  out += "\n\n";
}

class messages_decoder final : public stream_decoder {
public:
  messages_decoder(model_config_ptr model, stream_options options)
      : stream_decoder(std::move(options)), model_(std::move(model)) {
    // nop
  }

protected:
  stream_state on_bytes(std::string_view bytes, std::string& out) override {
    events_.clear();
    if (!parser_.feed(bytes, events_))
      return fail(out, "An upstream stream event exceeds 1 MiB");
    for (auto& ev : events_) {
      if (ev.data == "[DONE]")
        return on_done(out);
      auto parsed = pw::json::read(ev.data, pw::json::upstream_limits);
      if (!parsed)
        return fail(out, "The upstream sent a malformed stream event ("
                           + parsed.error().what(pw::json::upstream_limits)
                           + ")");
      auto chunk = parsed->root();
      if (!chunk.is_object())
        return fail(out, "The upstream sent a malformed stream event (not "
                         "a JSON object)");
      if (auto error = pw::json::member(chunk, "error"))
        return on_error(*error, out);
      if (!started_)
        start(pw::json::string_of(chunk, "id"), out);
      if (auto choices = pw::json::member(chunk, wire::choices);
          choices && choices->is_array()) {
        element choice;
        if (choices->get_array().value_unsafe().at(0).get(choice)
              == simdjson::SUCCESS
            && choice.is_object())
          if (auto st = on_choice(choice, out); st != stream_state::open)
            return st;
      }
      if (auto usage = pw::json::member(chunk, wire::usage);
          usage && usage->is_object())
        counts_ = counts_of(*usage);
    }
    return stream_state::open;
  }

  [[nodiscard]] std::string error_event(std::string_view message,
                                        std::string_view type,
                                        std::string_view) const override {
    return anthropic::messages_error_event(message, type);
  }

private:
  enum class block_kind { none, text, tool };

  void start(std::string_view upstream_id, std::string& out) {
    started_ = true;
    begin_event(out, aw::message_start);
    out += R"({"type":"message_start","message":{"id":)";
    append_json_string(out, message_id(upstream_id, options_.request_id));
    out += R"(,"type":"message","role":"assistant","model":)";
    append_json_string(out, options_.alias);
    out += R"(,"content":[],"stop_reason":null,"stop_sequence":null,)"
           R"("usage":{"input_tokens":0,"output_tokens":0}}})";
    end_event(out);
  }

  void close_block(std::string& out) {
    if (open_ == block_kind::none)
      return;
    begin_event(out, aw::content_block_stop);
    out += R"({"type":"content_block_stop","index":)";
    append_integer(out, index_);
    out += '}';
    end_event(out);
    open_ = block_kind::none;
    ++index_;
  }

  void begin_delta(std::string& out) {
    begin_event(out, aw::content_block_delta);
    out += R"({"type":"content_block_delta","index":)";
    append_integer(out, index_);
    out += R"(,"delta":)";
  }

  void add_text(std::string_view text, std::string& out) {
    if (text.empty())
      return;
    saw_content();
    if (open_ != block_kind::text) {
      close_block(out);
      begin_event(out, aw::content_block_start);
      out += R"({"type":"content_block_start","index":)";
      append_integer(out, index_);
      out += R"(,"content_block":{"type":"text","text":""}})";
      end_event(out);
      open_ = block_kind::text;
    }
    keep_text(text);
    begin_delta(out);
    out += R"({"type":"text_delta","text":)";
    append_json_string(out, text);
    out += "}}";
    end_event(out);
  }

  stream_state add_tool_call(element call, std::string& out) {
    auto index = pw::json::uint_of(call, "index", tools_.size());
    auto fn = pw::json::member(call, "function");
    auto known = tools_.find(index);
    if (known == tools_.end()) {
      if (tools_.size() == max_stream_tool_calls)
        return fail(out, "The upstream sent more than "
                           + std::to_string(max_stream_tool_calls)
                           + " tool calls in one answer");
      // A new call: its own tool_use block.
      saw_content();
      close_block(out);
      tools_.emplace(index, index_);
      auto id = pw::json::string_of(call, "id");
      begin_event(out, aw::content_block_start);
      out += R"({"type":"content_block_start","index":)";
      append_integer(out, index_);
      out += R"(,"content_block":{"type":"tool_use","id":)";
      append_json_string(out, id.empty() ? tool_id(options_.request_id, index)
                                         : std::string{id});
      out += R"(,"name":)";
      append_json_string(out, fn ? pw::json::string_of(*fn, "name")
                                 : std::string_view{});
      out += R"(,"input":{}}})";
      end_event(out);
      open_ = block_kind::tool;
      open_tool_ = index;
      called_tools_ = true;
    } else if (open_ != block_kind::tool || open_tool_ != index) {
      return fail(out, "The upstream interleaved the arguments of two tool "
                       "calls, which Anthropic's stream cannot express");
    }
    auto arguments
      = fn ? pw::json::string_of(*fn, "arguments") : std::string_view{};
    if (!arguments.empty()) {
      begin_delta(out);
      out += R"({"type":"input_json_delta","partial_json":)";
      append_json_string(out, arguments);
      out += "}}";
      end_event(out);
    }
    return stream_state::open;
  }

  stream_state on_choice(element choice, std::string& out) {
    if (auto delta = pw::json::member(choice, "delta");
        delta && delta->is_object()) {
      add_text(pw::json::string_of(*delta, "content"), out);
      auto refusal = pw::json::string_of(*delta, "refusal");
      if (!refusal.empty()) {
        refused_ = true;
        add_text(refusal, out);
      }
      dom::array calls;
      if (auto listed = pw::json::member(*delta, wire::tool_calls);
          listed && listed->get(calls) == simdjson::SUCCESS)
        for (auto call : calls)
          if (call.is_object())
            if (auto st = add_tool_call(call, out); st != stream_state::open)
              return st;
    }
    auto finish = pw::json::string_of(choice, "finish_reason");
    if (!finish.empty()) {
      close_block(out);
      stop_reason_ = stop_reason_of(finish);
      auto sequence = stop_sequence_of(choice);
      if (finish == "stop" && !sequence.empty()) {
        stop_reason_ = "stop_sequence";
        stop_sequence_ = sequence;
      }
    }
    return stream_state::open;
  }

  stream_state on_done(std::string& out) {
    if (!started_)
      start({}, out);
    close_block(out);
    if (refused_)
      stop_reason_ = "refusal";
    else if (called_tools_ && stop_reason_ == "end_turn")
      stop_reason_ = "tool_use"; // as to_anthropic_message
    summary_.finish_reason = stop_reason_;
    summary_.prompt_tokens = counts_.prompt;
    summary_.completion_tokens = counts_.completion;
    summary_.cached_tokens = counts_.cached;
    begin_event(out, aw::message_delta);
    out += R"({"type":"message_delta","delta":{"stop_reason":)";
    append_json_string(out, stop_reason_);
    out += R"(,"stop_sequence":)";
    if (stop_reason_ == "stop_sequence")
      append_json_string(out, stop_sequence_);
    else
      out += "null";
    out += R"(},"usage":)";
    append_usage(out, counts_);
    out += '}';
    end_event(out);
    begin_event(out, aw::message_stop);
    out += R"({"type":"message_stop"})";
    end_event(out);
    return complete();
  }

  stream_state on_error(element error, std::string& out) {
    summary_.provider_error = true;
    std::string_view message;
    std::string_view type;
    if (error.is_object()) {
      message = pw::json::string_of(error, "message");
      type = pw::json::string_of(error, "type");
    } else if (error.is_string()) {
      message = error.get_string().value_unsafe();
    }
    return fail(out,
                message.empty() ? std::string{"The upstream reported an error"}
                                : scrubbed(std::string{message}, *model_),
                type);
  }

  model_config_ptr model_;
  sse_parser parser_;
  std::vector<sse_event> events_;
  bool started_ = false;
  bool refused_ = false;
  bool called_tools_ = false;
  block_kind open_ = block_kind::none;
  /// The index of the open block, or of the next one.
  uint64_t index_ = 0;
  /// The OpenAI index of the open tool call.
  uint64_t open_tool_ = 0;
  /// OpenAI tool call index -> Anthropic block index.
  std::unordered_map<uint64_t, uint64_t> tools_;
  std::string stop_reason_ = "end_turn";
  std::string stop_sequence_;
  token_counts counts_;
};

} // namespace

std::unique_ptr<stream_decoder> make_messages_decoder(model_config_ptr model,
                                                      stream_options options) {
  return std::make_unique<messages_decoder>(std::move(model),
                                            std::move(options));
}

caf::expected<doc>
messages_chat_adapter::chat_request(const doc& request,
                                    const model_config& model) const {
  return to_chat_request(request, dialect_, model);
}

caf::expected<upstream_request>
messages_chat_adapter::to_provider_request(const chat_payload& request,
                                           const model_config& model) const {
  auto body = to_chat_request(request.json(), dialect_, model);
  if (!body)
    return body.error();
  auto out = json_post(model, dialect_.path(model, wire::chat_path),
                       pw::json::dump(*body));
  dialect_.add_credentials(out, model);
  return out;
}

caf::expected<chat_response>
messages_chat_adapter::from_provider_response(const upstream_result& result,
                                              const model_config& model) const {
  auto read = pw::json::read(result.body, pw::json::upstream_limits);
  if (!read)
    return malformed_answer(model,
                            read.error().what(pw::json::upstream_limits));
  return to_anthropic_message(read->root(), model, new_request_id());
}

std::unique_ptr<stream_decoder>
messages_chat_adapter::make_stream_decoder(model_config_ptr model,
                                           stream_options options) const {
  return make_messages_decoder(std::move(model), std::move(options));
}

std::string
messages_chat_adapter::whole_to_sse(std::string_view body,
                                    const stream_options& options) const {
  return anthropic::message_to_sse(body, options);
}

} // namespace pw::adapters::openai
