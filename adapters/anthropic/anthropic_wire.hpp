#pragma once

// Names and values of Anthropic's Messages API (2023-06-01), spelled once.

#include <string_view>

namespace pw::adapters::anthropic::wire {

constexpr std::string_view messages_path = "/v1/messages";
constexpr std::string_view count_tokens_path = "/v1/messages/count_tokens";
constexpr std::string_view beta_header = "anthropic-beta";
constexpr std::string_view models_path = "/v1/models";
constexpr std::string_view version_header = "anthropic-version";
constexpr std::string_view version = "2023-06-01";
constexpr std::string_view key_header = "x-api-key";

// Event types of a streamed answer.
constexpr std::string_view message_start = "message_start";
constexpr std::string_view content_block_start = "content_block_start";
constexpr std::string_view content_block_delta = "content_block_delta";
constexpr std::string_view content_block_stop = "content_block_stop";
constexpr std::string_view message_delta = "message_delta";
constexpr std::string_view message_stop = "message_stop";
constexpr std::string_view ping = "ping";
constexpr std::string_view error = "error";

// Content block and delta types.
constexpr std::string_view text = "text";
constexpr std::string_view tool_use = "tool_use";
constexpr std::string_view tool_result = "tool_result";
constexpr std::string_view image = "image";
constexpr std::string_view text_delta = "text_delta";
constexpr std::string_view input_json_delta = "input_json_delta";

} // namespace pw::adapters::anthropic::wire
