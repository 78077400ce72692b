#include "adapters/bedrock/embeddings.hpp"

#include "adapters/bedrock/provider.hpp"
#include "adapters/bedrock/sigv4.hpp"
#include "core/errc.hpp"
#include "core/json/get.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <vector>

namespace pw::adapters::bedrock {

namespace {

using doc = nlohmann::ordered_json;
using simdjson::dom::element;
using simdjson::dom::element_type;

caf::error invalid(std::string message, std::string param) {
  return make_error(errc::invalid_request, std::move(message),
                    std::move(param));
}

/// The answer_note: the encoding asked for and the number of inputs,
/// e.g. "base64 2".
std::string note_of(bool base64, size_t inputs) {
  return (base64 ? "base64 " : "float ") + std::to_string(inputs);
}

/// Cohere's input types (its API refuses others).
constexpr std::string_view cohere_input_types[]
  = {"search_document", "search_query", "classification", "clustering"};

/// The dimensions Titan Text Embeddings V2 can give.
constexpr uint64_t titan_v2_dimensions[] = {256, 512, 1024};

/// The texts of `input`, or an error for token ids.
caf::expected<std::vector<std::string>> texts_of(const doc& request) {
  auto input = request.find("input");
  if (input == request.end())
    return invalid("'input' is required", "input");
  std::vector<std::string> out;
  if (input->is_string()) {
    out.push_back(input->get<std::string>());
    return out;
  }
  if (input->is_array())
    for (const auto& item : *input) {
      if (!item.is_string())
        return invalid("Bedrock's embedding models take text, not token ids",
                       "input");
      out.push_back(item.get<std::string>());
    }
  if (out.empty())
    return invalid("'input' must be a string or a list of strings", "input");
  return out;
}

/// Appends `v` (a number) as JSON, in the shortest form that reads back.
void append_number(std::string& out, double v) {
  char digits[32];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  if (ec != std::errc{})
    out += '0';
  else
    out.append(digits, end);
}

/// One vector of the answer, appended to `out` as floats or base64.
bool append_vector(std::string& out, element vector, bool base64) {
  simdjson::dom::array values;
  if (vector.get(values) != simdjson::SUCCESS)
    return false;
  if (base64) {
    std::vector<float> floats;
    floats.reserve(values.size());
    for (element v : values) {
      double d = 0;
      if (v.get_double().get(d) != simdjson::SUCCESS)
        return false;
      floats.push_back(static_cast<float>(d));
    }
    append_json_string(out, base64_floats(floats));
    return true;
  }
  out += '[';
  bool first = true;
  for (element v : values) {
    double d = 0;
    if (v.get_double().get(d) != simdjson::SUCCESS)
      return false;
    if (!first)
      out += ',';
    first = false;
    append_number(out, d);
  }
  out += ']';
  return true;
}

} // namespace

embedding_family embedding_family_of(std::string_view model_id) {
  if (model_id.find("titan-embed") != std::string_view::npos)
    return embedding_family::titan;
  if (model_id.find("cohere.embed") != std::string_view::npos)
    return embedding_family::cohere;
  return embedding_family::none;
}

caf::expected<std::string>
to_invoke_request(const nlohmann::ordered_json& request,
                  std::string_view model_id) {
  auto texts = texts_of(request);
  if (!texts)
    return texts.error();
  auto dimensions = request.find("dimensions");
  bool has_dimensions
    = dimensions != request.end() && dimensions->is_number_unsigned();
  auto no_dimensions = [&](std::string_view which) {
    return invalid("'" + std::string{model_id} + "' takes no dimensions"
                     + std::string{which},
                   "dimensions");
  };
  doc out = doc::object();
  switch (embedding_family_of(model_id)) {
  case embedding_family::titan:
    if (texts->size() != 1)
      return invalid("Titan embedding models on Bedrock embed one text per "
                     "request: send one string",
                     "input");
    out["inputText"] = std::move(texts->front());
    if (has_dimensions) {
      if (model_id.find("titan-embed-text-v2") == std::string_view::npos)
        return no_dimensions(" (Titan Text Embeddings V2 does)");
      auto n = dimensions->get<uint64_t>();
      if (std::find(std::begin(titan_v2_dimensions),
                    std::end(titan_v2_dimensions), n)
          == std::end(titan_v2_dimensions))
        return invalid("Titan Text Embeddings V2 gives 256, 512 or 1024 "
                       "dimensions",
                       "dimensions");
      out["dimensions"] = n;
    }
    break;
  case embedding_family::cohere: {
    if (texts->size() > max_cohere_inputs)
      return invalid("Cohere Embed on Bedrock takes at most "
                       + std::to_string(max_cohere_inputs)
                       + " inputs per request",
                     "input");
    out["texts"] = std::move(*texts);
    auto type = request.find("input_type");
    if (type == request.end() || type->is_null()) {
      out["input_type"] = "search_document";
    } else if (!type->is_string()
               || std::find(std::begin(cohere_input_types),
                            std::end(cohere_input_types),
                            type->get<std::string>())
                    == std::end(cohere_input_types)) {
      return invalid("Cohere's input_type is one of search_document, "
                     "search_query, classification, clustering",
                     "input_type");
    } else {
      out["input_type"] = *type;
    }
    if (has_dimensions) {
      if (model_id.find("embed-v4") == std::string_view::npos)
        return no_dimensions(" (Cohere Embed v4 does)");
      out["output_dimension"] = *dimensions;
    }
    break;
  }
  case embedding_family::none:
    return invalid("Bedrock embeddings are translated for Amazon Titan Text "
                   "Embeddings and Cohere Embed models only",
                   "model");
  }
  return json::dump(out);
}

caf::expected<chat_response> to_embeddings_list(std::string_view body,
                                                const model_config& model,
                                                bool base64, size_t inputs,
                                                uint64_t header_tokens) {
  auto read = json::read(body, json::upstream_limits);
  if (!read)
    return malformed_answer(model, read.error().what(json::upstream_limits));
  auto root = read->root();
  if (root.type() != element_type::OBJECT)
    return malformed_answer(model, "not a JSON object");
  // Titan: one `embedding`; Cohere: `embeddings`, a list of vectors or
  // (with embedding_types) an object whose `float` is that list.
  std::vector<element> vectors;
  if (auto one = json::member(root, "embedding")) {
    vectors.push_back(*one);
  } else if (auto many = json::member(root, "embeddings")) {
    auto list = *many;
    if (list.type() == element_type::OBJECT) {
      auto floats = json::member(list, "float");
      if (!floats)
        return malformed_answer(model, "no 'embeddings.float' list");
      list = *floats;
    }
    simdjson::dom::array items;
    if (list.get(items) != simdjson::SUCCESS)
      return malformed_answer(model, "'embeddings' is not a list");
    for (element v : items)
      vectors.push_back(v);
  } else {
    return malformed_answer(model, "no 'embedding' or 'embeddings'");
  }
  if (vectors.empty())
    return malformed_answer(model, "no embeddings");
  if (inputs > 0 && vectors.size() != inputs)
    return malformed_answer(model, std::to_string(vectors.size())
                                     + " embeddings for "
                                     + std::to_string(inputs) + " inputs");
  chat_response out;
  out.prompt_tokens = json::uint_of(root, "inputTextTokenCount", header_tokens);
  auto& text = out.body;
  text += R"({"object":"list","data":[)";
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (i > 0)
      text += ',';
    text += R"({"object":"embedding","index":)";
    append_integer(text, i);
    text += R"(,"embedding":)";
    if (!append_vector(text, vectors[i], base64))
      return malformed_answer(model,
                              "an embedding that is not a list of numbers");
    text += '}';
  }
  text += R"(],"model":)";
  append_json_string(text, model.alias);
  text += R"(,"usage":{"prompt_tokens":)";
  append_integer(text, out.prompt_tokens);
  text += R"(,"total_tokens":)";
  append_integer(text, out.prompt_tokens);
  text += "}}";
  return out;
}

caf::expected<upstream_request>
embeddings_adapter::to_provider_request(const chat_payload& request,
                                        const model_config& model) const {
  const auto& body = request.json();
  auto invoke = to_invoke_request(body, model.model);
  if (!invoke)
    return invoke.error();
  auto out
    = json_post(model, "/model/" + uri_encoded(model.model, false) + "/invoke",
                std::move(*invoke));
  // What the answer is read with: the encoding asked for, and how many
  // vectors must come back.
  auto input = body.find("input");
  size_t inputs = input != body.end() && input->is_array() ? input->size() : 1;
  out.answer_note
    = note_of(string_or(body, "encoding_format") == "base64", inputs);
  out.answer_headers.emplace_back(input_tokens_header);
  sign(out, credentials_of(model), options_as<bedrock_options>(model).region,
       "bedrock",
       std::chrono::duration_cast<std::chrono::seconds>(
         std::chrono::system_clock::now().time_since_epoch())
         .count());
  return out;
}

caf::expected<chat_response>
embeddings_adapter::from_provider_response(const upstream_result& result,
                                           const model_config& model) const {
  uint64_t header_tokens = 0;
  for (const auto& h : result.answer_headers)
    if (h.name == input_tokens_header) {
      auto first = h.value.data();
      std::from_chars(first, first + h.value.size(), header_tokens);
    }
  const auto& note = result.answer_note;
  auto space = note.find(' ');
  size_t inputs = 0;
  if (space != std::string::npos)
    std::from_chars(note.data() + space + 1, note.data() + note.size(), inputs);
  return to_embeddings_list(result.body, model, note.starts_with("base64 "),
                            inputs, header_tokens);
}

std::unique_ptr<stream_decoder>
embeddings_adapter::make_stream_decoder(model_config_ptr,
                                        stream_options) const {
  return nullptr;
}

} // namespace pw::adapters::bedrock
