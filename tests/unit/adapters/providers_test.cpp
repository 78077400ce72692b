// The providers: the registry (names, the catalog the config loader reads,
// the adapter each serves per endpoint), the azure and gemini providers'
// own keys as the loader reads them, the requests they build, Microsoft
// Entra ID token requests, and the OAuth token answers they read.

#include "adapters/azure/provider.hpp"
#include "adapters/oauth.hpp"
#include "adapters/provider.hpp"
#include "core/config/config.hpp"
#include "core/errc.hpp"
#include "tests/support/provider_kit.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <unistd.h>

using namespace pw;
using namespace pw::test;

namespace {

// -- config ------------------------------------------------------------------

/// The variables an Entra ID model falls back to (as the Azure SDKs).
constexpr const char* azure_vars[]
  = {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
     "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"};

void clear_azure_env() {
  for (const auto* name : azure_vars)
    ::unsetenv(name);
}

/// No AZURE_* variable while it lives, nor after.
struct no_azure_env {
  no_azure_env() { clear_azure_env(); }
  ~no_azure_env() { clear_azure_env(); }
  no_azure_env(const no_azure_env&) = delete;
  no_azure_env& operator=(const no_azure_env&) = delete;
};

const adapters::azure::azure_options& azure_of(const model_config& m) {
  const auto* o
    = dynamic_cast<const adapters::azure::azure_options*>(m.options.get());
  REQUIRE(o != nullptr);
  return *o;
}

/// An azure model entry: its provider, model id and base_url.
const std::string azure_base
  = "    provider: azure\n"
    "    model: gpt-4o\n"
    "    base_url: \"https://res.openai.azure.com\"\n";

const std::string with_key = "    api_key: \"az-key-123\"\n";

/// An azure model with `auth: entra` and `entra_keys` (each indented six
/// spaces) under `entra`.
std::string azure_entra(const std::string& entra_keys) {
  return azure_base + "    auth: entra\n    entra:\n" + entra_keys;
}

const std::string tenant_and_client = "      tenant_id: t1\n"
                                      "      client_id: c1\n";

const std::string a_secret = "      client_secret: \"s3cr+t/=\"\n";

const std::string loopback_authority
  = "      authority_host: \"http://127.0.0.1:1234\"\n";

/// A file holding `text`, removed when it goes.
struct temp_file {
  std::string path;

  explicit temp_file(const std::string& text) {
    auto pattern
      = (std::filesystem::temp_directory_path() / "pw-token-XXXXXX").string();
    int fd = ::mkstemp(pattern.data());
    REQUIRE(fd >= 0);
    ::close(fd);
    path = pattern;
    std::ofstream{path, std::ios::binary | std::ios::trunc} << text;
  }

  ~temp_file() { std::remove(path.c_str()); }

  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
};

// -- requests ----------------------------------------------------------------

const std::string chat_body
  = R"({"model":"az","messages":[{"role":"user","content":"hi"}]})";

/// The chat request the model's provider builds for `body`.
upstream_request chat_request(const model_config& m,
                              const std::string& body = chat_body,
                              api_endpoint endpoint = api_endpoint::chat) {
  auto req = adapters::adapter_for(m, endpoint)
               .to_provider_request(chat_payload{body}, m);
  if (!req)
    FAIL(message_of(req.error()));
  return *req;
}

} // namespace

// -- the registry ------------------------------------------------------------

TEST_CASE("providers have unique names and the catalog lists them in order",
          "[adapters][providers]") {
  auto all = adapters::providers();
  auto specs = adapters::catalog();
  REQUIRE(specs.size() == all.size());
  std::set<std::string> names;
  for (size_t i = 0; i < all.size(); ++i) {
    REQUIRE(all[i] != nullptr);
    REQUIRE(specs[i] != nullptr);
    std::string name{all[i]->name};
    INFO(name);
    CHECK_FALSE(name.empty());
    CHECK(names.insert(name).second);
    CHECK(std::string{specs[i]->name} == name);
    CHECK(adapters::find_provider(name) == all[i]);
  }
  for (const auto* name :
       {"openai", "vllm", "ollama", "anthropic", "azure", "gemini", "echo"})
    CHECK(names.count(name) == 1);
}

TEST_CASE("each provider serves every endpoint it declares",
          "[adapters][providers]") {
  for (const auto* p : adapters::providers()) {
    INFO(std::string{p->name});
    REQUIRE(p->serve != nullptr);
    CHECK(p->endpoints.has(api_endpoint::chat));
    for (auto e : all_endpoints) {
      if (!p->endpoints.has(e))
        continue;
      INFO(std::string{to_string(e)});
      const auto& a = p->serve(e);
      CHECK(a.local() == p->local);
      CHECK(&adapters::adapter_for(p->name, e) == &a);
    }
  }
  const auto* echo = adapters::find_provider("echo");
  REQUIRE(echo != nullptr);
  CHECK(echo->local);
  for (auto e : all_endpoints)
    if (echo->endpoints.has(e))
      CHECK(echo->serve(e).local());
}

TEST_CASE("an unknown provider name finds nothing, and its adapter is "
          "OpenAI's",
          "[adapters][providers]") {
  CHECK(adapters::find_provider("nope") == nullptr);
  CHECK(adapters::find_provider("") == nullptr);
  CHECK(&adapters::adapter_for("unknown-name")
        == &adapters::adapter_for("openai"));
  CHECK(&adapters::adapter_for("unknown-name", api_endpoint::embeddings)
        == &adapters::adapter_for("openai", api_endpoint::embeddings));
  model_config m;
  m.provider = "unknown-name";
  CHECK(&adapters::adapter_for(m) == &adapters::adapter_for("openai"));
}

// -- the loader and the providers' own keys -----------------------------------

TEST_CASE("an unknown provider is reported with every known one",
          "[adapters][providers]") {
  auto text = model_errors("m", "    provider: watsonx\n    model: x\n");
  INFO(text);
  auto line = line_of(text, "models.m.provider: ");
  CHECK(contains(line, "unknown provider \"watsonx\""));
  CHECK(contains(line, "azure"));
  CHECK(contains(line, "gemini"));
  for (const auto* p : adapters::providers())
    CHECK(contains(line, p->name));
}

TEST_CASE("an unknown key of an azure model lists the azure keys as allowed",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto text = model_errors("az", azure_base + with_key + "    colour: blue\n");
  INFO(text);
  auto line = line_of(text, "models.az.colour: ");
  CHECK(contains(line, "unknown key"));
  CHECK(contains(line, "allowed:"));
  for (const auto* key : {"deployment", "api_version", "auth", "entra"})
    CHECK(contains(line, key));
}

TEST_CASE("azure's own keys are unknown keys of an openai model",
          "[adapters][providers]") {
  auto text = model_errors("gpt", "    provider: openai\n    model: m\n"
                                  "    api_key: k\n    deployment: d\n");
  INFO(text);
  auto line = line_of(text, "models.gpt.deployment: ");
  REQUIRE_FALSE(line.empty());
  CHECK(contains(line, "unknown key"));
  auto allowed = line.substr(std::string{"models.gpt.deployment: "}.size());
  CHECK_FALSE(contains(allowed, "deployment"));
  CHECK_FALSE(contains(allowed, "api_version"));
}

TEST_CASE("an azure model with a deployment and an api key loads",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_base + with_key + "    deployment: gpt4o\n");
  CHECK(m->provider == "azure");
  CHECK(m->api_key.reveal() == "az-key-123");
  CHECK(m->target.host == "res.openai.azure.com");
  CHECK(m->target.tls);
  const auto& o = azure_of(*m);
  CHECK(o.deployment == "gpt4o");
  CHECK(o.api_version.empty());
  CHECK_FALSE(o.entra);
}

TEST_CASE("an azure model on the v1 API (no deployment) with a key loads",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_base + with_key);
  const auto& o = azure_of(*m);
  CHECK(o.deployment.empty());
  CHECK_FALSE(o.entra);
}

TEST_CASE("an azure model needs a base_url", "[adapters][providers][azure]") {
  no_azure_env env;
  auto text = model_errors("az", "    provider: azure\n    model: gpt-4o\n"
                                   + with_key + "    deployment: gpt4o\n");
  INFO(text);
  CHECK(contains(line_of(text, "models.az.base_url: "), "required"));
}

TEST_CASE("azure's auth must match its credentials",
          "[adapters][providers][azure]") {
  no_azure_env env;
  SECTION("auth: api_key without an api_key") {
    auto text = model_errors("az", azure_base + "    auth: api_key\n");
    INFO(text);
    CHECK_FALSE(line_of(text, "models.az.api_key: ").empty());
  }
  SECTION("auth: entra with an api_key") {
    auto text = model_errors("az", azure_entra(tenant_and_client + a_secret)
                                     + with_key);
    INFO(text);
    CHECK_FALSE(line_of(text, "models.az.api_key: ").empty());
  }
  SECTION("an auth that is neither") {
    auto text
      = model_errors("az", azure_base + with_key + "    auth: password\n");
    INFO(text);
    CHECK_FALSE(line_of(text, "models.az.auth: ").empty());
  }
}

TEST_CASE("azure's deployment and api_version must be URL-safe names",
          "[adapters][providers][azure]") {
  no_azure_env env;
  SECTION("a deployment with a slash") {
    auto text
      = model_errors("az", azure_base + with_key + "    deployment: \"a/b\"\n");
    INFO(text);
    CHECK_FALSE(line_of(text, "models.az.deployment: ").empty());
  }
  SECTION("an api_version with a space") {
    auto text = model_errors("az", azure_base + with_key
                                     + "    api_version: \"x y\"\n");
    INFO(text);
    CHECK_FALSE(line_of(text, "models.az.api_version: ").empty());
  }
}

TEST_CASE("an azure model with Entra ID client credentials loads",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_entra(tenant_and_client + a_secret));
  CHECK(m->api_key.empty());
  const auto& o = azure_of(*m);
  CHECK(o.entra);
  CHECK(o.tenant_id == "t1");
  CHECK(o.client_id == "c1");
  CHECK(o.client_secret.reveal() == "s3cr+t/=");
  CHECK(o.federated_token_file.empty());
  CHECK(o.authority.host == "login.microsoftonline.com");
  CHECK(o.authority.tls);
}

TEST_CASE("Entra ID without a tenant id names the variable that can give one",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto text
    = model_errors("az", azure_entra("      client_id: c1\n" + a_secret));
  INFO(text);
  auto line = line_of(text, "models.az.entra.tenant_id: ");
  CHECK_FALSE(line.empty());
  CHECK(contains(line, "AZURE_TENANT_ID"));
}

TEST_CASE("Entra ID takes a client secret or a federated token file, not "
          "both",
          "[adapters][providers][azure]") {
  no_azure_env env;
  temp_file token{"eyJfake.token.sig\n"};
  auto text = model_errors("az", azure_entra(tenant_and_client + a_secret
                                             + "      federated_token_file: \""
                                             + token.path + "\"\n"));
  INFO(text);
  auto line = line_of(text, "models.az.entra: ");
  CHECK(contains(line, "client_secret"));
  CHECK(contains(line, "federated_token_file"));
}

TEST_CASE("Entra ID with neither a client secret nor a token file is an "
          "error",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto text = model_errors("az", azure_entra(tenant_and_client));
  INFO(text);
  CHECK_FALSE(line_of(text, "models.az.entra: ").empty());
}

TEST_CASE("an unreadable federated token file is an error",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto text = model_errors(
    "az",
    azure_entra(tenant_and_client
                + "      federated_token_file: \"/nonexistent/pw-token\"\n"));
  INFO(text);
  auto line = line_of(text, "models.az.entra.federated_token_file: ");
  CHECK(contains(line, "/nonexistent/pw-token"));
}

TEST_CASE("the Entra ID authority must be https, or http to a loopback host",
          "[adapters][providers][azure]") {
  no_azure_env env;
  SECTION("http to another host") {
    auto text = model_errors(
      "az",
      azure_entra(tenant_and_client + a_secret
                  + "      authority_host: \"http://login.example.com\"\n"));
    INFO(text);
    auto line = line_of(text, "models.az.entra.authority_host: ");
    CHECK(contains(line, "https"));
  }
  SECTION("http to a loopback host (a fake in tests)") {
    auto m = loaded(
      "az", azure_entra(tenant_and_client + a_secret + loopback_authority));
    const auto& o = azure_of(*m);
    CHECK(o.authority.host == "127.0.0.1");
    CHECK(o.authority.port == 1234);
    CHECK_FALSE(o.authority.tls);
  }
}

TEST_CASE("an unknown key under entra is an error",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto text = model_errors(
    "az", azure_entra(tenant_and_client + a_secret + "      colour: blue\n"));
  INFO(text);
  auto line = line_of(text, "models.az.entra.colour: ");
  CHECK(contains(line, "unknown key"));
  CHECK(contains(line, "tenant_id"));
}

TEST_CASE("an azure model without a key takes Entra ID from the "
          "environment",
          "[adapters][providers][azure]") {
  no_azure_env env;
  ::setenv("AZURE_TENANT_ID", "t-env", 1);
  ::setenv("AZURE_CLIENT_ID", "c-env", 1);
  ::setenv("AZURE_CLIENT_SECRET", "s-env-secret", 1);
  auto cfg
    = load_yaml(config_with("az", azure_base + "    deployment: gpt4o\n"));
  clear_azure_env();
  if (!cfg)
    FAIL(message_of(cfg.error()));
  const auto* found = cfg->find_model("az");
  REQUIRE(found != nullptr);
  const auto& m = **found;
  const auto& o = azure_of(m);
  CHECK(o.entra);
  CHECK(o.tenant_id == "t-env");
  CHECK(o.client_id == "c-env");
  CHECK(o.client_secret.reveal() == "s-env-secret");
  auto req = token_request(m);
  CHECK(req.target.host == "login.microsoftonline.com");
  CHECK(req.target.tls);
  CHECK(req.path == "/t-env/oauth2/v2.0/token");
}

// -- azure requests -----------------------------------------------------------

TEST_CASE("an azure deployment is called with its api-version and api-key",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_base + with_key + "    deployment: gpt4o\n");
  auto req = chat_request(*m);
  CHECK(req.method == "POST");
  CHECK(req.target.host == "res.openai.azure.com");
  CHECK(req.path
        == "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21");
  CHECK(header(req, "api-key") == "az-key-123");
  CHECK_FALSE(has_header(req, "Authorization"));
  CHECK(nlohmann::json::parse(req.body)["model"] == "gpt-4o");
}

TEST_CASE("an azure api_version replaces the default",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_base + with_key
                          + "    deployment: gpt4o\n"
                            "    api_version: \"2025-01-01-preview\"\n");
  CHECK(chat_request(*m).path
        == "/openai/deployments/gpt4o/chat/completions"
           "?api-version=2025-01-01-preview");
  auto health = adapters::adapter_for(*m).health_request(*m);
  REQUIRE(health);
  CHECK(health->path == "/openai/models?api-version=2025-01-01-preview");
}

TEST_CASE("azure embeddings go to the deployment's embeddings",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_base + with_key + "    deployment: gpt4o\n"
                          + "    endpoints: [chat, embeddings]\n");
  auto req = chat_request(*m, R"({"model":"az","input":"hello"})",
                          api_endpoint::embeddings);
  CHECK(req.path
        == "/openai/deployments/gpt4o/embeddings?api-version=2024-10-21");
  CHECK(header(req, "api-key") == "az-key-123");
}

TEST_CASE("the azure v1 API takes no api-version unless one is set",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_base + with_key);
  auto req = chat_request(*m);
  CHECK(req.path == "/openai/v1/chat/completions");
  CHECK(header(req, "api-key") == "az-key-123");
  CHECK_FALSE(has_header(req, "Authorization"));
  auto versioned
    = loaded("az", azure_base + with_key + "    api_version: preview\n");
  CHECK(chat_request(*versioned).path
        == "/openai/v1/chat/completions?api-version=preview");
}

TEST_CASE("an azure base_url with a path keeps it before /openai",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", "    provider: azure\n    model: gpt-4o\n"
                        "    base_url: \"https://gw.example.com/proxy\"\n"
                          + with_key + "    deployment: gpt4o\n");
  auto req = chat_request(*m);
  CHECK(req.target.host == "gw.example.com");
  CHECK(req.path
        == "/proxy/openai/deployments/gpt4o/chat/completions"
           "?api-version=2024-10-21");
}

TEST_CASE("azure's health check lists the models with the same credentials",
          "[adapters][providers][azure]") {
  no_azure_env env;
  SECTION("deployment") {
    auto m = loaded("az", azure_base + with_key + "    deployment: gpt4o\n");
    auto req = adapters::adapter_for(*m).health_request(*m);
    REQUIRE(req);
    CHECK(req->method == "GET");
    CHECK(req->path == "/openai/models?api-version=2024-10-21");
    CHECK(header(*req, "api-key") == "az-key-123");
  }
  SECTION("v1") {
    auto m = loaded("az", azure_base + with_key);
    auto req = adapters::adapter_for(*m).health_request(*m);
    REQUIRE(req);
    CHECK(req->method == "GET");
    CHECK(req->path == "/openai/v1/models");
    CHECK(header(*req, "api-key") == "az-key-123");
  }
}

TEST_CASE("an Entra ID model sends its access token as a bearer token",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_entra(tenant_and_client + a_secret)
                          + "    deployment: gpt4o\n");
  // No token fetched yet: no credentials at all (the SESSION never calls).
  auto bare = chat_request(*m);
  CHECK_FALSE(has_header(bare, "Authorization"));
  CHECK_FALSE(has_header(bare, "api-key"));
  auto with_token = *m;
  with_token.access_token = redacted_string{"tok-123"};
  auto req = chat_request(with_token);
  CHECK(header(req, "Authorization") == "Bearer tok-123");
  CHECK_FALSE(has_header(req, "api-key"));
  CHECK_FALSE(contains(req.body, "s3cr+t/="));
  auto health = adapters::adapter_for(with_token).health_request(with_token);
  REQUIRE(health);
  CHECK(header(*health, "Authorization") == "Bearer tok-123");
}

TEST_CASE("the Messages API to azure sends max_completion_tokens",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded("az", azure_base + with_key + "    deployment: gpt4o\n"
                          + "    endpoints: [chat, messages]\n");
  auto req = chat_request(
    *m,
    R"({"model":"x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})",
    api_endpoint::messages);
  CHECK(req.path
        == "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21");
  CHECK(header(req, "api-key") == "az-key-123");
  auto body = nlohmann::json::parse(req.body);
  CHECK(body["max_completion_tokens"] == 10);
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK(body["model"] == "gpt-4o");
}

// -- Entra ID token requests --------------------------------------------------

TEST_CASE("an Entra ID client secret is posted form-encoded to the tenant's "
          "token endpoint",
          "[adapters][providers][azure]") {
  no_azure_env env;
  auto m = loaded(
    "az", azure_entra(tenant_and_client + a_secret + loopback_authority));
  auto req = token_request(*m);
  CHECK(req.method == "POST");
  CHECK(req.path == "/t1/oauth2/v2.0/token");
  CHECK(req.target.host == "127.0.0.1");
  CHECK(req.target.port == 1234);
  CHECK_FALSE(req.target.tls);
  CHECK(header(req, "Content-Type") == "application/x-www-form-urlencoded");
  INFO(req.body);
  auto fields = form_fields(req.body);
  CHECK(fields.count("grant_type=client_credentials") == 1);
  CHECK(fields.count("client_id=c1") == 1);
  CHECK(
    fields.count("scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default")
    == 1);
  CHECK(fields.count("client_secret=s3cr%2Bt%2F%3D") == 1);
  CHECK_FALSE(contains(req.body, "client_assertion"));
}

TEST_CASE("a federated token file is posted as a client assertion",
          "[adapters][providers][azure]") {
  no_azure_env env;
  temp_file token{"  eyJfake.token.sig\n"};
  auto m = loaded(
    "az", azure_entra(tenant_and_client + "      federated_token_file: \""
                      + token.path + "\"\n" + loopback_authority));
  auto req = token_request(*m);
  CHECK(req.path == "/t1/oauth2/v2.0/token");
  INFO(req.body);
  auto fields = form_fields(req.body);
  CHECK(fields.count("grant_type=client_credentials") == 1);
  CHECK(fields.count("client_id=c1") == 1);
  CHECK(fields.count("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                     "client-assertion-type%3Ajwt-bearer")
        == 1);
  CHECK(fields.count("client_assertion=eyJfake.token.sig") == 1);
  CHECK_FALSE(contains(req.body, "client_secret"));
}

TEST_CASE("a token file gone after loading makes the token request an "
          "error naming it",
          "[adapters][providers][azure]") {
  no_azure_env env;
  model_config_ptr m;
  std::string path;
  {
    temp_file token{"eyJfake.token.sig\n"};
    path = token.path;
    m = loaded("az",
               azure_entra(tenant_and_client + "      federated_token_file: \""
                           + path + "\"\n"));
  }
  REQUIRE_FALSE(std::filesystem::exists(path));
  auto req = adapters::adapter_for(*m).credential_request(*m);
  REQUIRE(req.has_value());
  REQUIRE_FALSE(*req);
  CHECK(contains(message_of(req->error()), path));
}

TEST_CASE("models with static credentials fetch none",
          "[adapters][providers]") {
  no_azure_env env;
  auto check_none = [](const std::string& keys) {
    INFO(keys);
    auto m = loaded("m", keys);
    CHECK_FALSE(adapters::adapter_for(*m).credential_request(*m).has_value());
  };
  check_none(azure_base + with_key + "    deployment: gpt4o\n");
  check_none(azure_base + with_key);
  check_none("    provider: openai\n    model: m\n    api_key: k\n");
  check_none("    provider: gemini\n    model: m\n    api_key: k\n");
  check_none("    provider: anthropic\n    model: m\n    api_key: k\n");
  check_none("    provider: echo\n");
}

// -- OAuth token answers ------------------------------------------------------

TEST_CASE("a token answer gives the token and its lifetime",
          "[adapters][providers][oauth]") {
  SECTION("expires_in as a number") {
    auto c = adapters::oauth::read_token_answer(
      answer(200, R"({"access_token":"abc","expires_in":3599})"), "Issuer",
      "s3cr+t/=");
    REQUIRE(c);
    CHECK(c->token.reveal() == "abc");
    CHECK(c->lifetime.count() == 3599);
  }
  SECTION("expires_in as a string of digits") {
    auto c = adapters::oauth::read_token_answer(
      answer(200, R"({"access_token":"abc","expires_in":"3600"})"), "Issuer",
      "s3cr+t/=");
    REQUIRE(c);
    CHECK(c->lifetime.count() == 3600);
  }
  SECTION("no expires_in: five minutes") {
    auto c = adapters::oauth::read_token_answer(
      answer(200, R"({"access_token":"abc"})"), "Issuer", "s3cr+t/=");
    REQUIRE(c);
    CHECK(c->token.reveal() == "abc");
    CHECK(c->lifetime.count() == 300);
  }
}

TEST_CASE("a refused token request says why, without the secret",
          "[adapters][providers][oauth]") {
  auto c = adapters::oauth::read_token_answer(
    answer(401,
           R"({"error":"invalid_client","error_description":)"
           R"("AADSTS7000215: Invalid client secret provided. s3cr+t/="})"),
    "Microsoft Entra ID", "s3cr+t/=");
  REQUIRE_FALSE(c);
  auto text = message_of(c.error());
  INFO(text);
  CHECK(contains(text, "HTTP 401"));
  CHECK(contains(text, "invalid_client"));
  CHECK(contains(text, "AADSTS7000215"));
  CHECK_FALSE(contains(text, "s3cr+t/="));
}

TEST_CASE("a token answer that is not a token is an error",
          "[adapters][providers][oauth]") {
  SECTION("not JSON") {
    auto c = adapters::oauth::read_token_answer(
      answer(200, "<html>hello</html>"), "Issuer", "s3cr+t/=");
    CHECK_FALSE(c);
  }
  SECTION("no access_token") {
    auto c = adapters::oauth::read_token_answer(
      answer(200, R"({"token_type":"Bearer","expires_in":3599})"), "Issuer",
      "s3cr+t/=");
    REQUIRE_FALSE(c);
    CHECK(contains(message_of(c.error()), "access_token"));
  }
}

TEST_CASE("an unreachable token endpoint is an error that says so",
          "[adapters][providers][oauth]") {
  upstream_result r;
  r.failure = upstream_failure::connect;
  r.detail = "refused";
  auto c
    = adapters::oauth::read_token_answer(r, "Microsoft Entra ID", "s3cr+t/=");
  REQUIRE_FALSE(c);
  auto text = message_of(c.error());
  INFO(text);
  CHECK(contains(text, "could not be reached"));
  CHECK(contains(text, "refused"));
}

TEST_CASE("form bodies percent-encode all but the unreserved characters",
          "[adapters][providers][oauth]") {
  CHECK(adapters::oauth::percent_encoded("a b+c~") == "a%20b%2Bc~");
  CHECK(adapters::oauth::percent_encoded("AZaz09-._~") == "AZaz09-._~");
  CHECK(adapters::oauth::percent_encoded("=&/:") == "%3D%26%2F%3A");
  adapters::oauth::form f;
  f.add("a b", "c&d");
  f.add("e", "");
  CHECK(f.text() == "a%20b=c%26d&e=");
}

// -- gemini -------------------------------------------------------------------

TEST_CASE("a gemini model needs only its key",
          "[adapters][providers][gemini]") {
  auto m = loaded("g", "    provider: gemini\n    model: gemini-2.0-flash\n"
                       "    api_key: \"gm-key-1\"\n");
  CHECK(m->target.host == "generativelanguage.googleapis.com");
  CHECK(m->target.tls);
  CHECK(m->target.base_path == "/v1beta/openai");
  auto req = chat_request(*m);
  CHECK(req.path == "/v1beta/openai/chat/completions");
  CHECK(header(req, "Authorization") == "Bearer gm-key-1");
  CHECK(nlohmann::json::parse(req.body)["model"] == "gemini-2.0-flash");
}

TEST_CASE("a gemini model without a key is an error",
          "[adapters][providers][gemini]") {
  auto text
    = model_errors("g", "    provider: gemini\n    model: gemini-2.0-flash\n");
  INFO(text);
  CHECK_FALSE(line_of(text, "models.g.api_key: ").empty());
}

TEST_CASE("a gemini model cannot serve text completions",
          "[adapters][providers][gemini]") {
  auto text = model_errors("g", "    provider: gemini\n    model: m\n"
                                "    api_key: k\n"
                                "    endpoints: [completions]\n");
  INFO(text);
  CHECK(contains(line_of(text, "models.g.endpoints: "), "cannot serve"));
}
