#pragma once

// Field names and paths of the OpenAI chat completions wire format, spelled
// once. vLLM and Ollama (/v1) speak the same format.

#include <string_view>

namespace pw::adapters::openai::wire {

constexpr std::string_view chat_path = "/chat/completions";
constexpr std::string_view completions_path = "/completions";
constexpr std::string_view embeddings_path = "/embeddings";
constexpr std::string_view data = "data";
constexpr std::string_view models_path = "/models";
constexpr std::string_view model = "model";
constexpr std::string_view choices = "choices";
constexpr std::string_view usage = "usage";
constexpr std::string_view message = "message";
constexpr std::string_view tool_calls = "tool_calls";
constexpr std::string_view prompt_tokens = "prompt_tokens";
constexpr std::string_view completion_tokens = "completion_tokens";

} // namespace pw::adapters::openai::wire
