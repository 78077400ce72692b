#include "adapters/bedrock/converse.hpp"

#include "adapters/bedrock/event_stream.hpp"
#include "core/errc.hpp"
#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <set>

namespace pw::adapters::bedrock {

namespace {

using doc = nlohmann::ordered_json;

caf::error invalid(std::string message, std::string param) {
  return make_error(errc::invalid_request, std::move(message),
                    std::move(param));
}

std::string at(const std::string& path, size_t i) {
  return path + "." + std::to_string(i);
}

/// An Anthropic image block as a Converse one.
caf::expected<doc> image_of(const doc& block, const std::string& where) {
  auto source = block.find("source");
  if (source == block.end() || !source->is_object()
      || string_or(*source, "type") != "base64")
    return invalid("Bedrock takes images as base64 data only",
                   where + ".source");
  auto media = string_or(*source, "media_type");
  auto slash = media.find('/');
  auto format
    = slash == std::string::npos ? std::string{} : media.substr(slash + 1);
  if (format != "png" && format != "jpeg" && format != "gif"
      && format != "webp")
    return invalid("Bedrock takes png, jpeg, gif and webp images",
                   where + ".source.media_type");
  return doc{{"image",
              {{"format", format},
               {"source", {{"bytes", string_or(*source, "data")}}}}}};
}

/// A tool result's content: a string, or text and image blocks.
caf::expected<doc> result_content(const doc& block, const std::string& where) {
  doc out = doc::array();
  auto content = block.find("content");
  if (content == block.end() || content->is_null())
    return out;
  if (content->is_string()) {
    out.push_back({{"text", content->get<std::string>()}});
    return out;
  }
  if (!content->is_array())
    return invalid("expected a string or a list of blocks", where + ".content");
  for (size_t i = 0; i < content->size(); ++i) {
    const auto& b = (*content)[i];
    auto type = string_or(b, "type");
    if (type == "text") {
      out.push_back({{"text", string_or(b, "text")}});
    } else if (type == "image") {
      auto img = image_of(b, at(where + ".content", i));
      if (!img)
        return img.error();
      out.push_back(std::move(*img));
    } else {
      return invalid("Bedrock tool results take text and images",
                     at(where + ".content", i) + ".type");
    }
  }
  return out;
}

/// One content block, or null for one that is dropped.
caf::expected<doc> block_of(const doc& block, const std::string& where) {
  auto type = string_or(block, "type");
  if (type == "text") {
    auto text = string_or(block, "text");
    return text.empty() ? doc{} : doc{{"text", text}};
  }
  if (type == "image")
    return image_of(block, where);
  if (type == "tool_use") {
    auto input = block.find("input");
    return doc{{"toolUse",
                {{"toolUseId", string_or(block, "id")},
                 {"name", string_or(block, "name")},
                 {"input", input != block.end() ? *input : doc::object()}}}};
  }
  if (type == "tool_result") {
    auto content = result_content(block, where);
    if (!content)
      return content.error();
    doc result{{"toolUseId", string_or(block, "tool_use_id")},
               {"content", std::move(*content)}};
    if (auto e = block.find("is_error");
        e != block.end() && e->is_boolean() && e->get<bool>())
      result["status"] = "error";
    return doc{{"toolResult", std::move(result)}};
  }
  if (type == "thinking" || type == "redacted_thinking")
    return doc{};
  return invalid("Bedrock's Converse API has no '" + type + "' blocks",
                 where + ".type");
}

caf::error add_messages(const doc& request, doc& out) {
  auto messages = request.find("messages");
  if (messages == request.end() || !messages->is_array())
    return invalid("expected a list of messages", "messages");
  doc list = doc::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    auto where = at("messages", i);
    doc content = doc::array();
    auto c = m.find("content");
    if (c != m.end() && c->is_string()) {
      if (!c->get<std::string>().empty())
        content.push_back({{"text", c->get<std::string>()}});
    } else if (c != m.end() && c->is_array()) {
      for (size_t j = 0; j < c->size(); ++j) {
        auto b = block_of((*c)[j], at(where + ".content", j));
        if (!b)
          return b.error();
        if (!b->is_null())
          content.push_back(std::move(*b));
      }
    }
    auto role = string_or(m, "role");
    // Converse wants turns that alternate: one that follows a turn of the
    // same role joins it.
    if (!list.empty() && list.back()["role"] == role) {
      for (auto& b : content)
        list.back()["content"].push_back(std::move(b));
      continue;
    }
    list.push_back({{"role", role}, {"content", std::move(content)}});
  }
  out["messages"] = std::move(list);
  return {};
}

caf::error add_tools(const doc& request, doc& out) {
  auto tools = request.find("tools");
  if (tools == request.end() || !tools->is_array() || tools->empty())
    return {};
  doc specs = doc::array();
  for (size_t i = 0; i < tools->size(); ++i) {
    const auto& t = (*tools)[i];
    auto type = string_or(t, "type");
    if (!type.empty() && type != "custom")
      return invalid("Bedrock's Converse API has no server tools",
                     at("tools", i) + ".type");
    doc spec{{"name", string_or(t, "name")}};
    if (auto d = t.find("description"); d != t.end() && d->is_string())
      spec["description"] = *d;
    auto schema = t.find("input_schema");
    spec["inputSchema"]
      = {{"json", schema != t.end() ? *schema : doc{{"type", "object"}}}};
    specs.push_back({{"toolSpec", std::move(spec)}});
  }
  doc config{{"tools", std::move(specs)}};
  if (auto choice = request.find("tool_choice");
      choice != request.end() && choice->is_object()) {
    auto type = string_or(*choice, "type");
    if (type == "auto")
      config["toolChoice"] = {{"auto", doc::object()}};
    else if (type == "any")
      config["toolChoice"] = {{"any", doc::object()}};
    else if (type == "tool")
      config["toolChoice"] = {{"tool", {{"name", string_or(*choice, "name")}}}};
    // "none": Converse has no such choice; the tools stay declared.
  }
  out["toolConfig"] = std::move(config);
  return {};
}

} // namespace

caf::expected<nlohmann::ordered_json>
to_converse(const nlohmann::ordered_json& request) {
  doc out = doc::object();
  if (auto system = request.find("system"); system != request.end()) {
    doc blocks = doc::array();
    if (system->is_string() && !system->get<std::string>().empty())
      blocks.push_back({{"text", system->get<std::string>()}});
    else if (system->is_array())
      for (const auto& b : *system)
        if (string_or(b, "type") == "text" && !string_or(b, "text").empty())
          blocks.push_back({{"text", string_or(b, "text")}});
    if (!blocks.empty())
      out["system"] = std::move(blocks);
  }
  if (auto err = add_messages(request, out))
    return err;
  doc config = doc::object();
  if (auto v = request.find("max_tokens"); v != request.end())
    config["maxTokens"] = *v;
  if (auto v = request.find("temperature"); v != request.end() && !v->is_null())
    config["temperature"] = *v;
  if (auto v = request.find("top_p"); v != request.end() && !v->is_null())
    config["topP"] = *v;
  if (auto v = request.find("stop_sequences");
      v != request.end() && v->is_array() && !v->empty())
    config["stopSequences"] = *v;
  if (!config.empty())
    out["inferenceConfig"] = std::move(config);
  if (auto err = add_tools(request, out))
    return err;
  return out;
}

std::string simple_converse_request(const anthropic::simple_chat& chat) {
  // The keys in the order to_converse sets them.
  std::string out;
  out.reserve(128);
  out += '{';
  if (!chat.system.empty()) {
    out += R"("system":[)";
    for (size_t i = 0; i < chat.system.size(); ++i) {
      if (i > 0)
        out += ',';
      out += R"({"text":)";
      append_json_string(out, chat.system[i]);
      out += '}';
    }
    out += "],";
  }
  // Turns of the same role join, as they do in the Anthropic request.
  out += R"("messages":[)";
  std::string_view open;
  for (const auto& t : chat.turns) {
    if (t.role == open) {
      out += ',';
    } else {
      if (!open.empty())
        out += "]},";
      out += R"({"role":")";
      out += t.role;
      out += R"(","content":[)";
      open = t.role;
    }
    out += R"({"text":)";
    append_json_string(out, t.text);
    out += '}';
  }
  if (!open.empty())
    out += "]}";
  out += R"(],"inferenceConfig":{"maxTokens":)";
  append_integer(out, chat.max_tokens);
  if (chat.temperature) {
    out += R"(,"temperature":)";
    anthropic::append_scalar(out, *chat.temperature);
  }
  if (chat.top_p) {
    out += R"(,"topP":)";
    anthropic::append_scalar(out, *chat.top_p);
  }
  out += "}}";
  return out;
}

caf::expected<chat_response> to_chat_completion(std::string_view converse,
                                                const model_config& model,
                                                std::string_view id,
                                                int64_t created) {
  using simdjson::dom::element;
  using simdjson::dom::element_type;
  auto malformed
    = [&](std::string_view why) { return malformed_answer(model, why); };
  auto read = json::read(converse, json::upstream_limits);
  if (!read)
    return malformed(read.error().what(json::upstream_limits));
  auto root = read->root();
  auto object = [](const std::optional<element>& e) {
    return e && e->type() == element_type::OBJECT;
  };
  if (root.type() != element_type::OBJECT)
    return malformed("not a JSON object");
  auto output = json::member(root, "output");
  if (!object(output))
    return malformed("no 'output' object");
  auto message = json::member(*output, "message");
  if (!object(message))
    return malformed("no 'output.message' object");
  auto content = json::member(*message, "content");
  simdjson::dom::array blocks;
  if (!content || content->get(blocks) != simdjson::SUCCESS)
    return malformed("no 'output.message.content' list");
  anthropic::completion_parts parts;
  for (element b : blocks) {
    if (b.type() != element_type::OBJECT)
      return malformed("a content block that is not an object");
    if (auto text = json::member(b, "text");
        text && text->type() == element_type::STRING) {
      parts.text += text->get_string().value_unsafe();
      parts.has_text = true;
    } else if (auto use = json::member(b, "toolUse"); object(use)) {
      anthropic::append_tool_call(
        parts.tool_calls, json::string_of(*use, "toolUseId"),
        json::string_of(*use, "name"), json::member(*use, "input"));
    }
    // reasoningContent and other blocks have no counterpart.
  }
  auto full_id = "msg_bedrock_" + std::string{id};
  parts.id = full_id;
  parts.finish_reason = anthropic::finish_reason_of(
    stop_reason_of(json::string_of(root, "stopReason")));
  if (auto u = json::member(root, "usage"); object(u)) {
    auto reads = json::uint_of(*u, "cacheReadInputTokens");
    parts.prompt_tokens = json::uint_of(*u, "inputTokens") + reads
                          + json::uint_of(*u, "cacheWriteInputTokens");
    parts.completion_tokens = json::uint_of(*u, "outputTokens");
    parts.cached_tokens = reads;
  }
  return anthropic::write_chat_completion(parts, model, created);
}

std::string_view stop_reason_of(std::string_view r) {
  if (r == "tool_use" || r == "max_tokens" || r == "stop_sequence")
    return r;
  if (r == "guardrail_intervened" || r == "content_filtered")
    return "refusal";
  return "end_turn";
}

caf::expected<std::string> to_anthropic_message(std::string_view converse,
                                                const model_config& model,
                                                std::string_view id) {
  auto malformed
    = [&](std::string_view why) { return malformed_answer(model, why); };
  auto read = json::parse(converse, json::upstream_limits);
  if (!read)
    return malformed(read.error().what(json::upstream_limits));
  const auto& root = *read;
  if (!root.is_object())
    return malformed("not a JSON object");
  auto output = root.find("output");
  if (output == root.end() || !output->is_object())
    return malformed("no 'output' object");
  auto message = output->find("message");
  if (message == output->end() || !message->is_object())
    return malformed("no 'output.message' object");
  auto content = message->find("content");
  if (content == message->end() || !content->is_array())
    return malformed("no 'output.message.content' list");
  doc blocks = doc::array();
  for (const auto& b : *content) {
    if (!b.is_object())
      return malformed("a content block that is not an object");
    if (auto text = b.find("text"); text != b.end() && text->is_string()) {
      blocks.push_back({{"type", "text"}, {"text", *text}});
    } else if (auto use = b.find("toolUse");
               use != b.end() && use->is_object()) {
      auto input = use->find("input");
      blocks.push_back(
        {{"type", "tool_use"},
         {"id", string_or(*use, "toolUseId")},
         {"name", string_or(*use, "name")},
         {"input", input != use->end() ? *input : doc::object()}});
    }
    // reasoningContent and other blocks have no counterpart.
  }
  doc usage{{"input_tokens", 0}, {"output_tokens", 0}};
  if (auto u = root.find("usage"); u != root.end() && u->is_object()) {
    usage["input_tokens"] = uint_or(*u, "inputTokens");
    usage["output_tokens"] = uint_or(*u, "outputTokens");
    if (u->contains("cacheReadInputTokens"))
      usage["cache_read_input_tokens"] = uint_or(*u, "cacheReadInputTokens");
    if (u->contains("cacheWriteInputTokens"))
      usage["cache_creation_input_tokens"]
        = uint_or(*u, "cacheWriteInputTokens");
  }
  doc out{{"id", "msg_bedrock_" + std::string{id}},
          {"type", "message"},
          {"role", "assistant"},
          {"model", model.model},
          {"content", std::move(blocks)},
          {"stop_reason", stop_reason_of(string_or(root, "stopReason"))},
          {"stop_sequence", nullptr},
          {"usage", std::move(usage)}};
  return json::dump(out);
}

namespace {

/// ConverseStream (event-stream messages) in, Anthropic SSE events out to
/// the Anthropic decoder inside.
class converse_decoder final : public stream_decoder {
public:
  converse_decoder(std::unique_ptr<stream_decoder> inner,
                   stream_options options, std::string model_id)
      : stream_decoder(std::move(options)), inner_(std::move(inner)),
        model_id_(std::move(model_id)) {}

  stream_state finish(std::string& out) override {
    if (state_ != stream_state::open)
      return state_;
    // A messageStop without its metadata still ends the message.
    if (stopped_ && !ended_)
      end_message(out);
    state_ = sync(inner_->finish(out));
    return state_;
  }

  stream_state abort(std::string& out, std::string why, std::string_view type,
                     std::string_view code) override {
    if (state_ != stream_state::open)
      return state_;
    state_ = sync(inner_->abort(out, std::move(why), type, code));
    return state_;
  }

  [[nodiscard]] std::string error_event(std::string_view message,
                                        std::string_view type,
                                        std::string_view code) const override {
    return inner_->error_event(message, type, code);
  }

protected:
  stream_state on_bytes(std::string_view bytes, std::string& out) override {
    std::vector<event_message> messages;
    bool ok = events_.feed(bytes, messages);
    for (const auto& m : messages) {
      on_message(m, out);
      if (inner_->state() != stream_state::open)
        return sync(inner_->state());
    }
    if (!ok)
      return sync(inner_->abort(out, "The upstream sent a malformed event "
                                     "stream ("
                                       + events_.error() + ")"));
    return sync(inner_->state());
  }

private:
  stream_state sync(stream_state s) {
    summary_ = inner_->summary();
    if (inner_->has_content())
      saw_content();
    return s;
  }

  void send(std::string& out, std::string_view type, const doc& data) {
    std::string sse = "event: ";
    sse += type;
    sse += "\ndata: ";
    sse += json::dump(data);
    sse += "\n\n";
    inner_->feed(sse, out);
  }

  void start_message(std::string& out) {
    if (started_)
      return;
    started_ = true;
    send(out, "message_start",
         {{"type", "message_start"},
          {"message",
           {{"id", "msg_bedrock_" + options_.request_id},
            {"type", "message"},
            {"role", "assistant"},
            {"model", model_id_},
            {"content", doc::array()},
            {"stop_reason", nullptr},
            {"stop_sequence", nullptr},
            {"usage", {{"input_tokens", 0}, {"output_tokens", 0}}}}}});
  }

  void start_block(std::string& out, uint64_t index, doc block) {
    if (!open_.insert(index).second)
      return;
    send(out, "content_block_start",
         {{"type", "content_block_start"},
          {"index", index},
          {"content_block", std::move(block)}});
  }

  void end_message(std::string& out) {
    ended_ = true;
    for (auto index : open_)
      send(out, "content_block_stop",
           {{"type", "content_block_stop"}, {"index", index}});
    open_.clear();
    send(
      out, "message_delta",
      {{"type", "message_delta"},
       {"delta", {{"stop_reason", stop_reason_}, {"stop_sequence", nullptr}}},
       {"usage", usage_}});
    send(out, "message_stop", {{"type", "message_stop"}});
  }

  void on_message(const event_message& m, std::string& out) {
    if (m.header(":message-type") == "exception"
        || m.header(":message-type") == "error") {
      auto kind = m.header(":exception-type");
      if (kind.empty())
        kind = m.header(":error-code");
      auto body = json::parse(m.payload, json::upstream_limits);
      std::string message = body && body->is_object()
                              ? string_or(*body, "message")
                              : std::string{};
      if (message.empty())
        message = "Bedrock reported " + std::string{kind};
      start_message(out);
      send(out, "error",
           {{"type", "error"},
            {"error", {{"type", error_type(kind)}, {"message", message}}}});
      return;
    }
    auto type = m.header(":event-type");
    auto data = json::parse(m.payload, json::upstream_limits);
    if (!data || !data->is_object()) {
      inner_->abort(out, "The upstream sent a malformed stream event");
      return;
    }
    const auto& d = *data;
    auto index = uint_or(d, "contentBlockIndex");
    if (type == "messageStart") {
      start_message(out);
    } else if (type == "contentBlockStart") {
      start_message(out);
      auto start = d.find("start");
      if (start != d.end() && start->is_object())
        if (auto use = start->find("toolUse");
            use != start->end() && use->is_object())
          start_block(out, index,
                      {{"type", "tool_use"},
                       {"id", string_or(*use, "toolUseId")},
                       {"name", string_or(*use, "name")},
                       {"input", doc::object()}});
    } else if (type == "contentBlockDelta") {
      start_message(out);
      auto delta = d.find("delta");
      if (delta == d.end() || !delta->is_object())
        return;
      if (auto text = delta->find("text");
          text != delta->end() && text->is_string()) {
        start_block(out, index, {{"type", "text"}, {"text", ""}});
        send(out, "content_block_delta",
             {{"type", "content_block_delta"},
              {"index", index},
              {"delta", {{"type", "text_delta"}, {"text", *text}}}});
      } else if (auto use = delta->find("toolUse");
                 use != delta->end() && use->is_object()) {
        send(out, "content_block_delta",
             {{"type", "content_block_delta"},
              {"index", index},
              {"delta",
               {{"type", "input_json_delta"},
                {"partial_json", string_or(*use, "input")}}}});
      }
      // reasoningContent deltas have no counterpart.
    } else if (type == "contentBlockStop") {
      if (open_.erase(index) > 0)
        send(out, "content_block_stop",
             {{"type", "content_block_stop"}, {"index", index}});
    } else if (type == "messageStop") {
      stopped_ = true;
      stop_reason_ = stop_reason_of(string_or(d, "stopReason"));
    } else if (type == "metadata") {
      if (auto u = d.find("usage"); u != d.end() && u->is_object()) {
        usage_["input_tokens"] = uint_or(*u, "inputTokens");
        usage_["output_tokens"] = uint_or(*u, "outputTokens");
        if (u->contains("cacheReadInputTokens"))
          usage_["cache_read_input_tokens"]
            = uint_or(*u, "cacheReadInputTokens");
      }
      if (stopped_ && !ended_) {
        start_message(out);
        end_message(out);
      }
    }
  }

  /// Bedrock's exception names as Anthropic's error types.
  static std::string_view error_type(std::string_view kind) {
    if (kind == "throttlingException")
      return "rate_limit_error";
    if (kind == "serviceUnavailableException"
        || kind == "modelNotReadyException")
      return "overloaded_error";
    if (kind == "validationException")
      return "invalid_request_error";
    return "api_error";
  }

  std::unique_ptr<stream_decoder> inner_;
  std::string model_id_;
  event_stream_decoder events_;
  std::set<uint64_t> open_;
  bool started_ = false;
  bool stopped_ = false;
  bool ended_ = false;
  std::string stop_reason_ = "end_turn";
  doc usage_{{"input_tokens", 0}, {"output_tokens", 0}};
};

} // namespace

std::unique_ptr<stream_decoder>
converse_stream(std::unique_ptr<stream_decoder> inner, stream_options options,
                std::string model_id) {
  return std::make_unique<converse_decoder>(
    std::move(inner), std::move(options), std::move(model_id));
}

} // namespace pw::adapters::bedrock
