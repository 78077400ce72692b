#include "adapters/adapter.hpp"

#include "adapters/provider.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <openssl/evp.h>

#include <bit>

namespace pw::adapters {

adapter::~adapter() = default;

caf::expected<chat_response> adapter::respond_locally(const chat_payload&,
                                                      const model_config& model,
                                                      std::string_view) const {
  return make_error(errc::internal,
                    "provider " + model.provider + " does not answer locally");
}

std::string adapter::whole_to_sse(std::string_view body,
                                  const stream_options& options) const {
  return completion_to_sse(body, options);
}

std::optional<caf::expected<upstream_request>>
adapter::credential_request(const model_config&) const {
  return std::nullopt;
}

caf::expected<fetched_credential>
adapter::credential_from(const upstream_result&, const model_config&) const {
  return make_error(errc::internal, "no credential to fetch");
}

const adapter& adapter_for(std::string_view provider, api_endpoint endpoint) {
  const auto* p = find_provider(provider);
  if (p == nullptr)
    p = find_provider("openai");
  return p->serve(endpoint);
}

const adapter& adapter_for(const model_config& model) {
  return adapter_for(model.provider, api_endpoint::chat);
}

const adapter& adapter_for(const model_config& model, api_endpoint endpoint) {
  return adapter_for(model.provider, endpoint);
}

namespace {

/// Replaces every occurrence of `secret` in `text` with "***".
void scrub(std::string& text, const std::string& secret) {
  if (secret.size() < 4)
    return;
  for (auto pos = text.find(secret); pos != std::string::npos;
       pos = text.find(secret, pos))
    text.replace(pos, secret.size(), "***");
}

std::string status_text(unsigned status) {
  return "HTTP " + std::to_string(status);
}

} // namespace

std::string scrubbed(std::string text, const model_config& model, size_t max) {
  scrub(text, model.api_key.reveal());
  scrub(text, model.access_token.reveal());
  text.resize(utf8_prefix(text, max).size());
  return text;
}

bool is_model_failure(const upstream_result& result) {
  if (result.failure != upstream_failure::none)
    return result.failure != upstream_failure::cancelled
           && result.failure != upstream_failure::internal;
  auto s = result.status;
  return s < 200 || (s >= 300 && s < 400) || s == 408 || s == 429 || s >= 500;
}

namespace {

/// The error for a call that got no status to judge: the client left, the
/// gateway failed or is shutting down, or the provider was not reached.
api_error failure_error(const upstream_result& result,
                        const std::string& alias) {
  api_error err;
  if (result.client_gone) {
    err.code = errc::client_closed;
    err.message = "The client closed the connection";
    return err;
  }
  if (result.failure == upstream_failure::internal) {
    err.code = errc::internal;
    err.message = "The gateway failed while calling the upstream provider "
                  "for model '"
                  + alias + "'; the failure is logged under this request's id";
    return err;
  }
  if (result.failure == upstream_failure::cancelled) {
    err.code = errc::overloaded;
    err.message = "The gateway is shutting down; retry the request";
    return err;
  }
  err.code = errc::upstream_failed;
  if (result.failure == upstream_failure::credentials) {
    err.message = "The gateway has no valid credentials for model '" + alias
                  + "', so the provider was not called: " + result.detail;
    return err;
  }
  auto unreached = result.failure == upstream_failure::connect
                   || result.failure == upstream_failure::tls;
  err.message = "The upstream provider for model '" + alias
                + (unreached ? "' could not be reached: " : "' failed: ")
                + result.detail;
  return err;
}

/// A Retry-After header in seconds, at most a day; 0 unless all digits.
unsigned retry_after_seconds(std::string_view header) {
  unsigned retry = 0;
  for (char c : header) {
    if (c < '0' || c > '9')
      return 0;
    retry = retry * 10 + static_cast<unsigned>(c - '0');
    if (retry > 86400)
      return 86400;
  }
  return retry;
}

/// Copies the message, type, code and param of the provider's error body
/// (`{"error":{...}}`, `{"error":"..."}`, or AWS's `{"message":"..."}`)
/// into `err`.
void take_error_body(std::string_view body, api_error& err) {
  auto parsed = json::parse(body, json::upstream_limits);
  if (!parsed || !parsed->is_object())
    return;
  const auto& doc = *parsed;
  auto take
    = [](const nlohmann::ordered_json& obj, const char* key, std::string& out) {
        if (auto it = obj.find(key); it != obj.end() && it->is_string())
          out = it->get<std::string>();
      };
  auto e = doc.find("error");
  if (e != doc.end() && e->is_object()) {
    take(*e, "message", err.message);
    take(*e, "type", err.type);
    take(*e, "code", err.code_text);
    take(*e, "param", err.param);
  } else if (e != doc.end() && e->is_string()) {
    err.message = e->get<std::string>();
  } else {
    // AWS's services (Bedrock): {"message": "..."}.
    take(doc, "message", err.message);
  }
}

/// A 4xx the provider blames on the request: relays its status and message.
api_error rejected_error(const upstream_result& result,
                         const model_config& model) {
  api_error err;
  auto s = result.status;
  err.code = errc::upstream_rejected;
  err.status = s;
  if (s == 401 || s == 403) {
    err.message = "The upstream provider for model '" + model.alias
                  + "' rejected the gateway's credentials (" + status_text(s)
                  + "); contact the gateway operator";
    err.type = "upstream_auth_error";
    return err;
  }
  err.message = "The upstream provider for model '" + model.alias
                + "' rejected the request (" + status_text(s) + ")";
  take_error_body(result.body, err);
  // Every relayed field is scrubbed of the key first, then bounded, so a
  // key cut by the bound cannot survive in part.
  for (auto* field : {&err.message, &err.type, &err.code_text, &err.param})
    *field
      = scrubbed(std::move(*field), model, field == &err.message ? 2000 : 128);
  return err;
}

} // namespace

api_error upstream_error(const upstream_result& result,
                         const model_config& model) {
  if (result.client_gone || result.failure != upstream_failure::none)
    return failure_error(result, model.alias);
  api_error err;
  const auto& alias = model.alias;
  auto s = result.status;
  if (s == 429) {
    err.code = errc::upstream_rate_limited;
    err.message = "The upstream provider for model '" + alias
                  + "' is rate limiting requests; retry later";
    err.retry_after = retry_after_seconds(result.retry_after);
    return err;
  }
  if (s == 529) {
    // Anthropic's "overloaded": the provider asks for patience, not a fix.
    err.code = errc::upstream_overloaded;
    err.message = "The upstream provider for model '" + alias
                  + "' is overloaded; retry later";
    return err;
  }
  if (is_model_failure(result)) {
    err.code = errc::upstream_failed;
    err.message = "The upstream provider for model '" + alias + "' failed ("
                  + status_text(s) + ")";
    return err;
  }
  return rejected_error(result, model);
}

std::optional<upstream_request>
adapter::health_request(const model_config&) const {
  return std::nullopt;
}

upstream_request json_post(const model_config& model, std::string_view path,
                           std::string body) {
  upstream_request out;
  out.target = model.target;
  out.ca_file = model.ca_file;
  out.method = "POST";
  out.path = model.target.base_path + std::string{path};
  out.headers.push_back({"Content-Type", "application/json"});
  out.headers.push_back({"Accept", "application/json"});
  out.body = std::move(body);
  out.connect_timeout = to_ms(model.connect_timeout);
  out.timeout = to_ms(model.timeout);
  out.first_byte_timeout = to_ms(model.first_byte_timeout);
  return out;
}

upstream_request json_get(const model_config& model, std::string path) {
  upstream_request out;
  out.target = model.target;
  out.ca_file = model.ca_file;
  out.method = "GET";
  out.path = std::move(path);
  out.headers.push_back({"Accept", "application/json"});
  out.connect_timeout = to_ms(model.connect_timeout);
  return out;
}

std::string body_with_model(const chat_payload& request,
                            std::string_view model) {
  if (!request.raw().empty())
    if (auto spliced = with_top_level_string(request.raw(), "model", model))
      return std::move(*spliced);
  // Re-serialise member by member, so the document is never copied.
  const auto& doc = request.json();
  std::string out;
  out.reserve(request.raw().size() + 64);
  out.push_back('{');
  bool first = true;
  bool wrote_model = false;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (!first)
      out.push_back(',');
    first = false;
    append_json_string(out, it.key());
    out.push_back(':');
    if (it.key() == "model") {
      append_json_string(out, model);
      wrote_model = true;
    } else {
      out += json::dump(it.value());
    }
  }
  if (!wrote_model) {
    if (!first)
      out.push_back(',');
    out += "\"model\":";
    append_json_string(out, model);
  }
  out.push_back('}');
  return out;
}

std::string with_alias(std::string_view text, simdjson::dom::element root,
                       std::string_view alias) {
  if (auto spliced = with_top_level_string(text, "model", alias))
    return std::move(*spliced);
  auto doc = json::to_document(root);
  doc["model"] = alias;
  return json::dump(doc);
}

caf::error malformed_answer(const model_config& model, std::string_view why) {
  return make_error(errc::upstream_invalid,
                    "The upstream provider for model '" + model.alias
                      + "' returned a malformed response (" + std::string{why}
                      + ")");
}

std::string base64_floats(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    auto bits = std::bit_cast<uint32_t>(v[i]);
    for (size_t j = 0; j < 4; ++j)
      bytes[4 * i + j] = static_cast<char>((bits >> (8 * j)) & 0xff);
  }
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(bytes.data()),
                           static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

} // namespace pw::adapters
