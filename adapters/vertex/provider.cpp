#include "adapters/vertex/provider.hpp"

#include "adapters/anthropic/anthropic_adapter.hpp"
#include "adapters/anthropic/messages_adapter.hpp"
#include "adapters/oauth.hpp"
#include "adapters/openai/provider.hpp"
#include "core/errc.hpp"
#include "core/json/reader.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pw::adapters::vertex {

namespace {

/// Anthropic's API version on Vertex, sent in the body.
constexpr std::string_view anthropic_version = "vertex-2023-10-16";

/// A credentials file larger than this is not one.
constexpr size_t max_credentials_file = 1024 * 1024;

const vertex_options& options_of(const model_config& model) {
  return options_as<vertex_options>(model);
}

/// `/v1/projects/{project}/locations/{region}`.
std::string location_path(const vertex_options& o) {
  return "/v1/projects/" + o.project + "/locations/" + o.region;
}

void add_token(upstream_request& out, const model_config& model) {
  if (!model.access_token.empty())
    out.headers.push_back(
      {"Authorization", "Bearer " + model.access_token.reveal()});
}

std::optional<caf::expected<upstream_request>>
token_request(const model_config& model) {
  const auto& o = options_of(model);
  if (model.options == nullptr)
    return std::nullopt;
  oauth::form form;
  if (o.kind == credential_kind::service_account) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
    nlohmann::json header{{"alg", "RS256"}, {"typ", "JWT"}};
    if (!o.private_key_id.empty())
      header["kid"] = o.private_key_id;
    nlohmann::json claims{{"iss", o.client_email},
                          {"scope", o.scope},
                          {"aud", o.token_url},
                          {"iat", now},
                          {"exp", now + 3600}};
    auto jwt = oauth::rs256_jwt(o.private_key.reveal(), header, claims);
    if (!jwt)
      return caf::expected<upstream_request>{jwt.error()};
    form.add("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
    form.add("assertion", *jwt);
  } else {
    auto subject = oauth::read_token_file(o.subject_token_file);
    if (!subject)
      return caf::expected<upstream_request>{subject.error()};
    form.add("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
    form.add("audience", o.audience);
    form.add("scope", o.scope);
    form.add("requested_token_type",
             "urn:ietf:params:oauth:token-type:access_token");
    form.add("subject_token", *subject);
    form.add("subject_token_type", o.subject_token_type);
  }
  return caf::expected<upstream_request>{oauth::token_post(
    model, o.token_endpoint, o.token_endpoint.base_path, form.text())};
}

caf::expected<fetched_credential> token_from(const upstream_result& result,
                                             const model_config& model) {
  const auto& o = options_of(model);
  std::string sent;
  if (o.kind == credential_kind::external_account)
    if (auto subject = oauth::read_token_file(o.subject_token_file))
      sent = std::move(*subject);
  return oauth::read_token_answer(result, "Google", sent);
}

/// Gemini and other Google models: Vertex's OpenAI-compatible endpoint.
class google_dialect final : public openai::dialect {
public:
  [[nodiscard]] std::string path(const model_config& model,
                                 std::string_view api_path) const override {
    return location_path(options_of(model)) + "/endpoints/openapi"
           + std::string{api_path};
  }

  void add_credentials(upstream_request& out,
                       const model_config& model) const override {
    add_token(out, model);
  }

  /// Vertex has no cheap listing on this endpoint: no health check.
  [[nodiscard]] std::optional<upstream_request>
  health_request(const model_config&) const override {
    return std::nullopt;
  }

  [[nodiscard]] std::optional<caf::expected<upstream_request>>
  credential_request(const model_config& model) const override {
    return token_request(model);
  }

  [[nodiscard]] caf::expected<fetched_credential>
  credential_from(const upstream_result& result,
                  const model_config& model) const override {
    return token_from(result, model);
  }
};

const openai::dialect& google() {
  static const google_dialect d;
  return d;
}

/// An Anthropic request made for Anthropic's API, moved to Vertex: the
/// body without `model` and with Vertex's `anthropic_version`, sent to
/// the model's rawPredict (streamRawPredict for a stream) with the token.
caf::expected<upstream_request>
to_vertex(caf::expected<upstream_request> request, const model_config& model) {
  if (!request)
    return request;
  auto body = json::parse(request->body, json::upstream_limits);
  if (!body || !body->is_object())
    return make_error(errc::internal,
                      "the Anthropic request for Vertex is not an object");
  body->erase("model");
  (*body)["anthropic_version"] = anthropic_version;
  auto stream = body->find("stream");
  bool streams
    = stream != body->end() && stream->is_boolean() && stream->get<bool>();
  request->body = json::dump(*body);
  const auto& o = options_of(model);
  request->path = model.target.base_path + location_path(o)
                  + "/publishers/anthropic/models/" + model.model
                  + (streams ? ":streamRawPredict" : ":rawPredict");
  std::erase_if(request->headers, [](const header_field& h) {
    return h.name == "anthropic-version" || h.name == "x-api-key";
  });
  add_token(*request, model);
  return request;
}

/// Serves one endpoint: Google's models through the OpenAI adapter in
/// Vertex's dialect (`google_side`), Anthropic's through Anthropic's
/// adapter moved to Vertex (`anthropic_side`).
class vertex_adapter final : public adapter {
public:
  vertex_adapter(const adapter& google_side, const adapter& anthropic_side)
      : google_(google_side), anthropic_(anthropic_side) {}

  caf::expected<upstream_request>
  to_provider_request(const chat_payload& request,
                      const model_config& model) const override {
    if (!is_anthropic(model))
      return google_.to_provider_request(request, model);
    return to_vertex(anthropic_.to_provider_request(request, model), model);
  }

  caf::expected<chat_response>
  from_provider_response(const upstream_result& result,
                         const model_config& model) const override {
    return side(model).from_provider_response(result, model);
  }

  std::unique_ptr<stream_decoder>
  make_stream_decoder(model_config_ptr model,
                      stream_options options) const override {
    const auto& s = side(*model);
    return s.make_stream_decoder(std::move(model), std::move(options));
  }

  [[nodiscard]] std::optional<upstream_request>
  health_request(const model_config&) const override {
    return std::nullopt;
  }

  [[nodiscard]] std::optional<caf::expected<upstream_request>>
  credential_request(const model_config& model) const override {
    return token_request(model);
  }

  [[nodiscard]] caf::expected<fetched_credential>
  credential_from(const upstream_result& result,
                  const model_config& model) const override {
    return token_from(result, model);
  }

  /// Both sides answer in the client's format for this endpoint, so their
  /// whole answers stream alike.
  [[nodiscard]] std::string
  whole_to_sse(std::string_view body,
               const stream_options& options) const override {
    return google_.whole_to_sse(body, options);
  }

private:
  static bool is_anthropic(const model_config& model) {
    return options_of(model).publisher == publisher::anthropic;
  }

  [[nodiscard]] const adapter& side(const model_config& model) const {
    return is_anthropic(model) ? anthropic_ : google_;
  }

  const adapter& google_;
  const adapter& anthropic_;
};

const adapter& serve(api_endpoint endpoint) {
  static const anthropic::anthropic_adapter anthropic_chat;
  static const anthropic::messages_adapter anthropic_messages;
  static const vertex_adapter chat{openai::serve_in<google>(api_endpoint::chat),
                                   anthropic_chat};
  static const vertex_adapter messages{
    openai::serve_in<google>(api_endpoint::messages), anthropic_messages};
  return endpoint == api_endpoint::messages ? messages : chat;
}

/// Reads a Google credentials file (service_account or external_account).
void load_credentials(config_reader& cfg, const std::string& where,
                      const std::string& file, vertex_options& o) {
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    cfg.fail(where, "cannot read '" + file + "'");
    return;
  }
  std::string text(max_credentials_file + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  auto doc = json::parse(text, json::client_limits);
  if (text.size() > max_credentials_file || !doc || !doc->is_object()) {
    cfg.fail(where, "'" + file + "' is not a Google credentials file (JSON)");
    return;
  }
  auto str = [&](const char* key) {
    auto it = doc->find(key);
    return it != doc->end() && it->is_string() ? it->get<std::string>()
                                               : std::string{};
  };
  auto type = str("type");
  std::string token_url;
  if (type == "service_account") {
    o.kind = credential_kind::service_account;
    o.client_email = str("client_email");
    o.private_key_id = str("private_key_id");
    o.private_key = redacted_string{str("private_key")};
    token_url = str("token_uri");
    if (token_url.empty())
      token_url = "https://oauth2.googleapis.com/token";
    if (o.client_email.empty())
      cfg.fail(where, "'" + file + "' has no client_email");
    if (!oauth::readable_rsa_key(o.private_key.reveal()))
      cfg.fail(where, "'" + file + "' has no RSA private_key OpenSSL can read");
  } else if (type == "external_account") {
    o.kind = credential_kind::external_account;
    o.audience = str("audience");
    o.subject_token_type = str("subject_token_type");
    token_url = str("token_url");
    auto source = doc->find("credential_source");
    if (source != doc->end() && source->is_object())
      if (auto f = source->find("file"); f != source->end() && f->is_string())
        o.subject_token_file = f->get<std::string>();
    if (o.audience.empty() || o.subject_token_type.empty() || token_url.empty())
      cfg.fail(where, "'" + file
                        + "' needs audience, subject_token_type and "
                          "token_url");
    if (o.subject_token_file.empty())
      cfg.fail(where, "'" + file
                        + "': only a credential_source with a file is "
                          "supported");
    else if (!std::ifstream{o.subject_token_file})
      cfg.fail(where, "'" + file + "': cannot read its token file '"
                        + o.subject_token_file + "'");
    if (!str("service_account_impersonation_url").empty())
      cfg.fail(where, "'" + file
                        + "': service account impersonation is not "
                          "supported (grant the federated identity access "
                          "to Vertex AI directly)");
  } else {
    cfg.fail(where, "'" + file + "' is of type '" + type
                      + "'; expected service_account or external_account");
    return;
  }
  o.token_url = token_url;
  if (auto parsed = oauth::parse_token_url(token_url, where, cfg))
    o.token_endpoint = std::move(*parsed);
}

provider_options_ptr load(config_reader& cfg, model_config& m) {
  auto o = std::make_shared<vertex_options>();
  const auto& node = cfg.root();
  const auto& path = cfg.path();
  auto join
    = [&](std::string_view key) { return config_reader::join(path, key); };
  if (auto v = cfg.string(node, "project", path, true)) {
    if (!url_safe(*v, "-.:"))
      cfg.fail(join("project"), "expected a project id (letters, digits, "
                                "'-', '.', ':')");
    o->project = *v;
  }
  if (auto v = cfg.string(node, "region", path, true)) {
    if (!url_safe(*v, "-"))
      cfg.fail(join("region"),
               "expected a region such as us-central1 or global");
    o->region = *v;
  }
  auto pub = cfg.string(node, "publisher", path);
  if (pub && *pub != "google" && *pub != "anthropic")
    cfg.fail(join("publisher"),
             "expected google or anthropic (got '" + *pub + "')");
  o->publisher
    = pub ? (*pub == "anthropic" ? publisher::anthropic : publisher::google)
          : (m.model.starts_with("claude") ? publisher::anthropic
                                           : publisher::google);
  if (o->publisher == publisher::anthropic && !m.model.empty()
      && !url_safe(m.model, "-_.@"))
    cfg.fail(join("model"), "an Anthropic model id on Vertex goes in the "
                            "URL: letters, digits, '-', '_', '.', '@'");
  if (!m.api_key.empty())
    cfg.fail(join("api_key"), "not used by vertex (it authenticates with "
                              "credentials_file)");
  auto file = cfg.string(node, "credentials_file", path);
  std::string credentials = file ? *file : std::string{};
  if (credentials.empty())
    if (const char* env = std::getenv("GOOGLE_APPLICATION_CREDENTIALS"))
      credentials = env;
  if (credentials.empty())
    cfg.fail(join("credentials_file"),
             "required (or set GOOGLE_APPLICATION_CREDENTIALS)");
  else
    load_credentials(cfg, join("credentials_file"), credentials, *o);
  if (m.base_url.empty() && !o->region.empty())
    m.base_url = o->region == "global"
                   ? std::string{"https://aiplatform.googleapis.com"}
                   : "https://" + o->region + "-aiplatform.googleapis.com";
  return o;
}

} // namespace

const provider& vertex_provider() {
  static const provider p = [] {
    provider out;
    out.name = "vertex";
    out.endpoints = {api_endpoint::chat, api_endpoint::messages};
    out.keys = {"project", "region", "publisher", "credentials_file"};
    out.load = &load;
    out.serve = &serve;
    return out;
  }();
  return p;
}

} // namespace pw::adapters::vertex
