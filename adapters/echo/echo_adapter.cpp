#include "adapters/echo/echo_adapter.hpp"

#include "core/json/get.hpp"
#include "core/json/reader.hpp"

#include <chrono>

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
echo_adapter::to_provider_request(const chat_payload&,
                                  const model_config&) const {
  return make_error(errc::internal, "the echo provider makes no upstream call");
}

caf::expected<chat_response>
echo_adapter::from_provider_response(const upstream_result&,
                                     const model_config&) const {
  return make_error(errc::internal, "the echo provider makes no upstream call");
}

std::unique_ptr<stream_decoder>
echo_adapter::make_stream_decoder(model_config_ptr, stream_options) const {
  return nullptr;
}

} // namespace pw::adapters::echo
