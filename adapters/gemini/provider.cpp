#include "adapters/gemini/provider.hpp"

#include "adapters/openai/provider.hpp"

namespace pw::adapters::gemini {

namespace {

/// Gemini's OpenAI-compatible API: the OpenAI wire format with the key as
/// a bearer token, `max_tokens` as sent, `/models` for the health check.
class gemini_dialect_impl final : public openai::dialect {};

const openai::dialect& gemini_dialect() {
  static const gemini_dialect_impl d;
  return d;
}

provider_options_ptr load(config_reader& cfg, model_config& m) {
  if (m.api_key.empty())
    cfg.fail(config_reader::join(cfg.path(), "api_key"),
             "required for the gemini provider (a Gemini API key)");
  return nullptr;
}

} // namespace

const provider& gemini_provider() {
  static const provider p = [] {
    provider out;
    out.name = "gemini";
    out.default_base_url
      = "https://generativelanguage.googleapis.com/v1beta/openai";
    // Gemini's compatibility layer has no legacy text completions.
    out.endpoints
      = {api_endpoint::chat, api_endpoint::embeddings, api_endpoint::messages};
    out.load = &load;
    out.serve = &openai::serve_in<gemini_dialect>;
    return out;
  }();
  return p;
}

} // namespace pw::adapters::gemini
