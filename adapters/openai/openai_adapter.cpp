#include "adapters/openai/openai_adapter.hpp"

#include "adapters/openai/openai_wire.hpp"

namespace pw::adapters::openai {

namespace {

uint64_t token_count(const nlohmann::ordered_json& usage,
                     std::string_view key) {
  auto it = usage.find(key);
  if (it == usage.end() || !it->is_number_unsigned())
    return 0;
  return it->get<uint64_t>();
}

} // namespace

caf::expected<upstream_request>
openai_adapter::to_provider_request(const nlohmann::ordered_json& request,
                                    const model_config& model) const {
  upstream_request out;
  out.target = model.target;
  out.ca_file = model.ca_file;
  out.method = "POST";
  out.path = model.target.base_path + std::string{wire::chat_path};
  out.headers.push_back({"Content-Type", "application/json"});
  out.headers.push_back({"Accept", "application/json"});
  // A model without a key (self-hosted vLLM, Ollama) sends no credentials.
  if (!model.api_key.empty())
    out.headers.push_back(
        {"Authorization", "Bearer " + model.api_key.reveal()});
  // Every field the client sent goes through; only the model id changes.
  out.body = dump_with_model(request, model.model);
  out.connect_timeout = to_ms(model.connect_timeout);
  out.timeout = to_ms(model.timeout);
  return out;
}

caf::expected<chat_response>
openai_adapter::from_provider_response(const upstream_result& result,
                                       const model_config& model) const {
  auto doc = nlohmann::ordered_json::parse(result.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return make_error(errc::upstream_failed,
                      "The upstream provider for model '" + model.alias
                          + "' returned a malformed response (not a JSON "
                            "object)");
  auto choices = doc.find(wire::choices);
  if (choices == doc.end() || !choices->is_array())
    return make_error(errc::upstream_failed,
                      "The upstream provider for model '" + model.alias
                          + "' returned a malformed response (no 'choices')");
  chat_response out;
  if (auto usage = doc.find(wire::usage);
      usage != doc.end() && usage->is_object()) {
    out.prompt_tokens = token_count(*usage, wire::prompt_tokens);
    out.completion_tokens = token_count(*usage, wire::completion_tokens);
  }
  doc[wire::model] = model.alias;
  out.body = std::move(doc);
  return out;
}

} // namespace pw::adapters::openai
