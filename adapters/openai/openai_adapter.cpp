#include "adapters/openai/openai_adapter.hpp"

#include "adapters/json_scan.hpp"
#include "adapters/openai/openai_wire.hpp"
#include "adapters/sse.hpp"
#include "core/json_text.hpp"

namespace pw::adapters::openai {

namespace {

using json = nlohmann::ordered_json;

/// Reads what the gateway needs from a chat.completion in one streaming
/// pass, without building a document: is it an object with a `choices`
/// list, and the `usage` token counts.
class completion_scanner : public nlohmann::json_sax<json> {
public:
  bool is_object = false;
  bool has_choices = false;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;

  // -- nlohmann::json_sax ----------------------------------------------------

  bool null() override { return true; }

  bool boolean(bool) override { return true; }

  bool number_integer(number_integer_t) override { return true; }

  bool number_unsigned(number_unsigned_t val) override {
    if (depth_ == 2 && in_usage_) {
      if (key_ == wire::prompt_tokens)
        prompt_tokens = val;
      else if (key_ == wire::completion_tokens)
        completion_tokens = val;
    }
    return true;
  }

  bool number_float(number_float_t, const string_t&) override { return true; }

  bool string(string_t&) override { return true; }

  bool binary(binary_t&) override { return true; }

  bool start_object(std::size_t) override {
    if (depth_ == 0)
      is_object = true;
    else if (depth_ == 1 && key_ == wire::usage)
      in_usage_ = true;
    ++depth_;
    return true;
  }

  bool key(string_t& val) override {
    if (depth_ <= 2)
      key_ = val;
    return true;
  }

  bool end_object() override {
    if (--depth_ == 1)
      in_usage_ = false;
    return true;
  }

  bool start_array(std::size_t) override {
    if (depth_ == 1 && key_ == wire::choices)
      has_choices = true;
    ++depth_;
    return true;
  }

  bool end_array() override {
    --depth_;
    return true;
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

private:
  size_t depth_ = 0;
  bool in_usage_ = false;
  std::string key_;
};

/// Reads one `chat.completion.chunk` (or an error object some servers send
/// mid-stream) for the stream summary.
class chunk_scan : public json_scan {
public:
  bool is_object = false;
  bool has_error = false;
  std::string content;
  std::string finish_reason;
  std::string error_message;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;

protected:
  void on_object_start() override {
    if (path().empty())
      is_object = true;
    else if (at({"error"}))
      has_error = true;
  }

  void on_string(const std::string& value) override {
    if (at({"choices", "[0]", "delta", "content"}))
      content += value;
    else if (at({"choices", "[0]", "finish_reason"}))
      finish_reason = value;
    else if (at({"error", "message"}))
      error_message = value;
    else if (at({"error"})) {
      has_error = true;
      error_message = value;
    }
  }

  void on_unsigned(uint64_t value) override {
    if (at({"usage", "prompt_tokens"}))
      prompt_tokens = value;
    else if (at({"usage", "completion_tokens"}))
      completion_tokens = value;
  }
};

/// OpenAI-compatible streams pass through event by event: each chunk is
/// checked, its `model` set to the alias, and `[DONE]` ends the stream.
class openai_stream_decoder final : public stream_decoder {
public:
  openai_stream_decoder(model_config_ptr model, stream_options options)
      : model_(std::move(model)), options_(std::move(options)) {
    // nop
  }

protected:
  stream_state on_bytes(std::string_view bytes, std::string& out) override {
    events_.clear();
    if (!parser_.feed(bytes, events_))
      return fail(out, "An upstream stream event exceeds 1 MiB");
    for (auto& ev : events_) {
      if (ev.data == "[DONE]")
        return end(out);
      chunk_scan scan;
      if (!scan.run(ev.data) || !scan.is_object)
        return fail(out, "The upstream sent a malformed stream event");
      if (scan.has_error) {
        summary_.provider_error = true;
        auto message = scan.error_message.empty()
                         ? std::string{"The upstream reported an error"}
                         : scrubbed(scan.error_message, *model_);
        return fail(out, std::move(message), "upstream_error",
                    "upstream_stream_error");
      }
      summary_.text += scan.content;
      if (!scan.finish_reason.empty())
        summary_.finish_reason = scan.finish_reason;
      if (scan.prompt_tokens + scan.completion_tokens > 0) {
        summary_.prompt_tokens = scan.prompt_tokens;
        summary_.completion_tokens = scan.completion_tokens;
      }
      if (auto spliced
          = with_top_level_string(ev.data, wire::model, options_.alias)) {
        emit(out, *spliced);
      } else {
        auto doc = json::parse(ev.data);
        doc[wire::model] = options_.alias;
        emit(out, doc.dump(-1, ' ', false, json::error_handler_t::replace));
      }
    }
    return stream_state::open;
  }

private:
  model_config_ptr model_;
  stream_options options_;
  sse_parser parser_;
  std::vector<sse_event> events_;
};

caf::error malformed(const model_config& model, const char* why) {
  return make_error(errc::upstream_failed,
                    "The upstream provider for model '" + model.alias
                      + "' returned a malformed response (" + why + ")");
}

/// A model without a key (self-hosted vLLM, Ollama) sends no credentials.
void add_credentials(upstream_request& out, const model_config& model) {
  if (!model.api_key.empty())
    out.headers.push_back(
      {"Authorization", "Bearer " + model.api_key.reveal()});
}

} // namespace

caf::expected<upstream_request>
openai_adapter::to_provider_request(const chat_payload& request,
                                    const model_config& model) const {
  // Every field the client sent goes through; only the model id changes.
  auto out
    = json_post(model, wire::chat_path, body_with_model(request, model.model));
  add_credentials(out, model);
  return out;
}

caf::expected<chat_response>
openai_adapter::from_provider_response(const upstream_result& result,
                                       const model_config& model) const {
  completion_scanner scan;
  if (!json::sax_parse(result.body, &scan))
    return malformed(model, "not valid JSON");
  if (!scan.is_object)
    return malformed(model, "not a JSON object");
  if (!scan.has_choices)
    return malformed(model, "no 'choices'");
  // The answer goes back byte for byte, with `model` set to the alias.
  auto body = with_top_level_string(result.body, wire::model, model.alias);
  chat_response out;
  if (body) {
    out.body = std::move(*body);
  } else {
    auto doc = json::parse(result.body);
    doc[wire::model] = model.alias;
    out.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  out.prompt_tokens = scan.prompt_tokens;
  out.completion_tokens = scan.completion_tokens;
  return out;
}

std::optional<upstream_request>
openai_adapter::health_request(const model_config& model) const {
  std::string path;
  if (model.provider == provider_kind::ollama) {
    // Ollama's own API sits next to its OpenAI-compatible /v1.
    std::string_view base = model.target.base_path;
    if (base.ends_with("/v1"))
      base.remove_suffix(3);
    path = std::string{base} + "/api/tags";
  } else {
    path = model.target.base_path + std::string{wire::models_path};
  }
  auto out = json_get(model, std::move(path));
  add_credentials(out, model);
  return out;
}

std::unique_ptr<stream_decoder>
openai_adapter::make_stream_decoder(model_config_ptr model,
                                    stream_options options) const {
  return std::make_unique<openai_stream_decoder>(std::move(model),
                                                 std::move(options));
}

} // namespace pw::adapters::openai
