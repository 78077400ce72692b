#include "core/request/stream.hpp"

#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <nlohmann/json.hpp>

namespace pw {

stream_decoder::stream_decoder(stream_options options)
    : options_(std::move(options)) {
  // nop
}

stream_decoder::~stream_decoder() = default;

void stream_decoder::keep_text(std::string_view text) {
  if (summary_.text_truncated)
    return; // a prefix, never a text with a gap
  auto room
    = options_.keep_text - std::min(options_.keep_text, summary_.text.size());
  if (text.size() > room) {
    summary_.text_truncated = true;
    text = utf8_prefix(text, room);
  }
  summary_.text.append(text);
}

stream_state stream_decoder::feed(std::string_view bytes, std::string& out) {
  if (state_ != stream_state::open)
    return state_;
  state_ = on_bytes(bytes, out);
  return state_;
}

stream_state stream_decoder::finish(std::string& out) {
  if (state_ != stream_state::open)
    return state_;
  state_ = fail(out, "The upstream stream ended before it was complete");
  return state_;
}

stream_state stream_decoder::abort(std::string& out, std::string why,
                                   std::string_view type,
                                   std::string_view code) {
  if (state_ != stream_state::open)
    return state_;
  return fail(out, std::move(why), type, code);
}

stream_state stream_decoder::fail(std::string& out, std::string message,
                                  std::string_view type,
                                  std::string_view code) {
  out += error_event(message, type, code);
  summary_.complete = false;
  summary_.error = std::move(message);
  state_ = stream_state::failed;
  return state_;
}

void stream_decoder::emit(std::string& out, std::string_view json) {
  out += "data: ";
  auto start = out.size();
  out.append(json);
  for (auto i = start; i < out.size(); ++i)
    if (out[i] == '\n' || out[i] == '\r')
      out[i] = ' '; // only JSON whitespace can be a raw line break
  out += "\n\n";
}

std::string stream_decoder::error_event(std::string_view message,
                                        std::string_view type,
                                        std::string_view code) const {
  return stream_error_event(message, type, code);
}

stream_state stream_decoder::end(std::string& out) {
  out += "data: [DONE]\n\n";
  return complete();
}

stream_state stream_decoder::complete() {
  summary_.complete = true;
  state_ = stream_state::done;
  return state_;
}

std::string completion_to_sse(std::string_view completion,
                              const stream_options& options) {
  using json = nlohmann::ordered_json;
  // The answer was checked when it came in; it is read again under the
  // same limits, and nothing below assumes more than its types say.
  auto parsed = pw::json::parse(completion, pw::json::upstream_limits);
  std::string out;
  if (!parsed || !parsed->is_object()) {
    out += stream_error_event("The answer could not be streamed");
    return out;
  }
  const auto& doc = *parsed;
  auto base = [&](json delta, json finish) {
    return json{
      {"id", string_or(doc, "id", "chatcmpl-" + options.request_id)},
      {"object", "chat.completion.chunk"},
      {"created", int_or(doc, "created")},
      {"model", options.alias},
      {"choices", json::array({{{"index", 0},
                                {"delta", std::move(delta)},
                                {"logprobs", nullptr},
                                {"finish_reason", std::move(finish)}}})}};
  };
  auto send = [&](const json& chunk) {
    out += "data: ";
    out += pw::json::dump(chunk);
    out += "\n\n";
  };
  json message = json::object();
  json finish = "stop";
  if (auto c = doc.find("choices");
      c != doc.end() && c->is_array() && !c->empty() && (*c)[0].is_object()) {
    message = object_or_empty((*c)[0], "message");
    if (auto f = (*c)[0].find("finish_reason");
        f != (*c)[0].end() && f->is_string())
      finish = *f;
  }
  send(base(json{{"role", "assistant"}, {"content", ""}}, nullptr));
  if (auto content = message.find("content");
      content != message.end() && content->is_string()
      && !content->get_ref<const std::string&>().empty())
    send(base(json{{"content", *content}}, nullptr));
  if (auto calls = message.find("tool_calls");
      calls != message.end() && calls->is_array()) {
    json indexed = json::array();
    for (const auto& call : *calls) {
      if (!call.is_object())
        continue; // not a tool call: nothing a client could use
      auto with_index = call;
      with_index["index"] = indexed.size();
      indexed.push_back(std::move(with_index));
    }
    send(base(json{{"tool_calls", std::move(indexed)}}, nullptr));
  }
  send(base(json::object(), finish));
  if (options.include_usage && doc.contains("usage")) {
    auto chunk = base(json::object(), nullptr);
    chunk["choices"] = json::array();
    chunk["usage"] = doc["usage"];
    send(chunk);
  }
  out += "data: [DONE]\n\n";
  return out;
}

std::string text_completion_to_sse(std::string_view completion,
                                   const stream_options& options) {
  using json = nlohmann::ordered_json;
  auto parsed = pw::json::parse(completion, pw::json::upstream_limits);
  std::string out;
  if (!parsed || !parsed->is_object()) {
    out += stream_error_event("The answer could not be streamed");
    return out;
  }
  const auto& doc = *parsed;
  auto base = [&](json choices) {
    return json{{"id", string_or(doc, "id", "cmpl-" + options.request_id)},
                {"object", "text_completion"},
                {"created", int_or(doc, "created")},
                {"model", options.alias},
                {"choices", std::move(choices)}};
  };
  auto send = [&](const json& chunk) {
    out += "data: ";
    out += pw::json::dump(chunk);
    out += "\n\n";
  };
  if (auto c = doc.find("choices"); c != doc.end() && c->is_array()) {
    for (size_t i = 0; i < c->size(); ++i) {
      const auto& choice = (*c)[i];
      if (!choice.is_object())
        continue;
      json finish = "stop";
      if (auto f = choice.find("finish_reason");
          f != choice.end() && f->is_string())
        finish = *f;
      send(base(json::array(
        {{{"text", string_or(choice, "text")},
          {"index", int_or(choice, "index", static_cast<int64_t>(i))},
          {"logprobs", nullptr},
          {"finish_reason", std::move(finish)}}})));
    }
  }
  if (options.include_usage && doc.contains("usage")) {
    auto chunk = base(json::array());
    chunk["usage"] = doc["usage"];
    send(chunk);
  }
  out += "data: [DONE]\n\n";
  return out;
}

std::string stream_error_event(std::string_view message, std::string_view type,
                               std::string_view code) {
  std::string out = "data: {\"error\":{\"message\":";
  append_json_string(out, message);
  out += ",\"type\":";
  append_json_string(out, type);
  out += ",\"param\":null,\"code\":";
  append_json_string(out, code);
  out += "}}\n\n";
  return out;
}

} // namespace pw
