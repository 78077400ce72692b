#include "adapters/anthropic/messages_adapter.hpp"

#include "adapters/anthropic/anthropic_adapter.hpp"
#include "adapters/anthropic/anthropic_wire.hpp"
#include "adapters/sse.hpp"
#include "core/json/get.hpp"
#include "core/json/reader.hpp"

#include <array>

namespace pw::adapters::anthropic {

namespace {

namespace dom = simdjson::dom;
using dom::element;
using json = nlohmann::ordered_json;

/// Input tokens, cache reads and writes included (all are prompt).
uint64_t input_tokens_of(element usage) {
  return pw::json::uint_of(usage, "input_tokens")
         + pw::json::uint_of(usage, "cache_creation_input_tokens")
         + pw::json::uint_of(usage, "cache_read_input_tokens");
}

/// Appends "event: <name>\ndata: <json>\n\n" (raw line breaks in `data`
/// become spaces, so the event stays one data line).
void emit_event(std::string& out, std::string_view name,
                std::string_view data) {
  out += "event: ";
  out += name;
  out += "\ndata: ";
  auto start = out.size();
  out.append(data);
  for (auto i = start; i < out.size(); ++i)
    if (out[i] == '\n' || out[i] == '\r')
      out[i] = ' ';
  out += "\n\n";
}

/// Anthropic's events in, the same events out: `message_start`'s model
/// becomes the alias; the text, usage and stop reason go to the summary.
class relay_decoder final : public stream_decoder {
public:
  relay_decoder(model_config_ptr model, stream_options options)
      : stream_decoder(std::move(options)), model_(std::move(model)) {
    // nop
  }

protected:
  stream_state on_bytes(std::string_view bytes, std::string& out) override {
    events_.clear();
    if (!parser_.feed(bytes, events_))
      return fail(out, "An upstream stream event exceeds 1 MiB");
    for (auto& ev : events_) {
      auto doc = pw::json::read(ev.data, pw::json::upstream_limits);
      if (!doc)
        return fail(out, "The upstream sent a malformed stream event ("
                           + doc.error().what(pw::json::upstream_limits) + ")");
      auto data = doc->root();
      if (!data.is_object())
        return fail(out, "The upstream sent a malformed stream event (not "
                         "a JSON object)");
      auto type = pw::json::string_of(data, "type");
      std::string_view name = ev.event.empty() ? type : ev.event;
      if (type == wire::error)
        return on_error(data, out);
      if (type == wire::message_start) {
        on_message_start(data, out);
        continue;
      }
      if (type == wire::content_block_start) {
        if (auto block = pw::json::member(data, "content_block");
            block && pw::json::string_of(*block, "type") == wire::tool_use)
          saw_content();
      } else if (type == wire::content_block_delta) {
        saw_content();
        if (auto delta = pw::json::member(data, "delta");
            delta && pw::json::string_of(*delta, "type") == wire::text_delta)
          keep_text(pw::json::string_of(*delta, "text"));
      } else if (type == wire::message_delta) {
        if (auto delta = pw::json::member(data, "delta")) {
          auto stop = pw::json::string_of(*delta, "stop_reason");
          if (!stop.empty())
            summary_.finish_reason = stop;
        }
        if (auto usage = pw::json::member(data, "usage")) {
          summary_.completion_tokens
            = pw::json::uint_of(*usage, "output_tokens");
          // Counted at the end by some (Bedrock's streams, translated).
          if (pw::json::member(*usage, "input_tokens")) {
            summary_.prompt_tokens = input_tokens_of(*usage);
            summary_.cached_tokens
              = pw::json::uint_of(*usage, "cache_read_input_tokens");
          }
        }
      }
      emit_event(out, name.empty() ? std::string_view{"message"} : name,
                 ev.data);
      if (type == wire::message_stop)
        return complete();
    }
    return stream_state::open;
  }

  [[nodiscard]] std::string error_event(std::string_view message,
                                        std::string_view type,
                                        std::string_view) const override {
    return messages_error_event(message, type);
  }

private:
  void on_message_start(element data, std::string& out) {
    auto doc = pw::json::to_document(data);
    if (auto m = doc.find("message"); m != doc.end() && m->is_object()) {
      (*m)["model"] = options_.alias;
      if (auto u = m->find("usage"); u != m->end() && u->is_object()) {
        summary_.prompt_tokens = uint_or(*u, "input_tokens")
                                 + uint_or(*u, "cache_creation_input_tokens")
                                 + uint_or(*u, "cache_read_input_tokens");
        summary_.cached_tokens = uint_or(*u, "cache_read_input_tokens");
      }
    }
    emit_event(out, wire::message_start, pw::json::dump(doc));
  }

  stream_state on_error(element data, std::string& out) {
    summary_.provider_error = true;
    std::string_view message;
    std::string_view type;
    if (auto error = pw::json::member(data, "error")) {
      message = pw::json::string_of(*error, "message");
      type = pw::json::string_of(*error, "type");
    }
    return fail(out,
                message.empty() ? std::string{"The upstream reported an error"}
                                : scrubbed(std::string{message}, *model_),
                type.empty() ? std::string_view{"api_error"} : type);
  }

  model_config_ptr model_;
  sse_parser parser_;
  std::vector<sse_event> events_;
};

constexpr std::array anthropic_error_types{
  std::string_view{"invalid_request_error"},
  std::string_view{"authentication_error"},
  std::string_view{"billing_error"},
  std::string_view{"permission_error"},
  std::string_view{"not_found_error"},
  std::string_view{"request_too_large"},
  std::string_view{"rate_limit_error"},
  std::string_view{"api_error"},
  std::string_view{"timeout_error"},
  std::string_view{"overloaded_error"},
};

} // namespace

std::string messages_error_event(std::string_view message,
                                 std::string_view type) {
  std::string_view kind = "api_error";
  for (auto known : anthropic_error_types)
    if (type == known)
      kind = known;
  if (kind == "api_error" && type.find("timeout") != std::string_view::npos)
    kind = "timeout_error";
  json body
    = {{"type", "error"}, {"error", {{"type", kind}, {"message", message}}}};
  std::string out;
  emit_event(out, wire::error, pw::json::dump(body));
  return out;
}

std::string message_to_sse(std::string_view message,
                           const stream_options& options) {
  auto parsed = pw::json::parse(message, pw::json::upstream_limits);
  if (!parsed || !parsed->is_object())
    return messages_error_event("The answer could not be streamed",
                                "api_error");
  const auto& doc = *parsed;
  auto usage = object_or_empty(doc, "usage");
  json start_usage = usage;
  start_usage["output_tokens"] = 0;
  json start = {{"type", "message_start"},
                {"message",
                 {{"id", string_or(doc, "id", "msg_" + options.request_id)},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", options.alias},
                  {"content", json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  {"usage", std::move(start_usage)}}}};
  std::string out;
  emit_event(out, wire::message_start, pw::json::dump(start));
  size_t index = 0;
  if (auto c = doc.find("content"); c != doc.end() && c->is_array()) {
    for (const auto& block : *c) {
      if (!block.is_object())
        continue;
      auto type = string_or(block, "type");
      json opening = block;
      json delta;
      if (type == wire::text) {
        opening["text"] = "";
        delta = {{"type", "text_delta"}, {"text", string_or(block, "text")}};
      } else if (type == wire::tool_use) {
        auto input = block.find("input");
        opening["input"] = json::object();
        delta = {{"type", "input_json_delta"},
                 {"partial_json", input != block.end() ? pw::json::dump(*input)
                                                       : std::string{"{}"}}};
      }
      emit_event(out, wire::content_block_start,
                 pw::json::dump(json{{"type", "content_block_start"},
                                     {"index", index},
                                     {"content_block", std::move(opening)}}));
      if (!delta.is_null())
        emit_event(out, wire::content_block_delta,
                   pw::json::dump(json{{"type", "content_block_delta"},
                                       {"index", index},
                                       {"delta", std::move(delta)}}));
      emit_event(
        out, wire::content_block_stop,
        pw::json::dump(json{{"type", "content_block_stop"}, {"index", index}}));
      ++index;
    }
  }
  json stop_reason = nullptr;
  if (auto s = doc.find("stop_reason"); s != doc.end())
    stop_reason = *s;
  json stop_sequence = nullptr;
  if (auto s = doc.find("stop_sequence"); s != doc.end())
    stop_sequence = *s;
  emit_event(
    out, wire::message_delta,
    pw::json::dump(
      json{{"type", "message_delta"},
           {"delta",
            {{"stop_reason", std::move(stop_reason)},
             {"stop_sequence", std::move(stop_sequence)}}},
           {"usage", {{"output_tokens", uint_or(usage, "output_tokens")}}}}));
  emit_event(out, wire::message_stop, R"({"type":"message_stop"})");
  return out;
}

std::unique_ptr<stream_decoder> make_relay_decoder(model_config_ptr model,
                                                   stream_options options) {
  return std::make_unique<relay_decoder>(std::move(model), std::move(options));
}

caf::expected<upstream_request>
messages_adapter::to_provider_request(const chat_payload& request,
                                      const model_config& model) const {
  auto out = json_post(model, wire::messages_path,
                       body_with_model(request, model.model));
  add_version_and_key(out, model);
  return out;
}

caf::expected<chat_response>
messages_adapter::from_provider_response(const upstream_result& result,
                                         const model_config& model) const {
  auto doc = pw::json::read(result.body, pw::json::upstream_limits);
  if (!doc)
    return malformed_answer(model, doc.error().what(pw::json::upstream_limits));
  auto root = doc->root();
  if (!root.is_object() || pw::json::string_of(root, "type") != "message")
    return malformed_answer(model, "not a message object");
  if (auto content = pw::json::member(root, "content");
      !content || !content->is_array())
    return malformed_answer(model, "no 'content' list");
  chat_response out;
  out.body = with_alias(result.body, root, model.alias);
  if (auto usage = pw::json::member(root, "usage")) {
    out.prompt_tokens = input_tokens_of(*usage);
    out.completion_tokens = pw::json::uint_of(*usage, "output_tokens");
    out.cached_tokens = pw::json::uint_of(*usage, "cache_read_input_tokens");
  }
  return out;
}

std::unique_ptr<stream_decoder>
messages_adapter::make_stream_decoder(model_config_ptr model,
                                      stream_options options) const {
  return make_relay_decoder(std::move(model), std::move(options));
}

std::string
messages_adapter::whole_to_sse(std::string_view body,
                               const stream_options& options) const {
  return message_to_sse(body, options);
}

caf::expected<upstream_request>
count_tokens_adapter::to_provider_request(const chat_payload& request,
                                          const model_config& model) const {
  auto out = json_post(model, wire::count_tokens_path,
                       body_with_model(request, model.model));
  add_version_and_key(out, model);
  return out;
}

caf::expected<chat_response>
count_tokens_adapter::from_provider_response(const upstream_result& result,
                                             const model_config& model) const {
  auto doc = pw::json::read(result.body, pw::json::upstream_limits);
  if (!doc)
    return malformed_answer(model, doc.error().what(pw::json::upstream_limits));
  auto root = doc->root();
  auto tokens
    = root.is_object() ? pw::json::member(root, "input_tokens") : std::nullopt;
  if (!tokens || !tokens->is_number())
    return malformed_answer(model, "no 'input_tokens' count");
  chat_response out;
  out.body = result.body;
  out.prompt_tokens = pw::json::uint_of(root, "input_tokens");
  return out;
}

std::unique_ptr<stream_decoder>
count_tokens_adapter::make_stream_decoder(model_config_ptr,
                                          stream_options) const {
  return nullptr;
}

} // namespace pw::adapters::anthropic
