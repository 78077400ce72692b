#include "adapters/azure/provider.hpp"

#include "adapters/oauth.hpp"
#include "adapters/openai/provider.hpp"
#include "core/errc.hpp"

#include <cstdlib>
#include <fstream>

namespace pw::adapters::azure {

namespace {

constexpr std::string_view default_api_version = "2024-10-21";
constexpr std::string_view default_authority
  = "https://login.microsoftonline.com";

/// The model's azure settings; defaults (v1 API, api-key) for a model
/// built without them.
const azure_options& options_of(const model_config& model) {
  return options_as<azure_options>(model);
}

class azure_dialect_impl final : public openai::dialect {
public:
  [[nodiscard]] std::string path(const model_config& model,
                                 std::string_view api_path) const override {
    const auto& o = options_of(model);
    std::string out;
    if (!o.deployment.empty())
      out = "/openai/deployments/" + o.deployment + std::string{api_path};
    else
      out = "/openai/v1" + std::string{api_path};
    auto version = !o.api_version.empty() || o.deployment.empty()
                     ? std::string_view{o.api_version}
                     : default_api_version;
    if (!version.empty())
      out += "?api-version=" + std::string{version};
    return out;
  }

  void add_credentials(upstream_request& out,
                       const model_config& model) const override {
    if (options_of(model).entra) {
      if (!model.access_token.empty())
        out.headers.push_back(
          {"Authorization", "Bearer " + model.access_token.reveal()});
    } else if (!model.api_key.empty()) {
      out.headers.push_back({"api-key", model.api_key.reveal()});
    }
  }

  [[nodiscard]] std::optional<upstream_request>
  health_request(const model_config& model) const override {
    const auto& o = options_of(model);
    std::string target = model.target.base_path;
    if (o.deployment.empty())
      target += path(model, "/models");
    else
      target += "/openai/models?api-version="
                + (o.api_version.empty() ? std::string{default_api_version}
                                         : o.api_version);
    auto out = json_get(model, std::move(target));
    add_credentials(out, model);
    return out;
  }

  [[nodiscard]] std::optional<caf::expected<upstream_request>>
  credential_request(const model_config& model) const override {
    const auto& o = options_of(model);
    if (!o.entra)
      return std::nullopt;
    oauth::form form;
    form.add("grant_type", "client_credentials");
    form.add("client_id", o.client_id);
    form.add("scope", o.scope);
    if (!o.federated_token_file.empty()) {
      auto assertion = oauth::read_token_file(o.federated_token_file);
      if (!assertion)
        return caf::expected<upstream_request>{assertion.error()};
      form.add("client_assertion_type",
               "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      form.add("client_assertion", *assertion);
    } else {
      form.add("client_secret", o.client_secret.reveal());
    }
    return caf::expected<upstream_request>{oauth::token_post(
      model, o.authority,
      o.authority.base_path + "/" + o.tenant_id + "/oauth2/v2.0/token",
      form.text())};
  }

  [[nodiscard]] caf::expected<fetched_credential>
  credential_from(const upstream_result& result,
                  const model_config& model) const override {
    const auto& o = options_of(model);
    // What was sent as the secret is scrubbed from the endpoint's text.
    std::string sent = o.client_secret.reveal();
    if (!o.federated_token_file.empty())
      if (auto assertion = oauth::read_token_file(o.federated_token_file))
        sent = std::move(*assertion);
    return oauth::read_token_answer(result, "Microsoft Entra ID", sent);
  }

  [[nodiscard]] bool max_completion_tokens() const override { return true; }
};

/// `entra.<key>` ("" when unset).
std::string entra_key(config_reader& cfg, const YAML::Node& entra,
                      const std::string& path, std::string_view key) {
  if (entra.IsDefined() && entra.IsMap())
    if (auto v = cfg.string(entra, key, path))
      return *v;
  return {};
}

/// The environment variable `name` ("" when unset).
std::string env_value(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string{v} : std::string{};
}

/// `entra.<key>`, else the environment variable `env`, else "".
std::string entra_value(config_reader& cfg, const YAML::Node& entra,
                        const std::string& path, std::string_view key,
                        const char* env) {
  auto v = entra_key(cfg, entra, path, key);
  return v.empty() ? env_value(env) : v;
}

/// The Entra ID settings: `entra` keys, else AZURE_* variables (as the
/// Azure SDKs read them).
void load_entra(config_reader& cfg, azure_options& o) {
  auto path = config_reader::join(cfg.path(), "entra");
  auto node = cfg.root()["entra"];
  if (node.IsDefined() && !node.IsNull()
      && !cfg.check_keys(node, path,
                         {"tenant_id", "client_id", "client_secret",
                          "federated_token_file", "authority_host", "scope"}))
    return;
  o.tenant_id = entra_value(cfg, node, path, "tenant_id", "AZURE_TENANT_ID");
  o.client_id = entra_value(cfg, node, path, "client_id", "AZURE_CLIENT_ID");
  // The secret and the token file go as a pair: either from the config,
  // or from the environment (a client secret first, as the Azure SDKs'
  // EnvironmentCredential reads it).
  auto secret = entra_key(cfg, node, path, "client_secret");
  auto file = entra_key(cfg, node, path, "federated_token_file");
  if (secret.empty() && file.empty()) {
    secret = env_value("AZURE_CLIENT_SECRET");
    if (secret.empty())
      file = env_value("AZURE_FEDERATED_TOKEN_FILE");
  }
  o.client_secret = redacted_string{std::move(secret)};
  o.federated_token_file = std::move(file);
  auto authority
    = entra_value(cfg, node, path, "authority_host", "AZURE_AUTHORITY_HOST");
  if (auto scope = node.IsDefined() && node.IsMap()
                     ? cfg.string(node, "scope", path)
                     : std::optional<std::string>{};
      scope && !scope->empty())
    o.scope = *scope;
  if (o.tenant_id.empty())
    cfg.fail(config_reader::join(path, "tenant_id"),
             "required for Entra ID (or set AZURE_TENANT_ID)");
  else if (!url_safe(o.tenant_id, "-."))
    cfg.fail(config_reader::join(path, "tenant_id"),
             "expected a tenant id or domain (letters, digits, '-', '.')");
  if (o.client_id.empty())
    cfg.fail(config_reader::join(path, "client_id"),
             "required for Entra ID (or set AZURE_CLIENT_ID)");
  if (o.client_secret.empty() && o.federated_token_file.empty())
    cfg.fail(path, "needs client_secret or federated_token_file (or set "
                   "AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE)");
  else if (!o.client_secret.empty() && !o.federated_token_file.empty())
    cfg.fail(path, "set client_secret or federated_token_file, not both");
  else if (!o.federated_token_file.empty()
           && !std::ifstream{o.federated_token_file})
    cfg.fail(config_reader::join(path, "federated_token_file"),
             "cannot read '" + o.federated_token_file + "'");
  auto where = config_reader::join(path, "authority_host");
  if (auto parsed = oauth::parse_token_url(
        authority.empty() ? std::string{default_authority} : authority, where,
        cfg))
    o.authority = std::move(*parsed);
}

provider_options_ptr load(config_reader& cfg, model_config& m) {
  auto o = std::make_shared<azure_options>();
  const auto& node = cfg.root();
  const auto& path = cfg.path();
  if (auto v = cfg.string(node, "deployment", path)) {
    if (!url_safe(*v, "-_."))
      cfg.fail(config_reader::join(path, "deployment"),
               "expected a deployment name (letters, digits, '-', '_', '.')");
    o->deployment = *v;
  }
  if (auto v = cfg.string(node, "api_version", path)) {
    if (!url_safe(*v, "-."))
      cfg.fail(config_reader::join(path, "api_version"),
               "expected a version such as 2024-10-21 or preview");
    o->api_version = *v;
  }
  auto auth = cfg.string(node, "auth", path);
  if (auth && *auth != "api_key" && *auth != "entra")
    cfg.fail(config_reader::join(path, "auth"),
             "expected api_key or entra (got '" + *auth + "')");
  o->entra = auth ? *auth == "entra" : m.api_key.empty();
  if (o->entra && !m.api_key.empty())
    cfg.fail(config_reader::join(path, "api_key"),
             "not used with auth: entra; remove one of them");
  if (!o->entra && m.api_key.empty())
    cfg.fail(config_reader::join(path, "api_key"),
             "required with auth: api_key");
  if (!o->entra && node["entra"].IsDefined())
    cfg.fail(config_reader::join(path, "entra"),
             "set, but auth is api_key (set auth: entra)");
  if (o->entra)
    load_entra(cfg, *o);
  return o;
}

} // namespace

const openai::dialect& azure_dialect() {
  static const azure_dialect_impl d;
  return d;
}

const provider& azure_provider() {
  static const provider p = [] {
    provider out;
    out.name = "azure";
    out.endpoints = openai::compatible_endpoints;
    out.keys = {"deployment", "api_version", "auth", "entra"};
    out.load = &load;
    out.serve = &openai::serve_in<azure_dialect>;
    return out;
  }();
  return p;
}

} // namespace pw::adapters::azure
