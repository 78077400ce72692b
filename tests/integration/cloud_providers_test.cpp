// The cloud providers through the real binary, against loopback fakes:
// Azure OpenAI with a Microsoft Entra ID token the gateway fetches (and
// fails to fetch, then fetches again), with an api-key on the v1 API,
// streamed; Gemini's OpenAI-compatible API; and --check-config on an
// Entra ID model with no tenant.

#include "tests/integration/common.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

/// The Entra ID client secret of the azure models here: unreserved
/// characters only, so the form body carries it as written.
const std::string client_secret = "entra-client-secret-Qx7pL2";

/// What the token fake answers when it grants a token.
const std::string token_granted
  = R"({"token_type":"Bearer","expires_in":3599,"access_token":"tok-A"})";

/// What the token fake answers when it refuses the client.
const std::string token_refused
  = R"({"error":"invalid_client","error_description":)"
    R"("AADSTS7000215: Invalid client secret"})";

const std::string token_path = "/t1/oauth2/v2.0/token";

/// The Gemini key of the gemini model here.
const std::string gemini_key = "gm-upstream-key-5c2e81";

/// An Entra ID model would take its settings from these when its config
/// has none; the gateway inherits this process's environment.
void clear_azure_env() {
  for (const auto* name :
       {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"})
    ::unsetenv(name);
}

/// A token endpoint that answers POSTs to token_path with `status` and
/// `body`, anything else with 404.
fake_handler token_endpoint(unsigned status, std::string body) {
  return [=](const fake_request& req) {
    fake_response r;
    if (req.method != "POST" || req.target != token_path) {
      r.status = 404;
      r.body = R"({"error":"not_found"})";
      return r;
    }
    r.status = status;
    r.body = body;
    return r;
  };
}

/// A `models:` entry for an azure deployment `gpt4o` at `base_url` with
/// Entra ID client credentials, its tokens from `authority`.
std::string azure_entra_model(const std::string& alias,
                              const std::string& base_url,
                              const std::string& authority) {
  return "  " + alias
         + ":\n"
           "    provider: azure\n"
           "    model: \"gpt-4o\"\n"
           "    base_url: \""
         + base_url
         + "\"\n"
           "    deployment: gpt4o\n"
           "    auth: entra\n"
           "    entra:\n"
           "      tenant_id: t1\n"
           "      client_id: c1\n"
           "      client_secret: \""
         + client_secret + "\"\n      authority_host: \"" + authority + "\"\n";
}

/// A `models:` entry for an azure model on the v1 API with an api-key.
std::string azure_key_model(const std::string& alias,
                            const std::string& base_url) {
  return "  " + alias
         + ":\n    provider: azure\n    model: \"gpt-4o\"\n    api_key: \""
         + upstream_key + "\"\n    base_url: \"" + base_url + "\"\n";
}

/// A `models:` entry for a gemini model serving chat and embeddings, its
/// OpenAI-compatible API on the fake at `base_url`.
std::string gemini_model(const std::string& alias,
                         const std::string& base_url) {
  return "  " + alias
         + ":\n    provider: gemini\n    model: \"gemini-2.0-flash\"\n"
           "    api_key: \""
         + gemini_key + "\"\n    base_url: \"" + base_url
         + "/v1beta/openai\"\n    endpoints: [chat, embeddings]\n";
}

/// Keeps the breaker closed through the failures of a test.
const std::string patient
  = "health:\n  check_interval_seconds: 0\n  unhealthy_threshold: 100\n";

http_response chat(const gateway_process& gw, const std::string& model) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      chat_body(model), auth_json(full_key));
}

/// The POSTs `u` received (health checks are GETs).
std::vector<fake_request> posts(const fake_upstream& u) {
  std::vector<fake_request> out;
  for (const auto& r : u.requests())
    if (r.method == "POST")
      out.push_back(r);
  return out;
}

std::string header_of(const fake_request& req, const std::string& lower) {
  auto it = req.headers.find(lower);
  return it == req.headers.end() ? std::string{} : it->second;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("azure with Entra ID calls the deployment with the token the "
          "gateway fetched",
          "[integration]") {
  clear_azure_env();
  fake_upstream token{token_endpoint(200, token_granted)};
  fake_upstream azure{answer_ok()};
  gateway_process gw{make_config(
    azure_entra_model("az", azure.base_url(), token.base_url()), "az")};
  REQUIRE(token.wait_for_requests(1));
  // The token is in the MODEL's settings once it says so.
  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\""));
  auto res = chat(gw, "az");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "az");
  auto sent = posts(azure);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target
        == "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21");
  CHECK(header_of(sent[0], "authorization") == "Bearer tok-A");
  CHECK_FALSE(sent[0].has_header("api-key"));
  CHECK(nlohmann::json::parse(sent[0].body)["model"] == "gpt-4o");
  auto asked = token.requests();
  REQUIRE_FALSE(asked.empty());
  CHECK(asked[0].method == "POST");
  CHECK(asked[0].target == token_path);
  CHECK(header_of(asked[0], "content-type")
        == "application/x-www-form-urlencoded");
  CHECK(contains(asked[0].body, "grant_type=client_credentials"));
  CHECK(contains(asked[0].body, "client_id=c1"));
  CHECK(contains(asked[0].body, "client_secret=" + client_secret));
  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, client_secret));
  CHECK_FALSE(contains(logs, "tok-A"));
}

TEST_CASE("a refused token request fails chats with 502 until a token "
          "comes",
          "[integration]") {
  clear_azure_env();
  fake_upstream token{token_endpoint(401, token_refused)};
  fake_upstream azure{answer_ok()};
  gateway_process gw{
    make_config(azure_entra_model("az", azure.base_url(), token.base_url()),
                "az", "", patient)};
  REQUIRE(token.wait_for_requests(1));
  // The MODEL keeps the reason once it logged the failure.
  REQUIRE(gw.wait_for_output("\"event\":\"credential_failed\""));
  auto failed = chat(gw, "az");
  INFO(failed.body);
  CHECK(failed.status == 502);
  auto message = error_of(failed)["message"].get<std::string>();
  CHECK(contains(message, "no valid credentials"));
  CHECK(contains(message, "invalid_client"));
  CHECK_FALSE(contains(message, client_secret));
  // The provider was not called without a token.
  CHECK(posts(azure).empty());

  // The MODEL retries after 1 s, then 2 s, 4 s ...: the next answer grants.
  token.set_handler(token_endpoint(200, token_granted));
  REQUIRE(token.wait_for_requests(2, 15s));
  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\"", 30s));
  // The token's arrival at the MODEL was logged before this request was
  // sent; a few more tries only guard against a slow log line.
  http_response res;
  for (int i = 0; i < 50; ++i) {
    res = chat(gw, "az");
    if (res.status == 200)
      break;
  }
  INFO(res.body);
  REQUIRE(res.status == 200);
  auto sent = posts(azure);
  REQUIRE_FALSE(sent.empty());
  CHECK(header_of(sent.back(), "authorization") == "Bearer tok-A");
  CHECK_FALSE(sent.back().has_header("api-key"));
  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK(contains(logs, "invalid_client"));
  CHECK_FALSE(contains(logs, client_secret));
  CHECK_FALSE(contains(logs, "tok-A"));
}

TEST_CASE("an azure model whose token endpoint is down falls back along its "
          "chain",
          "[integration]") {
  clear_azure_env();
  fake_upstream azure{answer_ok()};
  auto authority = "http://127.0.0.1:" + std::to_string(closed_port());
  gateway_process gw{make_config(
    azure_entra_model("az", azure.base_url(), authority) + echo_model, "az", "",
    "  fallback_chains:\n    main: [\"az\", \"echo\"]\n")};
  auto res = chat(gw, "az");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "echo");
  auto reason = res.header("x-route-reason");
  INFO(reason);
  CHECK(contains(reason, "fallback to echo"));
  CHECK(azure.requests().empty());
}

TEST_CASE("azure with an api-key calls the v1 API, whole and streamed",
          "[integration]") {
  fake_upstream azure{answer_ok()};
  gateway_process gw{
    make_config(azure_key_model("az", azure.base_url()), "az")};
  auto res = chat(gw, "az");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "az");
  auto sent = posts(azure);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == "/openai/v1/chat/completions");
  CHECK(header_of(sent[0], "api-key") == upstream_key);
  CHECK_FALSE(sent[0].has_header("authorization"));

  azure.set_handler(messages_api::stream_with(openai_stream({"Hel", "lo"})));
  nlohmann::json body = {{"model", "az"},
                         {"stream", true},
                         {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto r = send_once(gw.port(), raw_chat_request(body));
  INFO(r.head);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(contains(r.head, "Content-Type: text/event-stream"));
  CHECK(chat_text(r) == "Hello");
  CHECK(r.count("data: [DONE]") == 1);
  CHECK_FALSE(r.has(upstream_key));
  sent = posts(azure);
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].target == "/openai/v1/chat/completions");
  CHECK(header_of(sent[1], "api-key") == upstream_key);
  CHECK(nlohmann::json::parse(sent[1].body)["stream"] == true);
}

TEST_CASE("gemini is called on its OpenAI-compatible paths with its key as a "
          "bearer token",
          "[integration]") {
  fake_upstream gemini{[](const fake_request& req) {
    fake_response r;
    if (req.target.ends_with("/embeddings"))
      r.body = R"({"object":"list","data":[{"object":"embedding","index":0,)"
               R"("embedding":[0.1,0.2]}],"model":"text-embedding-004",)"
               R"("usage":{"prompt_tokens":3,"total_tokens":3}})";
    else
      r.body = openai_completion("gemini-2.0-flash", "hi from gemini");
    return r;
  }};
  gateway_process gw{make_config(gemini_model("gm", gemini.base_url()), "gm")};
  auto res = chat(gw, "gm");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "gm");
  auto embedded
    = http_request(gw.port(), "POST", "/v1/embeddings",
                   R"({"model":"gm","input":"hello"})", auth_json(full_key));
  INFO(embedded.body);
  REQUIRE(embedded.status == 200);
  CHECK(embedded.json()["model"] == "gm");
  auto sent = posts(gemini);
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].target == "/v1beta/openai/chat/completions");
  CHECK(header_of(sent[0], "authorization") == "Bearer " + gemini_key);
  CHECK(nlohmann::json::parse(sent[0].body)["model"] == "gemini-2.0-flash");
  CHECK(sent[1].target == "/v1beta/openai/embeddings");
  CHECK(header_of(sent[1], "authorization") == "Bearer " + gemini_key);
}

TEST_CASE("check-config names entra.tenant_id when an Entra ID model has no "
          "tenant",
          "[integration]") {
  // The child inherits this process's environment: no AZURE_TENANT_ID.
  clear_azure_env();
  auto path = write_temp_file(
    make_config("  az:\n"
                "    provider: azure\n"
                "    model: \"gpt-4o\"\n"
                "    base_url: \"https://res.openai.azure.com\"\n"
                "    auth: entra\n"
                "    entra:\n"
                "      client_id: c1\n"
                "      client_secret: \""
                  + client_secret + "\"\n",
                "az"));
  auto r = run_pw_router({"--check-config", path});
  std::remove(path.c_str());
  INFO(r.out);
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.out + r.err, "models.az.entra.tenant_id"));
  CHECK(contains(r.out + r.err, "AZURE_TENANT_ID"));
  CHECK_FALSE(contains(r.out + r.err, client_secret));
}
