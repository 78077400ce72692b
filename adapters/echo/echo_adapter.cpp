#include "adapters/echo/echo_adapter.hpp"

#include "adapters/anthropic/messages_adapter.hpp"
#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "core/request/embeddings_request.hpp"
#include "core/sha256.hpp"

#include <chrono>
#include <cmath>
#include <cstring>

namespace pw::adapters::echo {

std::string message_text(const nlohmann::ordered_json& message) {
  auto content = message.find("content");
  if (content == message.end())
    return {};
  if (content->is_string())
    return content->get<std::string>();
  std::string out;
  if (content->is_array()) {
    for (const auto& part : *content) {
      if (!part.is_object())
        continue;
      auto type = part.find("type");
      auto text = part.find("text");
      if (type != part.end() && *type == "text" && text != part.end()
          && text->is_string()) {
        if (!out.empty())
          out.push_back('\n');
        out += text->get<std::string>();
      }
    }
  }
  return out;
}

uint64_t estimate_tokens(std::string_view text) {
  return text.empty() ? 0 : (text.size() + 3) / 4;
}

caf::expected<chat_response>
echo_adapter::respond_locally(const chat_payload& request,
                              const model_config& model,
                              std::string_view request_id) const {
  std::string reply;
  uint64_t prompt_tokens = 0;
  const auto& messages = request.json().at("messages");
  for (const auto& m : messages) {
    auto text = message_text(m);
    prompt_tokens += estimate_tokens(text);
    if (string_or(m, "role") == "user")
      reply = std::move(text);
  }
  auto created = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  chat_response out;
  out.prompt_tokens = prompt_tokens;
  out.completion_tokens = estimate_tokens(reply);
  nlohmann::ordered_json body = {
    {"id", "chatcmpl-echo-" + std::string{request_id}},
    {"object", "chat.completion"},
    {"created", created},
    {"model", model.alias},
    {"choices", nlohmann::ordered_json::array(
                  {{{"index", 0},
                    {"message", {{"role", "assistant"}, {"content", reply}}},
                    {"logprobs", nullptr},
                    {"finish_reason", "stop"}}})},
    {"usage",
     {{"prompt_tokens", out.prompt_tokens},
      {"completion_tokens", out.completion_tokens},
      {"total_tokens", out.prompt_tokens + out.completion_tokens}}},
  };
  out.body = json::dump(body);
  return out;
}

caf::expected<upstream_request>
local_adapter::to_provider_request(const chat_payload&,
                                   const model_config&) const {
  return make_error(errc::internal, "the echo provider makes no upstream call");
}

caf::expected<chat_response>
local_adapter::from_provider_response(const upstream_result&,
                                      const model_config&) const {
  return make_error(errc::internal, "the echo provider makes no upstream call");
}

std::unique_ptr<stream_decoder>
local_adapter::make_stream_decoder(model_config_ptr, stream_options) const {
  return nullptr;
}

std::vector<float> echo_vector(std::string_view input, uint32_t dimensions) {
  std::vector<float> out;
  out.reserve(dimensions);
  std::string seed{input};
  seed.push_back('\0');
  auto at = seed.size();
  seed.resize(at + 4);
  for (uint32_t block = 0; out.size() < dimensions; ++block) {
    for (int i = 0; i < 4; ++i)
      seed[at + i] = static_cast<char>((block >> (8 * i)) & 0xff);
    auto digest = sha256(seed);
    for (size_t i = 0; i + 4 <= digest.size() && out.size() < dimensions;
         i += 4) {
      uint32_t x = 0;
      for (size_t j = 0; j < 4; ++j)
        x |= static_cast<uint32_t>(digest[i + j]) << (8 * j);
      // [-1, 1): the top 24 bits, exact in a float.
      out.push_back(static_cast<float>(x >> 8) / 8388608.0f - 1.0f);
    }
  }
  double norm = 0;
  for (auto x : out)
    norm += double{x} * x;
  norm = std::sqrt(norm);
  if (norm > 0)
    for (auto& x : out)
      x = static_cast<float>(x / norm);
  return out;
}

namespace {

/// The inputs of an embeddings request, each as the text its vector is
/// drawn from, with its token estimate.
struct echo_input {
  std::string key;
  uint64_t tokens = 0;
};

echo_input input_of(const nlohmann::ordered_json& item) {
  if (item.is_string()) {
    auto text = item.get<std::string>();
    auto tokens = estimate_tokens(text);
    return {std::move(text), tokens};
  }
  // A list of token ids: its JSON text, one token per id.
  return {json::dump(nlohmann::ordered_json(item)), item.size()};
}

std::vector<echo_input> inputs_of(const nlohmann::ordered_json& input) {
  std::vector<echo_input> out;
  bool many = input.is_array() && !input.empty()
              && (input.front().is_string() || input.front().is_array());
  if (!many) {
    out.push_back(input_of(input));
    return out;
  }
  for (const auto& item : input)
    out.push_back(input_of(item));
  return out;
}

} // namespace

caf::expected<chat_response>
echo_completions_adapter::respond_locally(const chat_payload& request,
                                          const model_config& model,
                                          std::string_view request_id) const {
  const auto& body = request.json();
  auto prompt = body.find("prompt");
  if (prompt == body.end())
    return make_error(errc::invalid_request, "'prompt' is a required property.",
                      "prompt");
  auto created = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  chat_response out;
  auto choices = nlohmann::ordered_json::array();
  size_t index = 0;
  for (auto& item : inputs_of(*prompt)) {
    out.prompt_tokens += item.tokens;
    out.completion_tokens += estimate_tokens(item.key);
    choices.push_back({{"text", std::move(item.key)},
                       {"index", index++},
                       {"logprobs", nullptr},
                       {"finish_reason", "stop"}});
  }
  nlohmann::ordered_json answer = {
    {"id", "cmpl-echo-" + std::string{request_id}},
    {"object", "text_completion"},
    {"created", created},
    {"model", model.alias},
    {"choices", std::move(choices)},
    {"usage",
     {{"prompt_tokens", out.prompt_tokens},
      {"completion_tokens", out.completion_tokens},
      {"total_tokens", out.prompt_tokens + out.completion_tokens}}},
  };
  out.body = json::dump(answer);
  return out;
}

std::string
echo_completions_adapter::whole_to_sse(std::string_view body,
                                       const stream_options& options) const {
  return text_completion_to_sse(body, options);
}

namespace {

/// The text of an Anthropic `content` (or `system`): the string, or its
/// text blocks joined by newlines.
std::string blocks_text(const nlohmann::ordered_json& content) {
  if (content.is_string())
    return content.get<std::string>();
  std::string out;
  if (!content.is_array())
    return out;
  for (const auto& block : content) {
    if (string_or(block, "type") != "text")
      continue;
    if (!out.empty())
      out.push_back('\n');
    out += string_or(block, "text");
  }
  return out;
}

/// The token estimate of a Messages request's `system` and messages, and
/// the text of its last user message.
std::pair<uint64_t, std::string>
messages_facts(const nlohmann::ordered_json& body) {
  uint64_t tokens = 0;
  std::string last_user;
  if (auto system = body.find("system"); system != body.end())
    tokens += estimate_tokens(blocks_text(*system));
  if (auto messages = body.find("messages");
      messages != body.end() && messages->is_array())
    for (const auto& m : *messages) {
      auto content = m.find("content");
      if (!m.is_object() || content == m.end())
        continue;
      auto text = blocks_text(*content);
      tokens += estimate_tokens(text);
      if (string_or(m, "role") == "user")
        last_user = std::move(text);
    }
  return {tokens, std::move(last_user)};
}

} // namespace

caf::expected<chat_response>
echo_messages_adapter::respond_locally(const chat_payload& request,
                                       const model_config& model,
                                       std::string_view request_id) const {
  auto [input_tokens, text] = messages_facts(request.json());
  chat_response out;
  out.prompt_tokens = input_tokens;
  out.completion_tokens = estimate_tokens(text);
  nlohmann::ordered_json answer = {
    {"id", "msg_echo_" + std::string{request_id}},
    {"type", "message"},
    {"role", "assistant"},
    {"model", model.alias},
    {"content", nlohmann::ordered_json::array(
                  {{{"type", "text"}, {"text", std::move(text)}}})},
    {"stop_reason", "end_turn"},
    {"stop_sequence", nullptr},
    {"usage",
     {{"input_tokens", out.prompt_tokens},
      {"output_tokens", out.completion_tokens}}},
  };
  out.body = json::dump(answer);
  return out;
}

std::string
echo_messages_adapter::whole_to_sse(std::string_view body,
                                    const stream_options& options) const {
  return anthropic::message_to_sse(body, options);
}

caf::expected<chat_response> echo_count_tokens_adapter::respond_locally(
  const chat_payload& request, const model_config&, std::string_view) const {
  chat_response out;
  out.prompt_tokens = messages_facts(request.json()).first;
  nlohmann::ordered_json answer = {{"input_tokens", out.prompt_tokens}};
  out.body = json::dump(answer);
  return out;
}

caf::expected<chat_response>
echo_embeddings_adapter::respond_locally(const chat_payload& request,
                                         const model_config& model,
                                         std::string_view) const {
  const auto& body = request.json();
  auto input = body.find("input");
  if (input == body.end())
    return make_error(errc::invalid_request, "'input' is a required property.",
                      "input");
  uint32_t dimensions = 16;
  if (auto d = body.find("dimensions");
      d != body.end() && d->is_number_unsigned())
    dimensions = static_cast<uint32_t>(
      std::min<uint64_t>(d->get<uint64_t>(), max_embedding_dimensions));
  bool base64 = string_or(body, "encoding_format") == "base64";
  chat_response out;
  auto data = nlohmann::ordered_json::array();
  size_t index = 0;
  for (auto& item : inputs_of(*input)) {
    auto v = echo_vector(item.key, dimensions);
    nlohmann::ordered_json embedding;
    if (base64)
      embedding = base64_floats(v);
    else
      embedding = std::move(v);
    data.push_back({{"object", "embedding"},
                    {"index", index++},
                    {"embedding", std::move(embedding)}});
    out.prompt_tokens += item.tokens;
  }
  nlohmann::ordered_json answer = {
    {"object", "list"},
    {"data", std::move(data)},
    {"model", model.alias},
    {"usage",
     {{"prompt_tokens", out.prompt_tokens},
      {"total_tokens", out.prompt_tokens}}},
  };
  out.body = json::dump(answer);
  return out;
}

} // namespace pw::adapters::echo
