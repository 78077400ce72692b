#include "adapters/openai/openai_adapter.hpp"

#include "adapters/openai/openai_wire.hpp"
#include "adapters/sse.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"

namespace pw::adapters::openai {

namespace {

namespace dom = simdjson::dom;
using dom::element;

/// What the gateway relies on in a chat.completion, here and later (the
/// post plugins, an answer turned into a stream): an object whose
/// `choices` is a list of objects; each `message`, when present, an object
/// whose `tool_calls`, when present, is null or a list of objects. Returns
/// what is wrong, or nullptr.
const char* completion_fault(element root) {
  if (!root.is_object())
    return "not a JSON object";
  dom::array choices;
  if (auto c = json::member(root, wire::choices);
      !c || c->get(choices) != simdjson::SUCCESS)
    return "no 'choices' list";
  for (auto choice : choices) {
    if (!choice.is_object())
      return "a choice that is not an object";
    auto message = json::member(choice, wire::message);
    if (!message)
      continue;
    if (!message->is_object())
      return "a 'message' that is not an object";
    auto listed = json::member(*message, wire::tool_calls);
    if (!listed || listed->is_null())
      continue;
    dom::array calls;
    if (listed->get(calls) != simdjson::SUCCESS)
      return "'tool_calls' that is not a list";
    for (auto call : calls)
      if (!call.is_object())
        return "a tool call that is not an object";
  }
  return nullptr;
}

/// What the stream summary takes from one `chat.completion.chunk` (or
/// from an error object some servers send mid-stream).
struct chunk_facts {
  bool has_error = false;
  std::string_view error_message;
  std::string_view content;
  /// A text, refusal or tool-call delta (or a completion's text).
  bool has_content = false;
  std::string_view finish_reason;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t cached_tokens = 0;
};

/// OpenAI's `usage.prompt_tokens_details.cached_tokens` (at most the
/// prompt).
uint64_t cached_of(element usage, uint64_t prompt) {
  auto details = json::member(usage, "prompt_tokens_details");
  return details ? std::min(prompt, json::uint_of(*details, "cached_tokens"))
                 : 0;
}

chunk_facts facts_of(element chunk) {
  chunk_facts out;
  if (auto error = json::member(chunk, "error")) {
    if (error->is_object()) {
      out.has_error = true;
      out.error_message = json::string_of(*error, "message");
    } else if (error->is_string()) {
      out.has_error = true;
      out.error_message = error->get_string().value_unsafe();
    }
  }
  if (auto choices = json::member(chunk, wire::choices);
      choices && choices->is_array()) {
    element first;
    if (choices->get_array().value_unsafe().at(0).get(first)
        == simdjson::SUCCESS) {
      // A chat chunk's text is in `delta`; a text completion's in `text`.
      if (auto delta = json::member(first, "delta")) {
        out.content = json::string_of(*delta, "content");
        auto calls = json::member(*delta, "tool_calls");
        auto call = json::member(*delta, "function_call");
        out.has_content
          = !out.content.empty() || !json::string_of(*delta, "refusal").empty()
            || (calls && calls->is_array()) || (call && call->is_object());
      } else {
        out.content = json::string_of(first, "text");
        out.has_content = !out.content.empty();
      }
      out.finish_reason = json::string_of(first, "finish_reason");
    }
  }
  if (auto usage = json::member(chunk, wire::usage)) {
    out.prompt_tokens = json::uint_of(*usage, wire::prompt_tokens);
    out.completion_tokens = json::uint_of(*usage, wire::completion_tokens);
    out.cached_tokens = cached_of(*usage, out.prompt_tokens);
  }
  return out;
}

/// A chunk with usage and an empty `choices`: the one
/// `stream_options.include_usage` adds at the end.
bool usage_only(element chunk) {
  auto choices = json::member(chunk, wire::choices);
  simdjson::dom::array list;
  return choices && choices->get_array().get(list) == simdjson::SUCCESS
         && list.size() == 0;
}

/// OpenAI-compatible streams pass through event by event: each chunk is
/// checked, its `model` set to the alias, and `[DONE]` ends the stream.
class openai_stream_decoder final : public stream_decoder {
public:
  openai_stream_decoder(model_config_ptr model, stream_options options)
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
        return end(out);
      auto doc = json::read(ev.data, json::upstream_limits);
      if (!doc)
        return fail(out, "The upstream sent a malformed stream event ("
                           + doc.error().what(json::upstream_limits) + ")");
      auto chunk = doc->root();
      if (!chunk.is_object())
        return fail(out, "The upstream sent a malformed stream event (not "
                         "a JSON object)");
      auto facts = facts_of(chunk);
      if (facts.has_error) {
        summary_.provider_error = true;
        auto message = facts.error_message.empty()
                         ? std::string{"The upstream reported an error"}
                         : scrubbed(std::string{facts.error_message}, *model_);
        return fail(out, std::move(message), "upstream_error",
                    "upstream_stream_error");
      }
      keep_text(facts.content);
      if (facts.has_content)
        saw_content();
      if (!facts.finish_reason.empty())
        summary_.finish_reason = facts.finish_reason;
      if (facts.prompt_tokens + facts.completion_tokens > 0) {
        summary_.prompt_tokens = facts.prompt_tokens;
        summary_.completion_tokens = facts.completion_tokens;
        summary_.cached_tokens = facts.cached_tokens;
        // The usage chunk the gateway asked for itself (a governed key's
        // stream) is read, not relayed, unless the client asked too.
        if (!options_.include_usage && usage_only(chunk))
          continue;
      }
      emit(out, with_alias(ev.data, chunk, options_.alias));
    }
    return stream_state::open;
  }

private:
  model_config_ptr model_;
  sse_parser parser_;
  std::vector<sse_event> events_;
};

/// The request to the dialect's `path` under the model's base_url: every
/// field the client sent goes through; only the model id changes.
upstream_request pass_through(const chat_payload& request,
                              const model_config& model, const dialect& d,
                              std::string_view path) {
  auto out = json_post(model, d.path(model, path),
                       body_with_model(request, model.model));
  d.add_credentials(out, model);
  return out;
}

/// A chat.completion or a text_completion: what completion_fault accepts,
/// byte for byte with `model` set to the alias, and its usage.
caf::expected<chat_response> completion_of(const upstream_result& result,
                                           const model_config& model) {
  auto doc = json::read(result.body, json::upstream_limits);
  if (!doc)
    return malformed_answer(model, doc.error().what(json::upstream_limits));
  auto root = doc->root();
  if (const auto* why = completion_fault(root))
    return malformed_answer(model, why);
  chat_response out;
  // The answer goes back byte for byte, with `model` set to the alias.
  out.body = with_alias(result.body, root, model.alias);
  if (auto usage = json::member(root, wire::usage)) {
    out.prompt_tokens = json::uint_of(*usage, wire::prompt_tokens);
    out.completion_tokens = json::uint_of(*usage, wire::completion_tokens);
    out.cached_tokens = cached_of(*usage, out.prompt_tokens);
  }
  return out;
}

} // namespace

dialect::~dialect() = default;

std::string dialect::path(const model_config&,
                          std::string_view api_path) const {
  return std::string{api_path};
}

void dialect::add_credentials(upstream_request& out,
                              const model_config& model) const {
  if (!model.api_key.empty())
    out.headers.push_back(
      {"Authorization", "Bearer " + model.api_key.reveal()});
}

std::optional<upstream_request>
dialect::health_request(const model_config& model) const {
  auto out
    = json_get(model, model.target.base_path + path(model, wire::models_path));
  add_credentials(out, model);
  return out;
}

std::optional<caf::expected<upstream_request>>
dialect::credential_request(const model_config&) const {
  return std::nullopt;
}

caf::expected<fetched_credential>
dialect::credential_from(const upstream_result&, const model_config&) const {
  return make_error(errc::internal, "no credential to fetch");
}

namespace {

class openai_own final : public dialect {
public:
  [[nodiscard]] bool max_completion_tokens() const override { return true; }
};

class vllm final : public dialect {
public:
  [[nodiscard]] bool top_k() const override { return true; }
};

class ollama final : public dialect {
public:
  [[nodiscard]] std::optional<upstream_request>
  health_request(const model_config& model) const override {
    // Ollama's own API sits next to its OpenAI-compatible /v1.
    std::string_view base = model.target.base_path;
    if (base.ends_with("/v1"))
      base.remove_suffix(3);
    auto out = json_get(model, std::string{base} + "/api/tags");
    add_credentials(out, model);
    return out;
  }
};

} // namespace

const dialect& openai_dialect() {
  static const openai_own d;
  return d;
}

const dialect& vllm_dialect() {
  static const vllm d;
  return d;
}

const dialect& ollama_dialect() {
  static const ollama d;
  return d;
}

caf::expected<upstream_request>
openai_adapter::to_provider_request(const chat_payload& request,
                                    const model_config& model) const {
  return pass_through(request, model, dialect_, wire::chat_path);
}

caf::expected<chat_response>
openai_adapter::from_provider_response(const upstream_result& result,
                                       const model_config& model) const {
  return completion_of(result, model);
}

std::optional<upstream_request>
openai_adapter::health_request(const model_config& model) const {
  return dialect_.health_request(model);
}

std::optional<caf::expected<upstream_request>>
openai_adapter::credential_request(const model_config& model) const {
  return dialect_.credential_request(model);
}

caf::expected<fetched_credential>
openai_adapter::credential_from(const upstream_result& result,
                                const model_config& model) const {
  return dialect_.credential_from(result, model);
}

std::unique_ptr<stream_decoder>
openai_adapter::make_stream_decoder(model_config_ptr model,
                                    stream_options options) const {
  return std::make_unique<openai_stream_decoder>(std::move(model),
                                                 std::move(options));
}

caf::expected<upstream_request>
completions_adapter::to_provider_request(const chat_payload& request,
                                         const model_config& model) const {
  return pass_through(request, model, dialect_, wire::completions_path);
}

caf::expected<chat_response>
completions_adapter::from_provider_response(const upstream_result& result,
                                            const model_config& model) const {
  return completion_of(result, model);
}

std::unique_ptr<stream_decoder>
completions_adapter::make_stream_decoder(model_config_ptr model,
                                         stream_options options) const {
  return std::make_unique<openai_stream_decoder>(std::move(model),
                                                 std::move(options));
}

std::string
completions_adapter::whole_to_sse(std::string_view body,
                                  const stream_options& options) const {
  return text_completion_to_sse(body, options);
}

caf::expected<upstream_request>
embeddings_adapter::to_provider_request(const chat_payload& request,
                                        const model_config& model) const {
  return pass_through(request, model, dialect_, wire::embeddings_path);
}

caf::expected<chat_response>
embeddings_adapter::from_provider_response(const upstream_result& result,
                                           const model_config& model) const {
  auto doc = json::read(result.body, json::upstream_limits);
  if (!doc)
    return malformed_answer(model, doc.error().what(json::upstream_limits));
  auto root = doc->root();
  if (!root.is_object())
    return malformed_answer(model, "not a JSON object");
  simdjson::dom::array data;
  if (auto d = json::member(root, wire::data);
      !d || d->get(data) != simdjson::SUCCESS)
    return malformed_answer(model, "no 'data' list");
  for (auto item : data)
    if (!item.is_object())
      return malformed_answer(model, "an item of 'data' that is not an object");
  chat_response out;
  out.body = with_alias(result.body, root, model.alias);
  if (auto usage = json::member(root, wire::usage))
    out.prompt_tokens = json::uint_of(*usage, wire::prompt_tokens);
  return out;
}

std::unique_ptr<stream_decoder>
embeddings_adapter::make_stream_decoder(model_config_ptr,
                                        stream_options) const {
  return nullptr;
}

} // namespace pw::adapters::openai
