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
// streamRawPredict; a fallback chain from azure to vertex to echo. AWS
// Bedrock against a fake that recomputes each request's SigV4 signature
// as AWS does (403 when it differs), with a shared credentials file's
// profile (and a wrong secret in it) and with temporary credentials from a
// fake STS for a web identity token, Converse whole and ConverseStream's
// event stream split across reads; embeddings through InvokeModel with
// Titan (floats and base64, and more than one input refused before any
// call) and Cohere (its tokens from Bedrock's header); a fallback chain
// from azure to bedrock to vllm.

#include "adapters/adapter.hpp"
#include "adapters/bedrock/event_stream.hpp"
#include "adapters/bedrock/sigv4.hpp"
#include "tests/integration/common.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace pw::test;
using namespace std::chrono_literals;
namespace bedrock = pw::adapters::bedrock;

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

// -- bedrock ------------------------------------------------------------------

/// The region every Bedrock fake here serves and checks signatures for.
const std::string aws_region = "us-east-1";

/// The Bedrock model id of the bedrock models here: its ':' is
/// URI-encoded in the path.
const std::string bedrock_model_id = "anthropic.claude-3-haiku-20240307-v1:0";

/// Where that model's Converse calls go.
const std::string converse_path
  = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";

/// The long-term AWS keys the Bedrock fakes know (AWS's documentation
/// example), in the [test] profile of the credentials files here.
const std::string aws_key_id = "AKIDEXAMPLE";
const std::string aws_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A secret AWS does not know for aws_key_id.
const std::string wrong_aws_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONG0KEY";

/// The [default] profile's keys, which no model here should use.
const std::string default_profile_secret = "default-profile-secret-Vq81";

/// What STS grants for the web identity: temporary keys and their
/// session token.
const std::string temp_key_id = "ASIATEMP";
const std::string temp_secret = "tEmPsEcReT/9dK2+Lp0WqEXAMPLEtempKEY";
const std::string session_token
  = "FwoGZXIvYXdzEJr//////////wEaDTemPSessionToken+Qx7nM2/Vb3=";

/// The role the web identity assumes, and the identity's token.
const std::string role_arn = "arn:aws:iam::123456789012:role/pw-bedrock";
const std::string web_identity_token
  = "eyJhbGciOiJSUzI1NiJ9.web-identity-claims-7f3c.web-identity-sig-d41b";

/// Credentials as the Bedrock fakes check them: a key id, its secret, and
/// for temporary ones the session token.
struct aws_identity {
  std::string key_id;
  std::string secret;
  std::string session_token;
};

/// Environment variables the gateway (which inherits this process's
/// environment) would take AWS credentials, a profile or a region from.
void clear_aws_env() {
  for (const auto* name :
       {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION"})
    ::unsetenv(name);
}

/// Writes `text` to `name` in `dir`; its path.
std::string write_file(const temp_dir& dir, const std::string& name,
                       const std::string& text) {
  auto path = (dir.path / name).string();
  std::ofstream{path, std::ios::binary | std::ios::trunc} << text;
  return path;
}

/// A shared credentials file `name` in `dir` whose [test] profile holds
/// aws_key_id and `secret`, after a [default] profile that must not be
/// used; its path.
std::string write_aws_credentials(const temp_dir& dir,
                                  const std::string& secret,
                                  const std::string& name = "credentials") {
  return write_file(dir, name,
                    "[default]\n"
                    "aws_access_key_id = AKIDDEFAULTPROFILE\n"
                    "aws_secret_access_key = "
                      + default_profile_secret
                      + "\n"
                        "\n"
                        "# the profile of the models here\n"
                        "[test]\n"
                        "aws_access_key_id = "
                      + aws_key_id + "\naws_secret_access_key = " + secret
                      + "\n");
}

/// A `models:` entry for a bedrock model of bedrock_model_id (or
/// `model_id`) in aws_region, Bedrock at `base_url`, its credentials from
/// `credentials` (the model's keys that say where, and any others,
/// indented four spaces).
std::string bedrock_model(const std::string& alias, const std::string& base_url,
                          const std::string& credentials,
                          const std::string& model_id = bedrock_model_id) {
  return "  " + alias + ":\n    provider: bedrock\n    model: \"" + model_id
         + "\"\n    region: " + aws_region + "\n    base_url: \"" + base_url
         + "\"\n" + credentials;
}

/// A bedrock model's keys for the [test] profile of the credentials file
/// `file`.
std::string profile_keys(const std::string& file) {
  return "    aws_credentials_file: \"" + file + "\"\n    aws_profile: test\n";
}

/// A bedrock model's keys for role_arn with the web identity token in
/// `token_file`, from STS at `sts_url`.
std::string web_identity_keys(const std::string& token_file,
                              const std::string& sts_url) {
  return "    role_arn: \"" + role_arn + "\"\n    web_identity_token_file: \""
         + token_file + "\"\n    sts_endpoint: \"" + sts_url + "\"\n";
}

/// `text` split at each `sep`.
std::vector<std::string> split_at(std::string_view text, char sep) {
  std::vector<std::string> out;
  for (;;) {
    auto at = text.find(sep);
    out.emplace_back(text.substr(0, at));
    if (at == std::string_view::npos)
      return out;
    text.remove_prefix(at + 1);
  }
}

/// The `name=value` parameters of an AWS4-HMAC-SHA256 Authorization
/// header (Credential, SignedHeaders, Signature); nothing when it is not
/// one.
std::optional<std::map<std::string, std::string>>
sigv4_params(std::string_view header) {
  constexpr std::string_view algorithm = "AWS4-HMAC-SHA256 ";
  if (!header.starts_with(algorithm))
    return std::nullopt;
  header.remove_prefix(algorithm.size());
  std::map<std::string, std::string> out;
  for (auto part : split_at(header, ',')) {
    auto first = part.find_first_not_of(' ');
    auto last = part.find_last_not_of(' ');
    if (first == std::string::npos)
      return std::nullopt;
    part = part.substr(first, last - first + 1);
    auto eq = part.find('=');
    if (eq == std::string::npos)
      return std::nullopt;
    out[part.substr(0, eq)] = part.substr(eq + 1);
  }
  return out;
}

/// Whether `amz_date` (YYYYMMDDTHHMMSSZ) is within five minutes of now,
/// as AWS wants it.
bool amz_date_is_now(const std::string& amz_date) {
  std::tm tm{};
  const char* end = ::strptime(amz_date.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (end == nullptr || *end != '\0')
    return false;
  auto skew = std::time(nullptr) - ::timegm(&tm);
  return skew <= 300 && skew >= -300;
}

/// What Bedrock would refuse in the signature of a request: `exception` is
/// the error type it would name (empty when the request verifies), `why`
/// what differs.
struct signing_verdict {
  std::string exception;
  std::string why;
};

/// Checks the SigV4 signature of `req` as AWS does, for service bedrock in
/// aws_region and the credentials `who`: the Authorization header's scope,
/// X-Amz-Date (the scope's date, within five minutes of now),
/// X-Amz-Content-Sha256 (the body's SHA-256), X-Amz-Security-Token (the
/// session token, none for long-term keys), and the signature recomputed
/// over the request's method, path, query, the headers SignedHeaders names
/// and the body. It throws nothing: the fakes run it on their own thread.
signing_verdict signing_problem(const fake_request& req,
                                const aws_identity& who) {
  auto refuse = [](std::string exception, std::string why) {
    return signing_verdict{std::move(exception), std::move(why)};
  };
  auto sent = header_of(req, "authorization");
  auto params = sigv4_params(sent);
  if (!params || params->count("Credential") == 0
      || params->count("SignedHeaders") == 0 || params->count("Signature") == 0)
    return refuse("IncompleteSignatureException",
                  "no AWS4-HMAC-SHA256 Authorization header with Credential, "
                  "SignedHeaders and Signature: '"
                    + sent + "'");
  auto scope = split_at(params->at("Credential"), '/');
  if (scope.size() != 5 || scope[4] != "aws4_request")
    return refuse("IncompleteSignatureException",
                  "the Credential is not KEY/DATE/REGION/SERVICE/aws4_request");
  if (scope[0] != who.key_id)
    return refuse("UnrecognizedClientException",
                  "the access key id is " + scope[0] + ", not " + who.key_id);
  if (scope[2] != aws_region || scope[3] != "bedrock")
    return refuse("InvalidSignatureException", "the scope names " + scope[2]
                                                 + "/" + scope[3]
                                                 + ", not us-east-1/bedrock");
  auto date = header_of(req, "x-amz-date");
  if (date.size() != 16 || date.substr(0, 8) != scope[1])
    return refuse("IncompleteSignatureException",
                  "X-Amz-Date '" + date + "' is not of the scope's date "
                    + scope[1]);
  if (!amz_date_is_now(date))
    return refuse("InvalidSignatureException",
                  "X-Amz-Date " + date + " is not within 5 minutes of now");
  if (header_of(req, "x-amz-content-sha256") != bedrock::sha256_hex(req.body))
    return refuse("InvalidSignatureException",
                  "X-Amz-Content-Sha256 is not the body's SHA-256");
  if (header_of(req, "x-amz-security-token") != who.session_token)
    return refuse("UnrecognizedClientException",
                  who.session_token.empty()
                    ? "an X-Amz-Security-Token with long-term keys"
                    : "X-Amz-Security-Token is not the session token");
  bedrock::signable_request signable;
  signable.method = req.method;
  auto q = req.target.find('?');
  signable.path = req.target.substr(0, q);
  if (q != std::string::npos)
    signable.query = req.target.substr(q + 1);
  bool host = false;
  bool dated = false;
  for (auto name : split_at(params->at("SignedHeaders"), ';')) {
    // The fake's header names are lower-case; so are those SigV4 signs.
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    host = host || name == "host";
    dated = dated || name == "x-amz-date";
    auto it = req.headers.find(name);
    if (it == req.headers.end())
      return refuse("InvalidSignatureException",
                    "the signed header '" + name + "' was not sent");
    signable.headers.push_back({name, it->second});
  }
  if (!host || !dated)
    return refuse("InvalidSignatureException",
                  "SignedHeaders does not name host and x-amz-date");
  signable.payload = req.body;
  bedrock::aws_credentials credentials;
  credentials.access_key_id = who.key_id;
  credentials.secret_access_key = pw::redacted_string{who.secret};
  credentials.session_token = pw::redacted_string{who.session_token};
  auto expected = sigv4_params(
    bedrock::authorization(signable, credentials, aws_region, "bedrock", date));
  if (!expected || expected->at("Signature") != params->at("Signature"))
    return refuse("InvalidSignatureException",
                  "the signature does not verify with the secret of "
                    + who.key_id);
  return {};
}

/// What Bedrock answers a request whose signature does not verify.
const std::string signature_mismatch
  = R"({"message":"The request signature we calculated does not match )"
    R"(the signature you provided."})";

/// What Bedrock answers a key id or session token it does not know.
const std::string unrecognized_client
  = R"({"message":"The security token included in the request is )"
    R"(invalid."})";

/// Bedrock's answer to a Converse call.
const std::string converse_answer
  = R"({"output":{"message":{"role":"assistant","content":[{"text":)"
    R"("Hi from Bedrock"}]}},"stopReason":"end_turn","usage":)"
    R"({"inputTokens":5,"outputTokens":3,"totalTokens":8},)"
    R"("metrics":{"latencyMs":212}})";

/// Bedrock's ConverseStream answer that says "Hi " and "there", as
/// event-stream frames cut into pieces of 37 bytes: most frames arrive
/// split, some pieces end one frame and begin the next.
std::vector<fake_chunk> converse_stream_chunks() {
  std::string bytes;
  auto event = [&](const std::string& type, const nlohmann::json& payload) {
    bytes += bedrock::encode_event({{":event-type", type},
                                    {":content-type", "application/json"},
                                    {":message-type", "event"}},
                                   payload.dump());
  };
  event("messageStart", {{"role", "assistant"}});
  event("contentBlockDelta",
        {{"contentBlockIndex", 0}, {"delta", {{"text", "Hi "}}}});
  event("contentBlockDelta",
        {{"contentBlockIndex", 0}, {"delta", {{"text", "there"}}}});
  event("contentBlockStop", {{"contentBlockIndex", 0}});
  event("messageStop", {{"stopReason", "end_turn"}});
  event(
    "metadata",
    {{"usage", {{"inputTokens", 5}, {"outputTokens", 2}, {"totalTokens", 7}}},
     {"metrics", {{"latencyMs", 180}}}});
  std::vector<fake_chunk> out;
  for (size_t at = 0; at < bytes.size(); at += 37)
    out.push_back({std::chrono::milliseconds{0}, bytes.substr(at, 37)});
  return out;
}

/// Bedrock serving the model: converse_answer on converse_path, the
/// stream of converse_stream_chunks on its /converse-stream; anything
/// else is 404.
fake_handler converse_ok() {
  return [](const fake_request& req) {
    fake_response r;
    if (req.method == "POST" && req.target == converse_path) {
      r.body = converse_answer;
      return r;
    }
    if (req.method == "POST" && req.target == converse_path + "-stream") {
      r.content_type = "application/vnd.amazon.eventstream";
      r.chunks = converse_stream_chunks();
      return r;
    }
    r.status = 404;
    r.headers = {{"x-amzn-ErrorType", "UnknownOperationException"}};
    r.body = R"({"message":"Unknown operation"})";
    return r;
  };
}

/// Bedrock's runtime as it checks a request: 403 with AWS's error unless
/// it is signed for `who` (signing_problem), else `ok` answers.
fake_handler bedrock_like(aws_identity who, fake_handler ok = converse_ok()) {
  return [=](const fake_request& req) {
    auto verdict = signing_problem(req, who);
    if (verdict.exception.empty())
      return ok(req);
    fake_response r;
    r.status = 403;
    r.headers = {{"x-amzn-ErrorType", verdict.exception}};
    r.body = verdict.exception == "UnrecognizedClientException"
               ? unrecognized_client
             : verdict.exception == "InvalidSignatureException"
               ? signature_mismatch
               : nlohmann::json{{"message", verdict.why}}.dump();
    return r;
  };
}

/// The Titan and Cohere embedding models of the embeddings tests, and
/// where their InvokeModel calls go (the ':' URI-encoded).
const std::string titan_model_id = "amazon.titan-embed-text-v2:0";
const std::string titan_invoke_path
  = "/model/amazon.titan-embed-text-v2%3A0/invoke";
const std::string cohere_model_id = "cohere.embed-english-v3";
const std::string cohere_invoke_path = "/model/cohere.embed-english-v3/invoke";

/// A model's keys that make it serve embeddings only.
const std::string embeddings_only = "    endpoints: [embeddings]\n";

/// Titan's answer to {"inputText":"hello"}: one vector and its tokens.
const std::string titan_embedding
  = R"({"embedding":[0.5,-0.25],"inputTextTokenCount":3})";

/// Cohere's answer to two texts: no token count in the body (Bedrock
/// sends it as a header).
const std::string cohere_embeddings
  = R"({"embeddings":[[1,2],[3,4]],"id":"e",)"
    R"("response_type":"embeddings_floats","texts":["a","b"]})";

/// Bedrock's InvokeModel of the model whose calls go to `path`: `answer`
/// with the response headers `headers` to a POST there whose body is the
/// JSON `expected`, a ValidationException (400) to another body; anything
/// else is 404. It throws nothing: it runs on the fake's thread.
fake_handler
invoke_ok(std::string path, nlohmann::json expected, std::string answer,
          std::vector<std::pair<std::string, std::string>> headers = {}) {
  return [=](const fake_request& req) {
    fake_response r;
    if (req.method != "POST" || req.target != path) {
      r.status = 404;
      r.headers = {{"x-amzn-ErrorType", "UnknownOperationException"}};
      r.body = R"({"message":"Unknown operation"})";
      return r;
    }
    // (A body that is no JSON parses to a discarded value, which makes
    // == and != both false: hence the negated ==.)
    if (!(nlohmann::json::parse(req.body, nullptr, false) == expected)) {
      r.status = 400;
      r.headers = {{"x-amzn-ErrorType", "ValidationException"}};
      r.body = R"({"message":"Malformed input request, please reformat )"
               R"(your input and try again."})";
      return r;
    }
    r.body = answer;
    r.headers = headers;
    return r;
  };
}

/// A gateway with one Titan embeddings model, "ti", on a fake Bedrock that
/// checks SigV4 and answers titan_embedding to the InvokeModel body
/// `expected`; static credentials from a profile file, no AWS_* variables.
struct titan_rig {
  explicit titan_rig(const nlohmann::json& expected)
      : cleared((clear_aws_env(), true)),
        bedrock{bedrock_like(
          aws_identity{aws_key_id, aws_secret, ""},
          invoke_ok(titan_invoke_path, expected, titan_embedding))},
        gw{make_config(
             bedrock_model("ti", bedrock.base_url(),
                           profile_keys(write_aws_credentials(dir, aws_secret))
                             + embeddings_only,
                           titan_model_id),
             "ti"),
           {{"HOME", dir.path.string()}}} {}

  bool cleared;
  temp_dir dir;
  fake_upstream bedrock;
  gateway_process gw;
};

http_response embed(const gateway_process& gw, const std::string& body) {
  return http_request(gw.port(), "POST", "/v1/embeddings", body,
                      auth_json(full_key));
}

/// `t` as STS writes an Expiration: YYYY-MM-DDTHH:MM:SSZ, UTC.
std::string iso_utc(std::chrono::system_clock::time_point t) {
  auto tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// STS's answer to AssumeRoleWithWebIdentity granting `temp`, which
/// expires at `expiration`.
std::string sts_granted(const aws_identity& temp,
                        const std::string& expiration) {
  return "<AssumeRoleWithWebIdentityResponse "
         "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
         "  <AssumeRoleWithWebIdentityResult>\n"
         "    <SubjectFromWebIdentityToken>system:serviceaccount:ai:pw-router"
         "</SubjectFromWebIdentityToken>\n"
         "    <Audience>sts.amazonaws.com</Audience>\n"
         "    <AssumedRoleUser>\n"
         "      <Arn>arn:aws:sts::123456789012:assumed-role/pw-bedrock/"
         "pw-router</Arn>\n"
         "      <AssumedRoleId>AROAEXAMPLEROLEID:pw-router</AssumedRoleId>\n"
         "    </AssumedRoleUser>\n"
         "    <Credentials>\n"
         "      <SessionToken>"
         + temp.session_token
         + "</SessionToken>\n"
           "      <SecretAccessKey>"
         + temp.secret
         + "</SecretAccessKey>\n"
           "      <Expiration>"
         + expiration
         + "</Expiration>\n"
           "      <AccessKeyId>"
         + temp.key_id
         + "</AccessKeyId>\n"
           "    </Credentials>\n"
           "    <Provider>arn:aws:iam::123456789012:oidc-provider/"
           "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE</Provider>\n"
           "  </AssumeRoleWithWebIdentityResult>\n"
           "  <ResponseMetadata>\n"
           "    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
           "  </ResponseMetadata>\n"
           "</AssumeRoleWithWebIdentityResponse>\n";
}

/// STS's error answer: `code` and `message` in its XML envelope.
std::string sts_error(const std::string& code, const std::string& message) {
  return "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
         "<Error><Type>Sender</Type><Code>"
         + code + "</Code><Message>" + message
         + "</Message></Error>"
           "<RequestId>2fd1b1ea-5c68-4b28-9f53-000000000000</RequestId>"
           "</ErrorResponse>";
}

/// AWS STS as it checks AssumeRoleWithWebIdentity: a form POST to "/"
/// with the Action, RoleArn role_arn and WebIdentityToken `token` gets
/// `granted` (text/xml); a wrong action, role or token its error (400 or
/// 403); anything else is 404.
fake_handler sts_like(std::string token, std::string granted) {
  return [=](const fake_request& req) {
    fake_response r;
    r.content_type = "text/xml";
    if (req.method != "POST" || req.target != "/") {
      r.status = 404;
      r.body = sts_error("NotFound", "no such resource");
      return r;
    }
    auto fields = form_fields(req.body);
    auto field = [&](const std::string& name) {
      if (!fields)
        return std::string{};
      auto it = fields->find(name);
      return it == fields->end() ? std::string{} : it->second;
    };
    if (header_of(req, "content-type") != "application/x-www-form-urlencoded"
        || field("Action") != "AssumeRoleWithWebIdentity") {
      r.status = 400;
      r.body = sts_error("InvalidAction", "Could not find operation "
                                          "AssumeRoleWithWebIdentity");
      return r;
    }
    if (field("RoleArn") != role_arn) {
      r.status = 403;
      r.body = sts_error("AccessDenied", "Not authorized to perform "
                                         "sts:AssumeRoleWithWebIdentity");
      return r;
    }
    if (field("WebIdentityToken") != token) {
      r.status = 400;
      r.body = sts_error("InvalidIdentityToken",
                         "The web identity token is not valid");
      return r;
    }
    r.body = granted;
    return r;
  };
}

/// The first line of `text` that contains `part`, parsed as a JSON log
/// line (discarded when there is none, or it is no JSON).
nlohmann::json log_line_with(const std::string& text, const std::string& part) {
  auto at = text.find(part);
  if (at == std::string::npos)
    return nlohmann::json(nlohmann::json::value_t::discarded);
  auto begin = text.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  auto end = text.find('\n', at);
  return nlohmann::json::parse(text.substr(begin, end - begin), nullptr, false);
}

/// The content pieces of a chat stream, in order (empty ones left out).
std::vector<std::string> content_pieces(const raw_response& r) {
  std::vector<std::string> out;
  for (const auto& e : r.events()) {
    auto j = nlohmann::json::parse(e.data, nullptr, false);
    if (!j.is_object() || !j.contains("choices") || j["choices"].empty())
      continue;
    auto delta = j["choices"][0].value("delta", nlohmann::json::object());
    if (delta.contains("content") && delta["content"].is_string()
        && !delta["content"].get<std::string>().empty())
      out.push_back(delta["content"].get<std::string>());
  }
  return out;
}

/// The finish_reason of a chat stream's last chunk that has one.
std::string stream_finish_reason(const raw_response& r) {
  std::string out;
  for (const auto& e : r.events()) {
    auto j = nlohmann::json::parse(e.data, nullptr, false);
    if (!j.is_object() || !j.contains("choices") || j["choices"].empty())
      continue;
    const auto& reason = j["choices"][0]["finish_reason"];
    if (reason.is_string())
      out = reason.get<std::string>();
  }
  return out;
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

TEST_CASE("bedrock signs Converse calls that a SigV4-checking fake accepts, "
          "whole and streamed",
          "[integration]") {
  // The gateway inherits this environment: no AWS keys, profile or region
  // from it.
  clear_aws_env();
  temp_dir dir;
  const aws_identity who{aws_key_id, aws_secret, ""};
  fake_upstream bedrock_fake{bedrock_like(who)};
  auto credentials = write_aws_credentials(dir, aws_secret);
  // HOME too: no ~/.aws of the machine's (read only without a file).
  const std::map<std::string, std::string> home{{"HOME", dir.path.string()}};
  {
    gateway_process gw{make_config(bedrock_model("br", bedrock_fake.base_url(),
                                                 profile_keys(credentials)),
                                   "br"),
                       home};
    auto res = chat(gw, "br");
    INFO(res.body);
    REQUIRE(res.status == 200);
    auto j = res.json();
    CHECK(j["object"] == "chat.completion");
    CHECK(j["model"] == "br");
    CHECK(j["choices"][0]["message"]["role"] == "assistant");
    CHECK(j["choices"][0]["message"]["content"] == "Hi from Bedrock");
    CHECK(j["choices"][0]["finish_reason"] == "stop");
    CHECK(j["usage"]["prompt_tokens"] == 5);
    CHECK(j["usage"]["completion_tokens"] == 3);

    auto sent = posts(bedrock_fake);
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == converse_path);
    // The fake answered 200, so the signature verified; this says why if
    // not.
    auto verdict = signing_problem(sent[0], who);
    INFO(verdict.why);
    CHECK(verdict.exception == "");
    auto authorization = header_of(sent[0], "authorization");
    INFO(authorization);
    CHECK(authorization.starts_with("AWS4-HMAC-SHA256 Credential=" + aws_key_id
                                    + "/"));
    CHECK(contains(authorization, "/us-east-1/bedrock/aws4_request"));
    CHECK(header_of(sent[0], "x-amz-content-sha256")
          == bedrock::sha256_hex(sent[0].body));
    CHECK_FALSE(sent[0].has_header("x-amz-security-token"));
    CHECK_FALSE(sent[0].has_header("x-api-key"));
    CHECK_FALSE(contains(authorization, aws_secret));
    INFO(sent[0].body);
    auto converse = nlohmann::json::parse(sent[0].body);
    CHECK_FALSE(converse.contains("model"));
    CHECK_FALSE(converse.contains("stream"));
    CHECK(converse["messages"][0]["role"] == "user");
    CHECK(converse["messages"][0]["content"][0]["text"] == "hello");
    CHECK(converse["inferenceConfig"]["maxTokens"] == 4096);

    nlohmann::json body
      = {{"model", "br"},
         {"stream", true},
         {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    auto r = send_once(gw.port(), raw_chat_request(body));
    INFO(r.head);
    INFO(r.body);
    CHECK(r.head.starts_with("HTTP/1.1 200"));
    CHECK(contains(r.head, "Content-Type: text/event-stream"));
    const std::vector<std::string> pieces{"Hi ", "there"};
    CHECK(content_pieces(r) == pieces);
    CHECK(chat_text(r) == "Hi there");
    CHECK(stream_finish_reason(r) == "stop");
    CHECK(r.count("data: [DONE]") == 1);

    sent = posts(bedrock_fake);
    REQUIRE(sent.size() == 2);
    CHECK(sent[1].target == converse_path + "-stream");
    CHECK(header_of(sent[1], "accept") == "application/vnd.amazon.eventstream");
    auto streamed = signing_problem(sent[1], who);
    INFO(streamed.why);
    CHECK(streamed.exception == "");
    auto streamed_converse = nlohmann::json::parse(sent[1].body);
    CHECK(streamed_converse["messages"][0]["content"][0]["text"] == "hi");

    CHECK(gw.stop() == 0);
    auto logs = gw.output() + gw.errors();
    CHECK_FALSE(contains(logs, aws_secret));
    CHECK_FALSE(contains(logs, default_profile_secret));
  }

  // The same key id with a secret AWS does not know for it.
  auto wrong = write_aws_credentials(dir, wrong_aws_secret, "wrong");
  gateway_process gw{
    make_config(
      bedrock_model("br", bedrock_fake.base_url(), profile_keys(wrong)), "br"),
    home};
  auto refused = chat(gw, "br");
  INFO(refused.body);
  // A 403 of the provider's is relayed as about the gateway's credentials.
  CHECK(refused.status == 403);
  auto e = error_of(refused);
  CHECK(e["type"] == "upstream_auth_error");
  CHECK(e["code"] == "upstream_rejected");
  // Not Bedrock's message: the client learns only that the gateway's
  // credentials were refused.
  CHECK(e["message"]
        == "The upstream provider for model 'br' rejected the gateway's "
           "credentials (HTTP 403); contact the gateway operator");
  CHECK_FALSE(contains(refused.body, wrong_aws_secret));
  CHECK_FALSE(contains(refused.body, aws_secret));
  auto sent = posts(bedrock_fake);
  REQUIRE(sent.size() == 3);
  CHECK(sent[2].target == converse_path);
  // All else is right: only the secret gives it away.
  auto verdict = signing_problem(sent[2], who);
  CHECK(verdict.exception == "InvalidSignatureException");
  auto with_wrong
    = signing_problem(sent[2], {aws_key_id, wrong_aws_secret, ""});
  INFO(with_wrong.why);
  CHECK(with_wrong.exception == "");
  CHECK_FALSE(contains(header_of(sent[2], "authorization"), wrong_aws_secret));

  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, wrong_aws_secret));
  CHECK_FALSE(contains(logs, aws_secret));
  CHECK_FALSE(contains(logs, default_profile_secret));
}

TEST_CASE("bedrock takes temporary credentials from STS with a web identity "
          "token file",
          "[integration]") {
  clear_aws_env();
  temp_dir dir;
  const aws_identity temp{temp_key_id, temp_secret, session_token};
  // The temporary credentials end in an hour.
  auto expiration = iso_utc(std::chrono::system_clock::now() + 1h);
  fake_upstream sts{
    sts_like(web_identity_token, sts_granted(temp, expiration))};
  // Knows only the temporary credentials, with their session token.
  fake_upstream bedrock_fake{bedrock_like(temp)};
  // As the platform writes it: the token alone.
  auto token_file = write_file(dir, "token", web_identity_token);
  gateway_process gw{
    make_config(bedrock_model("br", bedrock_fake.base_url(),
                              web_identity_keys(token_file, sts.base_url())),
                "br"),
    {{"HOME", dir.path.string()}}};
  REQUIRE(sts.wait_for_requests(1));
  // The credentials are in the MODEL's settings once it says so.
  REQUIRE(gw.wait_for_output("\"event\":\"credential_renewed\""));

  auto asked = sts.requests();
  REQUIRE_FALSE(asked.empty());
  CHECK(asked[0].method == "POST");
  CHECK(asked[0].target == "/");
  CHECK(header_of(asked[0], "content-type")
        == "application/x-www-form-urlencoded");
  // AssumeRoleWithWebIdentity is not signed: the token is the proof.
  CHECK_FALSE(asked[0].has_header("authorization"));
  auto fields = form_fields(asked[0].body);
  REQUIRE(fields);
  CHECK((*fields)["Action"] == "AssumeRoleWithWebIdentity");
  CHECK((*fields)["Version"] == "2011-06-15");
  CHECK((*fields)["RoleArn"] == role_arn);
  CHECK((*fields)["RoleSessionName"] == "pw-router");
  CHECK((*fields)["WebIdentityToken"] == web_identity_token);
  CHECK((*fields)["DurationSeconds"] == "3600");

  auto res = chat(gw, "br");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "br");
  CHECK(res.json()["choices"][0]["message"]["content"] == "Hi from Bedrock");
  auto sent = posts(bedrock_fake);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == converse_path);
  auto verdict = signing_problem(sent[0], temp);
  INFO(verdict.why);
  CHECK(verdict.exception == "");
  CHECK(header_of(sent[0], "x-amz-security-token") == session_token);
  CHECK(header_of(sent[0], "authorization")
          .starts_with("AWS4-HMAC-SHA256 Credential=" + temp_key_id + "/"));
  CHECK_FALSE(contains(header_of(sent[0], "authorization"), temp_secret));
  // STS was asked once: the next fetch is due in about 55 minutes.
  CHECK(sts.requests().size() == 1);

  CHECK(gw.stop() == 0);
  // The Expiration was read: a life of about an hour. (Its whole line is
  // there once the gateway has stopped.)
  auto renewed = log_line_with(gw.output(), "\"event\":\"credential_renewed\"");
  INFO(renewed.dump());
  REQUIRE(renewed.is_object());
  CHECK(renewed["model"] == "br");
  REQUIRE(renewed["expires_in_s"].is_number_integer());
  CHECK(renewed["expires_in_s"].get<int64_t>() > 3500);
  CHECK(renewed["expires_in_s"].get<int64_t>() <= 3600);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, temp_secret));
  CHECK_FALSE(contains(logs, session_token));
  CHECK_FALSE(contains(logs, web_identity_token));
}

TEST_CASE("bedrock embeds with Titan through a signed InvokeModel call, as "
          "floats and as base64",
          "[integration]") {
  const aws_identity who{aws_key_id, aws_secret, ""};
  const auto expected = nlohmann::json::parse(R"({"inputText":"hello"})");
  titan_rig rig{expected};
  auto& bedrock_fake = rig.bedrock;
  auto& gw = rig.gw;

  auto res = embed(gw, R"({"model":"ti","input":"hello"})");
  INFO(res.body);
  REQUIRE(res.status == 200);
  auto j = res.json();
  CHECK(j["object"] == "list");
  CHECK(j["model"] == "ti");
  REQUIRE(j["data"].is_array());
  REQUIRE(j["data"].size() == 1);
  CHECK(j["data"][0]["object"] == "embedding");
  CHECK(j["data"][0]["index"] == 0);
  CHECK(j["data"][0]["embedding"] == nlohmann::json::parse("[0.5,-0.25]"));
  CHECK(j["usage"]["prompt_tokens"] == 3);
  CHECK(j["usage"]["total_tokens"] == 3);

  auto sent = posts(bedrock_fake);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == titan_invoke_path);
  // The fake answered 200, so the signature and the body were right; this
  // says why if not.
  auto verdict = signing_problem(sent[0], who);
  INFO(verdict.why);
  CHECK(verdict.exception == "");
  CHECK(header_of(sent[0], "content-type") == "application/json");
  CHECK(header_of(sent[0], "x-amz-content-sha256")
        == bedrock::sha256_hex(sent[0].body));
  CHECK(nlohmann::json::parse(sent[0].body) == expected);

  auto as_base64
    = embed(gw, R"({"model":"ti","input":"hello","encoding_format":"base64"})");
  INFO(as_base64.body);
  REQUIRE(as_base64.status == 200);
  auto k = as_base64.json();
  CHECK(k["model"] == "ti");
  REQUIRE(k["data"].size() == 1);
  REQUIRE(k["data"][0]["embedding"].is_string());
  CHECK(k["data"][0]["embedding"]
        == pw::adapters::base64_floats({0.5f, -0.25f}));
  // 0.5f and -0.25f as little-endian float32s: 00 00 00 3F 00 00 80 BE.
  CHECK(k["data"][0]["embedding"] == "AAAAPwAAgL4=");
  CHECK(k["usage"]["prompt_tokens"] == 3);
  sent = posts(bedrock_fake);
  REQUIRE(sent.size() == 2);
  // The encoding is the gateway's: Titan is asked the same.
  CHECK(sent[1].target == titan_invoke_path);
  CHECK(nlohmann::json::parse(sent[1].body) == expected);
  auto second = signing_problem(sent[1], who);
  INFO(second.why);
  CHECK(second.exception == "");

  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, aws_secret));
  CHECK_FALSE(contains(logs, default_profile_secret));
}

TEST_CASE("bedrock embeds a list of texts with Cohere, its tokens from "
          "Bedrock's header",
          "[integration]") {
  clear_aws_env();
  temp_dir dir;
  const aws_identity who{aws_key_id, aws_secret, ""};
  const auto expected = nlohmann::json::parse(
    R"({"texts":["a","b"],"input_type":"search_document"})");
  fake_upstream bedrock_fake{
    bedrock_like(who, invoke_ok(cohere_invoke_path, expected, cohere_embeddings,
                                {{"X-Amzn-Bedrock-Input-Token-Count", "9"}}))};
  auto credentials = write_aws_credentials(dir, aws_secret);
  gateway_process gw{
    make_config(bedrock_model("co", bedrock_fake.base_url(),
                              profile_keys(credentials) + embeddings_only,
                              cohere_model_id),
                "co"),
    {{"HOME", dir.path.string()}}};

  auto res = embed(gw, R"({"model":"co","input":["a","b"]})");
  INFO(res.body);
  REQUIRE(res.status == 200);
  auto j = res.json();
  CHECK(j["object"] == "list");
  CHECK(j["model"] == "co");
  REQUIRE(j["data"].is_array());
  REQUIRE(j["data"].size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    INFO(i);
    CHECK(j["data"][i]["object"] == "embedding");
    CHECK(j["data"][i]["index"] == i);
  }
  CHECK(j["data"][0]["embedding"] == nlohmann::json::parse("[1,2]"));
  CHECK(j["data"][1]["embedding"] == nlohmann::json::parse("[3,4]"));
  CHECK(j["usage"]["prompt_tokens"] == 9);
  CHECK(j["usage"]["total_tokens"] == 9);

  auto sent = posts(bedrock_fake);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == cohere_invoke_path);
  auto verdict = signing_problem(sent[0], who);
  INFO(verdict.why);
  CHECK(verdict.exception == "");
  CHECK(nlohmann::json::parse(sent[0].body) == expected);

  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, aws_secret));
}

TEST_CASE("bedrock refuses more than one input for Titan before any call",
          "[integration]") {
  const auto expected = nlohmann::json::parse(R"({"inputText":"one"})");
  titan_rig rig{expected};
  auto& bedrock_fake = rig.bedrock;
  auto& gw = rig.gw;

  for (const auto* body : {R"({"model":"ti","input":["one","two"]})",
                           R"({"model":"ti","input":[1,2,3]})"}) {
    INFO(body);
    auto res = embed(gw, body);
    INFO(res.body);
    CHECK(res.status == 400);
    auto e = error_of(res);
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["code"] == "invalid_request");
    CHECK(e["param"] == "input");
  }
  // Refused by the gateway: Bedrock heard nothing.
  CHECK(bedrock_fake.requests().empty());

  // One input goes through.
  auto res = embed(gw, R"({"model":"ti","input":["one"]})");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["data"][0]["embedding"]
        == nlohmann::json::parse("[0.5,-0.25]"));
  auto sent = posts(bedrock_fake);
  REQUIRE(sent.size() == 1);
  CHECK(nlohmann::json::parse(sent[0].body) == expected);
  CHECK(gw.stop() == 0);
}

TEST_CASE("a chain falls back from azure to bedrock to vllm", "[integration]") {
  clear_aws_env();
  temp_dir dir;
  const aws_identity who{aws_key_id, aws_secret, ""};
  // Azure checks the key, then is unavailable.
  fake_upstream azure{azure_like(
    "api-key", {upstream_key}, false,
    messages_api::answer_with(
      503, R"({"error":{"code":"503","message":"The service is temporarily )"
           R"(unable to process your request."}})"))};
  // Bedrock checks the signature, then fails.
  fake_upstream bedrock_fake{bedrock_like(
    who, messages_api::answer_with(
           500,
           R"({"message":"The server encountered an internal error while )"
           R"(processing the request."})",
           {{"x-amzn-ErrorType", "InternalServerException"}}))};
  fake_upstream vllm{[](const fake_request& req) {
    fake_response r;
    if (req.method != "POST" || req.target != "/v1/chat/completions") {
      r.status = 404;
      r.body = R"({"object":"error","message":"Not Found","code":404})";
      return r;
    }
    r.body = openai_completion("upstream-vl", "hi from vllm");
    return r;
  }};
  auto credentials = write_aws_credentials(dir, aws_secret);
  gateway_process gw{
    make_config(azure_key_model("az", azure.base_url())
                  + bedrock_model("br", bedrock_fake.base_url(),
                                  profile_keys(credentials))
                  + openai_model("vl", vllm.base_url() + "/v1", "", "vllm"),
                "az", "",
                "  fallback_chains:\n    main: [\"az\", \"br\", \"vl\"]\n"),
    {{"HOME", dir.path.string()}}};

  auto res = chat(gw, "az");
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.json()["model"] == "vl");
  CHECK(res.json()["choices"][0]["message"]["content"] == "hi from vllm");
  auto reason = res.header("x-route-reason");
  INFO(reason);
  CHECK(contains(reason, "fallback to vl after az: HTTP 503"));
  CHECK(contains(reason, "br: HTTP 500"));
  auto to_azure = posts(azure);
  REQUIRE(to_azure.size() == 1);
  CHECK(header_of(to_azure[0], "api-key") == upstream_key);
  auto to_bedrock = posts(bedrock_fake);
  REQUIRE(to_bedrock.size() == 1);
  CHECK(to_bedrock[0].target == converse_path);
  // It failed after the signature verified: a 403 would not fall back.
  auto verdict = signing_problem(to_bedrock[0], who);
  INFO(verdict.why);
  CHECK(verdict.exception == "");
  auto to_vllm = posts(vllm);
  REQUIRE(to_vllm.size() == 1);
  CHECK(nlohmann::json::parse(to_vllm[0].body)["model"] == "upstream-vl");

  // Bedrock recovers. One failure leaves its breaker closed (the default
  // health.unhealthy_threshold is 3): it serves the next request.
  bedrock_fake.set_handler(bedrock_like(who));
  auto second = chat(gw, "az");
  INFO(second.body);
  REQUIRE(second.status == 200);
  CHECK(second.json()["model"] == "br");
  CHECK(second.json()["choices"][0]["message"]["content"] == "Hi from Bedrock");
  auto second_reason = second.header("x-route-reason");
  INFO(second_reason);
  CHECK(contains(second_reason, "fallback to br after az: HTTP 503"));
  CHECK_FALSE(contains(second_reason, "br: HTTP"));
  CHECK(posts(azure).size() == 2);
  to_bedrock = posts(bedrock_fake);
  REQUIRE(to_bedrock.size() == 2);
  auto second_verdict = signing_problem(to_bedrock[1], who);
  INFO(second_verdict.why);
  CHECK(second_verdict.exception == "");
  CHECK(posts(vllm).size() == 1);

  CHECK(gw.stop() == 0);
  auto logs = gw.output() + gw.errors();
  CHECK_FALSE(contains(logs, aws_secret));
}
