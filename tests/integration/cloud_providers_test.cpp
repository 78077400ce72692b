// The cloud providers through the real binary, against loopback fakes
// that check what the real ones check: Azure OpenAI refuses a request
// without its key or token (401) and a deployment URL without an
// api-version (404); Google's token endpoint verifies the service
// account's JWT (its claims and its RS256 signature) before it grants a
// token. Azure with a Microsoft Entra ID token the gateway fetches (and
// fails to fetch, then fetches again, and renews before it ends without a
// failed request), with an api-key on the v1 API, streamed; Gemini's
// OpenAI-compatible API; --check-config on an Entra ID model with no
// tenant; Google Vertex AI with a service account's token (a JWT the
// gateway signs, and one signed with a key Google does not know), Gemini
// on Vertex's OpenAI-compatible endpoint and Claude through rawPredict and
// streamRawPredict; a fallback chain from azure to vertex to echo.

#include "tests/integration/common.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

/// A token endpoint that answers POSTs to `path` with `status` and
/// `body`, anything else with 404.
fake_handler token_endpoint(unsigned status, std::string body,
                            std::string path = token_path) {
  return [=](const fake_request& req) {
    fake_response r;
    if (req.method != "POST" || req.target != path) {
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

/// How often `part` occurs in `text`.
size_t occurrences(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos;
       at = text.find(part, at + part.size()))
    ++n;
  return n;
}

// -- azure --------------------------------------------------------------------

/// What Azure OpenAI answers a request without the right key or token.
const std::string azure_denied
  = R"({"error":{"code":"401","message":"Access denied due to invalid )"
    R"(subscription key or wrong API endpoint."}})";

/// What Azure OpenAI answers a deployment URL without an api-version.
const std::string azure_not_found
  = R"({"error":{"code":"404","message":"Resource not found"}})";

/// Whether the query of `target` names an api-version.
bool has_api_version(const std::string& target) {
  auto q = target.find('?');
  if (q == std::string::npos)
    return false;
  auto query = target.substr(q + 1);
  return query.starts_with("api-version=") || contains(query, "&api-version=");
}

/// Azure OpenAI as it checks a request: 401 unless the header `auth_header`
/// (lower-case) holds one of `accepted`, 404 when `needs_api_version` (the
/// deployment URLs) and the URL has no api-version; else `ok` answers.
fake_handler azure_like(std::string auth_header,
                        std::vector<std::string> accepted,
                        bool needs_api_version, fake_handler ok = answer_ok()) {
  return [=](const fake_request& req) {
    auto sent = req.headers.find(auth_header);
    if (sent == req.headers.end()
        || std::find(accepted.begin(), accepted.end(), sent->second)
             == accepted.end()) {
      fake_response r;
      r.status = 401;
      r.body = azure_denied;
      return r;
    }
    if (needs_api_version && !has_api_version(req.target)) {
      fake_response r;
      r.status = 404;
      r.body = azure_not_found;
      return r;
    }
    return ok(req);
  };
}

/// A token endpoint that grants `bodies` in turn, then the last one again
/// and again; anything but a POST to token_path is 404. The handler runs on
/// the fake's thread: the count is atomic.
fake_handler token_endpoint_granting(std::vector<std::string> bodies) {
  auto granted = std::make_shared<std::atomic<size_t>>(0);
  return [=](const fake_request& req) {
    fake_response r;
    if (req.method != "POST" || req.target != token_path) {
      r.status = 404;
      r.body = R"({"error":"not_found"})";
      return r;
    }
    auto n = granted->fetch_add(1);
    r.body = bodies[std::min(n, bodies.size() - 1)];
    return r;
  };
}

// -- vertex -------------------------------------------------------------------

/// What Google's token endpoint answers when it grants a token.
const std::string google_token_granted
  = R"({"access_token":"ya29.A","expires_in":3599,"token_type":"Bearer"})";

/// Where the service account's token_uri points on the token fake.
const std::string google_token_path = "/token";

/// What Google's token endpoint answers a JWT it does not accept.
const std::string google_token_refused
  = R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})";

/// The service account of the credentials files here.
const std::string sa_email = "sa@p1.iam.gserviceaccount.com";

/// The id of its key, which the JWT's header names.
const std::string sa_key_id = "k1";

/// An RSA key pair in PEM: the private key (PKCS#8) for the credentials
/// file, the public key (SubjectPublicKeyInfo) for the token fake.
struct rsa_key_pair {
  std::string private_pem;
  std::string public_pem;
};

rsa_key_pair make_rsa_key_pair() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_RSA_gen(2048),
                                                          &EVP_PKEY_free};
  REQUIRE(key);
  auto pem = [&](bool private_part) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()),
                                                  &BIO_free};
    REQUIRE(bio);
    int written = private_part ? PEM_write_bio_PrivateKey(
                    bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)
                               : PEM_write_bio_PUBKEY(bio.get(), key.get());
    REQUIRE(written == 1);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    REQUIRE(n > 0);
    return std::string(data, static_cast<size_t>(n));
  };
  return {pem(true), pem(false)};
}

/// The service account's RSA-2048 key, made once for the whole run: the
/// one Google knows.
const rsa_key_pair& sa_key() {
  static const rsa_key_pair pair = make_rsa_key_pair();
  return pair;
}

/// Another RSA-2048 key, made once for the whole run: one Google does not
/// know for the service account.
const rsa_key_pair& unknown_key() {
  static const rsa_key_pair pair = make_rsa_key_pair();
  return pair;
}

/// A service account's key file in `dir` whose tokens come from
/// `token_uri`, holding `private_pem` (by default the key Google knows);
/// its path.
std::string
write_service_account(const temp_dir& dir, const std::string& token_uri,
                      const std::string& private_pem = sa_key().private_pem) {
  nlohmann::json j
    = {{"type", "service_account"},   {"project_id", "p1"},
       {"private_key_id", sa_key_id}, {"private_key", private_pem},
       {"client_email", sa_email},    {"client_id", "1234567890"},
       {"token_uri", token_uri}};
  auto path = (dir.path / "sa.json").string();
  std::ofstream{path, std::ios::binary | std::ios::trunc} << j.dump();
  return path;
}

/// A `models:` entry for a vertex model `model` in project p1 and `region`,
/// Vertex at `base_url`, its credentials in `credentials_file`.
std::string vertex_model(const std::string& alias, const std::string& model,
                         const std::string& base_url,
                         const std::string& credentials_file,
                         const std::string& region = "us-central1") {
  return "  " + alias + ":\n    provider: vertex\n    model: \"" + model
         + "\"\n    base_url: \"" + base_url
         + "\"\n    project: p1\n    region: " + region
         + "\n    credentials_file: \"" + credentials_file + "\"\n";
}

/// A credentials file in GOOGLE_APPLICATION_CREDENTIALS would stand in for
/// a missing credentials_file; the gateway inherits this environment.
void clear_google_env() {
  ::unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
}

/// Base64url without padding, decoded; nothing when `text` is not
/// base64url. It throws nothing: token fakes run it on their own thread.
std::optional<std::string> base64url_decoded(std::string_view text) {
  if (text.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-'             ? 62
            : c == '_'             ? 63
                                   : -1;
    if (v < 0)
      return std::nullopt;
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xFFFFFFu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  return out;
}

/// Base64url without padding, decoded (a JWT's parts).
std::string from_base64url(std::string_view text) {
  auto out = base64url_decoded(text);
  REQUIRE(out);
  return *out;
}

/// `text` with its %XX escapes (and `+` for a space) decoded, as a form
/// field is; nothing when an escape is malformed.
std::optional<std::string> percent_decoded(std::string_view text) {
  auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
      continue;
    }
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size())
      return std::nullopt;
    int high = hex(text[i + 1]);
    int low = hex(text[i + 2]);
    if (high < 0 || low < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

/// The fields of an application/x-www-form-urlencoded body, decoded;
/// nothing when it is not one, or names a field twice.
std::optional<std::map<std::string, std::string>>
form_fields(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    auto amp = body.find('&');
    auto pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{}
                                         : body.substr(amp + 1);
    auto eq = pair.find('=');
    if (eq == std::string_view::npos)
      return std::nullopt;
    auto name = percent_decoded(pair.substr(0, eq));
    auto value = percent_decoded(pair.substr(eq + 1));
    if (!name || !value || out.count(*name) > 0)
      return std::nullopt;
    out.emplace(std::move(*name), std::move(*value));
  }
  return out;
}

/// The string member `key` of `j`, empty when it is absent or no string.
std::string string_at(const nlohmann::json& j, const std::string& key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>()
                                          : std::string{};
}

/// The integer member `key` of `j`, if it is one.
std::optional<int64_t> integer_at(const nlohmann::json& j,
                                  const std::string& key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer())
    return std::nullopt;
  return it->get<int64_t>();
}

/// Whether `signature` is an RS256 signature (RSASSA-PKCS1-v1_5 with
/// SHA-256) of `input` by the key whose public half is `public_pem`.
bool rs256_verifies(const std::string& public_pem, std::string_view input,
                    const std::string& signature) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{
    BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size())),
    &BIO_free};
  if (!bio)
    return false;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
    PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free};
  bool ok
    = key && ctx && EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_RSA
      && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                              key.get())
           == 1
      && EVP_DigestVerify(
           ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
           signature.size(),
           reinterpret_cast<const unsigned char*>(input.data()), input.size())
           == 1;
  // A refused signature leaves its reason on this thread's error queue.
  ERR_clear_error();
  return ok;
}

/// What Google's token endpoint would refuse in the token request whose
/// form body is `form`: the grant type, the JWT's shape, its header (alg
/// RS256, the key's id), its claims (iss the service account, aud the
/// token URL `token_uri`, a scope, a life of one hour from about now), and
/// its RS256 signature by the key whose public half is `public_pem`. Empty
/// when it would grant a token. It throws nothing: token fakes run it on
/// their own thread.
std::string jwt_problem(const std::string& form, const std::string& public_pem,
                        const std::string& token_uri) {
  auto fields = form_fields(form);
  if (!fields)
    return "the body is not a form";
  auto field = [&](const std::string& name) {
    auto it = fields->find(name);
    return it == fields->end() ? std::string{} : it->second;
  };
  if (field("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer")
    return "grant_type is not jwt-bearer";
  auto jwt = field("assertion");
  auto first = jwt.find('.');
  auto second = first == std::string::npos ? first : jwt.find('.', first + 1);
  if (second == std::string::npos
      || jwt.find('.', second + 1) != std::string::npos)
    return "the assertion is not a JWT of three parts";
  std::string_view parts{jwt};
  auto header_text = base64url_decoded(parts.substr(0, first));
  auto claims_text
    = base64url_decoded(parts.substr(first + 1, second - first - 1));
  auto signature = base64url_decoded(parts.substr(second + 1));
  if (!header_text || !claims_text || !signature)
    return "a part of the JWT is not base64url";
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  auto claims = nlohmann::json::parse(*claims_text, nullptr, false);
  if (!header.is_object() || !claims.is_object())
    return "the JWT's header or claims are no JSON object";
  if (string_at(header, "alg") != "RS256")
    return "alg is not RS256";
  if (string_at(header, "kid") != sa_key_id)
    return "kid is not the service account key's id";
  if (string_at(claims, "iss") != sa_email)
    return "iss is not the service account";
  if (string_at(claims, "aud") != token_uri)
    return "aud is not the token URL";
  if (string_at(claims, "scope").empty())
    return "no scope";
  auto iat = integer_at(claims, "iat");
  auto exp = integer_at(claims, "exp");
  if (!iat || !exp || *exp - *iat != 3600)
    return "exp is not iat + 3600";
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  if (*iat > now + 300 || *iat < now - 300)
    return "iat is not now";
  if (!rs256_verifies(public_pem, parts.substr(0, second), *signature))
    return "the signature does not verify with the service account's "
           "public key";
  return {};
}

/// Google's token endpoint: a POST of a form to google_token_path whose
/// JWT passes jwt_problem (against `public_pem` and `token_uri`) gets
/// google_token_granted, any other POST there google_token_refused (400),
/// anything else 404.
fake_handler google_token_endpoint(std::string public_pem,
                                   std::string token_uri) {
  return [=](const fake_request& req) {
    fake_response r;
    if (req.method != "POST" || req.target != google_token_path) {
      r.status = 404;
      r.body = R"({"error":"not_found"})";
      return r;
    }
    if (header_of(req, "content-type") != "application/x-www-form-urlencoded"
        || !jwt_problem(req.body, public_pem, token_uri).empty()) {
      r.status = 400;
      r.body = google_token_refused;
      return r;
    }
    r.body = google_token_granted;
    return r;
  };
}

/// Makes `token` Google's token endpoint, verifying JWTs with the public
/// half of the service account's key: the token URL its JWTs must name as
/// aud (the fake's own, known only once it listens).
std::string serve_google_tokens(fake_upstream& token) {
  auto token_uri = token.base_url() + google_token_path;
  token.set_handler(google_token_endpoint(sa_key().public_pem, token_uri));
  return token_uri;
}

/// The claims of the JWT in the `assertion` field of a token request's
/// form body.
nlohmann::json assertion_claims(const std::string& form) {
  auto at = form.find("assertion=");
  REQUIRE(at != std::string::npos);
  auto start = at + std::string{"assertion="}.size();
  auto jwt = form.substr(start, form.find('&', start) - start);
  auto first = jwt.find('.');
  REQUIRE(first != std::string::npos);
  auto second = jwt.find('.', first + 1);
  REQUIRE(second != std::string::npos);
  return nlohmann::json::parse(
    from_base64url(jwt.substr(first + 1, second - first - 1)));
}

/// Claude's answer on Vertex: an Anthropic message.
const std::string claude_message
  = R"({"id":"msg_vrtx_1","type":"message","role":"assistant",)"
    R"("model":"claude-sonnet-4-20250514",)"
    R"("content":[{"type":"text","text":"Salut from Vertex"}],)"
    R"("stop_reason":"end_turn","stop_sequence":null,)"
    R"("usage":{"input_tokens":4,"output_tokens":3}})";

/// Vertex serving Claude: rawPredict answers claude_message,
/// streamRawPredict an Anthropic stream that says "Bonjour"; anything
/// else is 404.
fake_handler vertex_claude() {
  return [](const fake_request& req) {
    fake_response r;
    if (req.method == "POST" && req.target.ends_with(":streamRawPredict")) {
      r.content_type = "text/event-stream";
      r.chunks = anthropic_stream({"Bon", "jour"});
      return r;
    }
    if (req.method == "POST" && req.target.ends_with(":rawPredict")) {
      r.body = claude_message;
      return r;
    }
    r.status = 404;
    r.body = R"({"error":{"code":404,"message":"not found",)"
             R"("status":"NOT_FOUND"}})";
    return r;
  };
}

} // namespace

TEST_CASE("azure with Entra ID calls the deployment with the token the "
          "gateway fetched",
          "[integration]") {
  clear_azure_env();
  fake_upstream token{token_endpoint(200, token_granted)};
  // Refuses anything but the token, and a deployment URL without an
  // api-version.
  fake_upstream azure{azure_like("authorization", {"Bearer tok-A"}, true)};
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
  fake_upstream azure{azure_like("authorization", {"Bearer tok-A"}, true)};
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

TEST_CASE("an Entra ID token near its expiry is renewed before it ends and "
          "no request fails",
          "[integration]") {
  clear_azure_env();
  // Tokens of 8 s: the MODEL renews at max(8 - min(8 / 4, 300), 5) = 6 s,
  // 2 s before tok-1 ends. tok-2 lives 9 s, so that the line of its
  // arrival differs from tok-1's and can be waited for.
  fake_upstream token{token_endpoint_granting(
    {R"({"token_type":"Bearer","expires_in":8,"access_token":"tok-1"})",
     R"({"token_type":"Bearer","expires_in":9,"access_token":"tok-2"})"})};
  fake_upstream azure{
    azure_like("authorization", {"Bearer tok-1", "Bearer tok-2"}, true)};
  gateway_process gw{make_config(
    azure_entra_model("az", azure.base_url(), token.base_url()), "az")};
  // Every chat's status: all must be 200.
  std::vector<unsigned> statuses;
  // A chat that must succeed; the token it reached the upstream with.
  auto chat_ok = [&] {
    auto res = chat(gw, "az");
    statuses.push_back(res.status);
    INFO(res.body);
    REQUIRE(res.status == 200);
    CHECK(res.json()["model"] == "az");
    auto sent = posts(azure);
    REQUIRE_FALSE(sent.empty());
    return header_of(sent.back(), "authorization");
  };

  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\""));
  CHECK(chat_ok() == "Bearer tok-1");

  // The renewal, while tok-1 is still good.
  REQUIRE(token.wait_for_requests(2, 20s));
  // tok-2's arrival: the second credential_renewed line, told from the
  // first by the life it gives.
  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\",\"model\":"
                             "\"az\",\"expires_in_s\":9,",
                             20s));
  CHECK(occurrences(gw.output(), "\"event\":\"credential_renewed\"") >= 2);
  // tok-2 was in the MODEL's settings before it said so; a few more tries
  // only guard against a slow log line. Each of them must succeed.
  std::string used;
  for (int i = 0; i < 50 && used != "Bearer tok-2"; ++i)
    used = chat_ok();
  CHECK(used == "Bearer tok-2");
  INFO("chats: " << statuses.size());
  CHECK(std::all_of(statuses.begin(), statuses.end(),
                    [](unsigned status) { return status == 200; }));

  auto asked = token.requests();
  REQUIRE(asked.size() >= 2);
  for (size_t i = 0; i < 2; ++i) {
    INFO(asked[i].body);
    CHECK(asked[i].method == "POST");
    CHECK(asked[i].target == token_path);
    CHECK(contains(asked[i].body, "grant_type=client_credentials"));
  }
  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, "\"event\":\"credential_failed\""));
  CHECK_FALSE(contains(logs, client_secret));
  CHECK_FALSE(contains(logs, "tok-1"));
  CHECK_FALSE(contains(logs, "tok-2"));
}

TEST_CASE("an azure model whose token endpoint is down falls back along its "
          "chain",
          "[integration]") {
  clear_azure_env();
  fake_upstream azure{azure_like("authorization", {"Bearer tok-A"}, true)};
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
  // Refuses anything but the key; the v1 API needs no api-version.
  fake_upstream azure{azure_like("api-key", {upstream_key}, false)};
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

  azure.set_handler(
    azure_like("api-key", {upstream_key}, false,
               messages_api::stream_with(openai_stream({"Hel", "lo"}))));
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

TEST_CASE("vertex calls Gemini on its OpenAI-compatible endpoint with a "
          "service account's token",
          "[integration]") {
  clear_google_env();
  temp_dir dir;
  // Google's token endpoint, which grants a token only for a JWT that
  // verifies with the service account's public key: its handler needs its
  // own URL, so it is set once the fake listens.
  fake_upstream token{token_endpoint(404, R"({"error":"not_found"})")};
  auto token_uri = serve_google_tokens(token);
  fake_upstream vertex{answer_ok("hi from vertex")};
  auto credentials = write_service_account(dir, token_uri);
  gateway_process gw{make_config(vertex_model("gv", "google/gemini-2.0-flash",
                                              vertex.base_url(), credentials),
                                 "gv")};
  REQUIRE(token.wait_for_requests(1));
  // The token is in the MODEL's settings once it says so.
  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\""));
  auto res = chat(gw, "gv");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "gv");
  CHECK(res.json()["choices"][0]["message"]["content"] == "hi from vertex");
  auto sent = posts(vertex);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target
        == "/v1/projects/p1/locations/us-central1/endpoints/openapi/chat/"
           "completions");
  CHECK(header_of(sent[0], "authorization") == "Bearer ya29.A");
  CHECK_FALSE(sent[0].has_header("x-api-key"));
  CHECK(nlohmann::json::parse(sent[0].body)["model"]
        == "google/gemini-2.0-flash");
  // No health check: Vertex was asked nothing else.
  CHECK(vertex.requests().size() == 1);

  auto asked = token.requests();
  REQUIRE_FALSE(asked.empty());
  CHECK(asked[0].method == "POST");
  CHECK(asked[0].target == google_token_path);
  CHECK(header_of(asked[0], "content-type")
        == "application/x-www-form-urlencoded");
  INFO(asked[0].body);
  CHECK(contains(asked[0].body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                                "grant-type%3Ajwt-bearer"));
  CHECK(contains(asked[0].body, "assertion=eyJ"));
  CHECK_FALSE(contains(asked[0].body, "PRIVATE"));
  // The fake granted the token, so the JWT verified; this says why if not.
  CHECK(jwt_problem(asked[0].body, sa_key().public_pem, token_uri) == "");
  auto claims = assertion_claims(asked[0].body);
  CHECK(claims["iss"] == sa_email);
  CHECK(claims["aud"] == token_uri);
  CHECK(claims["scope"] == "https://www.googleapis.com/auth/cloud-platform");

  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, "ya29.A"));
  CHECK_FALSE(contains(logs, "BEGIN PRIVATE KEY"));
}

TEST_CASE("vertex with a key Google does not know for its service account "
          "fails chats with invalid_grant",
          "[integration]") {
  clear_google_env();
  temp_dir dir;
  // Verifies with the public half of sa_key(), the key Google knows.
  fake_upstream token{token_endpoint(404, R"({"error":"not_found"})")};
  auto token_uri = serve_google_tokens(token);
  fake_upstream vertex{answer_ok("hi from vertex")};
  // The credentials file holds another key.
  auto credentials
    = write_service_account(dir, token_uri, unknown_key().private_pem);
  gateway_process gw{make_config(vertex_model("gv", "google/gemini-2.0-flash",
                                              vertex.base_url(), credentials),
                                 "gv")};
  REQUIRE(token.wait_for_requests(1));
  // The MODEL keeps the reason once it logged the failure.
  REQUIRE(gw.wait_for_output("\"event\":\"credential_failed\""));
  auto asked = token.requests();
  REQUIRE_FALSE(asked.empty());
  INFO(asked[0].body);
  CHECK_FALSE(contains(asked[0].body, "PRIVATE KEY"));
  // All else in the JWT is right: only its signature gives it away.
  CHECK(contains(jwt_problem(asked[0].body, sa_key().public_pem, token_uri),
                 "signature"));
  CHECK(jwt_problem(asked[0].body, unknown_key().public_pem, token_uri) == "");

  auto failed = chat(gw, "gv");
  INFO(failed.body);
  CHECK(failed.status == 502);
  auto message = error_of(failed)["message"].get<std::string>();
  CHECK(contains(message, "no valid credentials"));
  CHECK(contains(message, "invalid_grant"));
  CHECK_FALSE(contains(failed.body, "PRIVATE KEY"));
  // The provider was not called without a token.
  CHECK(posts(vertex).empty());

  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK(contains(logs, "invalid_grant"));
  CHECK_FALSE(contains(logs, "PRIVATE KEY"));
  CHECK_FALSE(contains(logs, "ya29.A"));
}

TEST_CASE("vertex calls Claude through rawPredict and streamRawPredict",
          "[integration]") {
  clear_google_env();
  temp_dir dir;
  fake_upstream token{token_endpoint(404, R"({"error":"not_found"})")};
  auto token_uri = serve_google_tokens(token);
  fake_upstream vertex{vertex_claude()};
  auto credentials = write_service_account(dir, token_uri);
  // A model id starting with "claude": the publisher is anthropic.
  gateway_process gw{
    make_config(vertex_model("cv", "claude-sonnet-4@20250514",
                             vertex.base_url(), credentials, "us-east5"),
                "cv")};
  REQUIRE(token.wait_for_requests(1));
  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\""));

  auto res = chat(gw, "cv");
  INFO(res.body);
  REQUIRE(res.status == 200);
  auto j = res.json();
  CHECK(j["object"] == "chat.completion");
  CHECK(j["model"] == "cv");
  CHECK(j["choices"][0]["message"]["content"] == "Salut from Vertex");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["usage"]["total_tokens"] == 7);

  nlohmann::json body = {{"model", "cv"},
                         {"stream", true},
                         {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto r = send_once(gw.port(), raw_chat_request(body));
  INFO(r.head);
  INFO(r.body);
  CHECK(r.head.starts_with("HTTP/1.1 200"));
  CHECK(contains(r.head, "Content-Type: text/event-stream"));
  CHECK(chat_text(r) == "Bonjour");
  CHECK(r.count("data: [DONE]") == 1);

  const std::string model_path = "/v1/projects/p1/locations/us-east5/"
                                 "publishers/anthropic/models/"
                                 "claude-sonnet-4@20250514";
  auto sent = posts(vertex);
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].target == model_path + ":rawPredict");
  CHECK(sent[1].target == model_path + ":streamRawPredict");
  for (const auto& req : sent) {
    INFO(req.target);
    INFO(req.body);
    CHECK(header_of(req, "authorization") == "Bearer ya29.A");
    CHECK_FALSE(req.has_header("x-api-key"));
    CHECK_FALSE(req.has_header("anthropic-version"));
    auto sent_body = nlohmann::json::parse(req.body);
    CHECK_FALSE(sent_body.contains("model"));
    CHECK(sent_body["anthropic_version"] == "vertex-2023-10-16");
    CHECK(sent_body["messages"][0]["role"] == "user");
    CHECK(sent_body["max_tokens"] == 4096);
  }
  CHECK_FALSE(nlohmann::json::parse(sent[0].body).contains("stream"));
  CHECK(nlohmann::json::parse(sent[1].body)["stream"] == true);

  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, "ya29.A"));
  CHECK_FALSE(contains(logs, "BEGIN PRIVATE KEY"));
}

TEST_CASE("a chain falls back from azure to vertex, then to echo",
          "[integration]") {
  clear_google_env();
  temp_dir dir;
  // Azure checks the key, then is unavailable.
  fake_upstream azure{azure_like(
    "api-key", {upstream_key}, false,
    messages_api::answer_with(
      503, R"({"error":{"code":"503","message":"The service is temporarily )"
           R"(unable to process your request."}})"))};
  fake_upstream token{token_endpoint(404, R"({"error":"not_found"})")};
  auto token_uri = serve_google_tokens(token);
  fake_upstream vertex{answer_ok("hi from vertex")};
  auto credentials = write_service_account(dir, token_uri);
  gateway_process gw{make_config(
    azure_key_model("az", azure.base_url())
      + vertex_model("gv", "google/gemini-2.0-flash", vertex.base_url(),
                     credentials)
      + echo_model,
    "az", "", "  fallback_chains:\n    main: [\"az\", \"gv\", \"echo\"]\n")};
  REQUIRE(token.wait_for_requests(1));
  // gv's token is in its MODEL's settings once it says so.
  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\""));

  auto res = chat(gw, "az");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "gv");
  CHECK(res.json()["choices"][0]["message"]["content"] == "hi from vertex");
  auto reason = res.header("x-route-reason");
  INFO(reason);
  CHECK(contains(reason, "fallback to gv after az: HTTP 503"));
  auto to_azure = posts(azure);
  REQUIRE(to_azure.size() == 1);
  CHECK(header_of(to_azure[0], "api-key") == upstream_key);
  auto to_vertex = posts(vertex);
  REQUIRE(to_vertex.size() == 1);
  CHECK(to_vertex[0].target
        == "/v1/projects/p1/locations/us-central1/endpoints/openapi/chat/"
           "completions");
  CHECK(header_of(to_vertex[0], "authorization") == "Bearer ya29.A");

  // Vertex fails too: echo answers.
  vertex.set_handler(messages_api::answer_with(
    500, R"({"error":{"code":500,"message":"Internal error encountered.",)"
         R"("status":"INTERNAL"}})"));
  auto second = chat(gw, "az");
  INFO(second.body);
  REQUIRE(second.status == 200);
  CHECK(second.json()["model"] == "echo");
  auto second_reason = second.header("x-route-reason");
  INFO(second_reason);
  CHECK(contains(second_reason, "fallback to echo after az: HTTP 503"));
  CHECK(contains(second_reason, "gv: HTTP 500"));
  CHECK(posts(azure).size() == 2);
  CHECK(posts(vertex).size() == 2);
  CHECK(gw.stop() == 0);
}
