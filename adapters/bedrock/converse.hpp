#pragma once

// Bedrock's Converse API <-> Anthropic's Messages API. Bedrock is reached
// through the Anthropic adapters: a chat request becomes an Anthropic
// Messages request as for `anthropic` (or arrives as one, on the Messages
// API), is rewritten into a Converse request here, and Converse's answer
// and its ConverseStream events are rewritten into Anthropic's message and
// events, which the Anthropic adapters then turn into the client's API.
// The usual chat request (anthropic::simple_chat) and every whole chat
// answer skip the Anthropic step: they are written straight from the
// bytes they came as, the same bytes the documents would give
// (docs/performance.md, "Bedrock").

#include "adapters/adapter.hpp"
#include "adapters/anthropic/anthropic_adapter.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace pw::adapters::bedrock {

/// A Messages request document (one the Anthropic translation made, or a
/// client's that passed check_messages_request) as a Converse request:
/// `system`, `messages` (text, base64 images, tool uses and results),
/// `inferenceConfig` (maxTokens, temperature, topP, stopSequences) and
/// `toolConfig`. What Converse has no place for is dropped (`metadata`,
/// `thinking`, `top_k`, `cache_control`); what would change the answer is
/// refused (`invalid_request` with the field as `param`: an image by URL,
/// a document, a server tool).
caf::expected<nlohmann::ordered_json>
to_converse(const nlohmann::ordered_json& messages_request);

/// The Converse request for a simple chat request: the same bytes as
/// `json::dump(*to_converse(*anthropic::to_messages_request(...)))`.
std::string simple_converse_request(const anthropic::simple_chat& chat);

/// A Converse answer as an OpenAI chat.completion under the model's alias,
/// with the id "chatcmpl-msg_bedrock_" + `id`; `upstream_invalid` when it
/// is not a Converse answer.
caf::expected<chat_response> to_chat_completion(std::string_view converse,
                                                const model_config& model,
                                                std::string_view id,
                                                int64_t created);

/// A Converse answer as an Anthropic message (JSON text) with `model`'s
/// id and `id`; `upstream_invalid` when it is not a Converse answer.
caf::expected<std::string> to_anthropic_message(std::string_view converse,
                                                const model_config& model,
                                                std::string_view id);

/// Wraps `inner`, an Anthropic stream decoder (the chat translator or the
/// Messages relay): ConverseStream's event-stream messages in, Anthropic's
/// SSE events out to `inner`.
std::unique_ptr<stream_decoder>
converse_stream(std::unique_ptr<stream_decoder> inner, stream_options options,
                std::string model_id);

/// Bedrock's stopReason as Anthropic's stop_reason.
std::string_view stop_reason_of(std::string_view converse_reason);

} // namespace pw::adapters::bedrock
