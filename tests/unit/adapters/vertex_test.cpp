// The vertex provider (Google Vertex AI): its keys and Google credentials
// files as the loader reads them, the requests it builds for Google's
// models (Vertex's OpenAI-compatible endpoint) and for Anthropic's
// (rawPredict / streamRawPredict), the token requests of a service account
// (a JWT signed with RS256, checked here with the public key) and of a
// workload identity federation (an STS token exchange), and the OAuth
// helpers they use (base64url, rs256_jwt, readable_rsa_key).

#include "adapters/oauth.hpp"
#include "adapters/provider.hpp"
#include "adapters/vertex/provider.hpp"
#include "core/config/config.hpp"
#include "core/errc.hpp"
#include "tests/support/provider_kit.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

using namespace pw;
using namespace pw::test;

namespace {

namespace vertex = adapters::vertex;

// -- keys ---------------------------------------------------------------------

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;

/// A key in PEM: its private half (PKCS#8) and its public half.
struct test_key {
  std::string private_pem;
  std::string public_pem;
};

/// What `write` puts into a memory BIO.
template <typename Write>
std::string pem_of(Write write) {
  bio_ptr bio{BIO_new(BIO_s_mem()), &BIO_free};
  REQUIRE(bio);
  REQUIRE(write(bio.get()) == 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  REQUIRE(n > 0);
  return std::string(data, static_cast<size_t>(n));
}

test_key key_pems(EVP_PKEY* key) {
  test_key out;
  out.private_pem = pem_of([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr,
                                    nullptr);
  });
  out.public_pem = pem_of([&](BIO* b) { return PEM_write_bio_PUBKEY(b, key); });
  return out;
}

/// An RSA-2048 key made once for the whole run (OpenSSL 3).
const test_key& rsa_key() {
  static const test_key key = [] {
    pkey_ptr pkey{EVP_RSA_gen(2048), &EVP_PKEY_free};
    REQUIRE(pkey);
    return key_pems(pkey.get());
  }();
  return key;
}

/// A P-256 key: a private key OpenSSL reads that is not RSA.
const test_key& ec_key() {
  static const test_key key = [] {
    pkey_ptr pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                  &EVP_PKEY_free};
    REQUIRE(pkey);
    return key_pems(pkey.get());
  }();
  return key;
}

/// A PEM block that is not a key.
const std::string not_a_key = "-----BEGIN PRIVATE KEY-----\n"
                              "bm90IGEga2V5IGF0IGFsbA==\n"
                              "-----END PRIVATE KEY-----\n";

/// Whether `signature` is an RS256 signature of `input` by the private half
/// of the public key in `public_pem`.
bool verifies(const std::string& public_pem, std::string_view input,
              const std::string& signature) {
  bio_ptr bio{
    BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size())),
    &BIO_free};
  REQUIRE(bio);
  pkey_ptr pub{PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
               &EVP_PKEY_free};
  REQUIRE(pub);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free};
  REQUIRE(ctx);
  REQUIRE(
    EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pub.get())
    == 1);
  return EVP_DigestVerify(
           ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
           signature.size(),
           reinterpret_cast<const unsigned char*>(input.data()), input.size())
         == 1;
}

/// Base64url without padding, decoded (RFC 7515); fails on anything else.
std::string from_base64url(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '-')
      return 62;
    if (c == '_')
      return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    INFO("character " << c);
    REQUIRE(v >= 0);
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xFFFFFFu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  return out;
}

/// The three parts of a JWT.
struct jwt_parts {
  std::string header;
  std::string claims;
  std::string signature;
};

jwt_parts split_jwt(const std::string& jwt) {
  auto first = jwt.find('.');
  REQUIRE(first != std::string::npos);
  auto second = jwt.find('.', first + 1);
  REQUIRE(second != std::string::npos);
  REQUIRE(jwt.find('.', second + 1) == std::string::npos);
  return {jwt.substr(0, first), jwt.substr(first + 1, second - first - 1),
          jwt.substr(second + 1)};
}

// -- files and environment ----------------------------------------------------

/// No GOOGLE_APPLICATION_CREDENTIALS while it lives, nor after.
struct no_google_env {
  no_google_env() { ::unsetenv("GOOGLE_APPLICATION_CREDENTIALS"); }
  ~no_google_env() { ::unsetenv("GOOGLE_APPLICATION_CREDENTIALS"); }
  no_google_env(const no_google_env&) = delete;
  no_google_env& operator=(const no_google_env&) = delete;
};

/// A directory of its own, removed with its files when it goes.
struct temp_dir {
  std::filesystem::path path;

  temp_dir() {
    auto pattern
      = (std::filesystem::temp_directory_path() / "pw-vertex-XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path = made;
  }

  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// Writes `text` to the file `name` in it; its path.
  std::string write(const std::string& name, const std::string& text) const {
    auto file = (path / name).string();
    std::ofstream{file, std::ios::binary | std::ios::trunc} << text;
    return file;
  }
};

const std::string client_email = "sa@p.iam.gserviceaccount.com";
const std::string sa_token_uri = "http://127.0.0.1:1234/token";

/// A service account's key file, as Google's console makes it.
nlohmann::json service_account_json(const std::string& key_pem
                                    = rsa_key().private_pem) {
  return {{"type", "service_account"},    {"project_id", "p1"},
          {"private_key_id", "k1"},       {"private_key", key_pem},
          {"client_email", client_email}, {"client_id", "1234567890"},
          {"token_uri", sa_token_uri}};
}

const std::string wif_audience
  = "//iam.googleapis.com/projects/123/locations/global/"
    "workloadIdentityPools/pool1/providers/prov1";
const std::string jwt_token_type = "urn:ietf:params:oauth:token-type:jwt";

/// A workload identity federation's configuration, its token in
/// `token_file`, its STS at `token_url`.
nlohmann::json external_account_json(const std::string& token_file,
                                     const std::string& token_url
                                     = "http://127.0.0.1:1234/v1/token") {
  return {{"type", "external_account"},
          {"audience", wif_audience},
          {"subject_token_type", jwt_token_type},
          {"token_url", token_url},
          {"credential_source", {{"file", token_file}}}};
}

// -- config -------------------------------------------------------------------

const vertex::vertex_options& vertex_of(const model_config& m) {
  const auto* o = dynamic_cast<const vertex::vertex_options*>(m.options.get());
  REQUIRE(o != nullptr);
  return *o;
}

const std::string gemini_id = "google/gemini-2.0-flash";
const std::string claude_id = "claude-sonnet-4@20250514";

/// A vertex model entry for `model` in project p1, `region`, its
/// credentials in `file` (none when empty), and `more` keys.
std::string vertex_keys(const std::string& file,
                        const std::string& model = gemini_id,
                        const std::string& more = "",
                        const std::string& region = "us-central1") {
  return "    provider: vertex\n    model: \"" + model
         + "\"\n    project: p1\n    region: \"" + region + "\"\n"
         + (file.empty() ? std::string{}
                         : "    credentials_file: \"" + file + "\"\n")
         + more;
}

/// The error line at models.v.credentials_file for the credentials file
/// holding `text`; `names_file`: the line names the file.
std::string credentials_error(const std::string& text, bool names_file = true) {
  temp_dir dir;
  auto file = dir.write("creds.json", text);
  auto errors = model_errors("v", vertex_keys(file));
  INFO(errors);
  auto line = line_of(errors, "models.v.credentials_file: ");
  CHECK_FALSE(line.empty());
  if (names_file)
    CHECK(contains(line, file));
  // Never the secrets.
  CHECK_FALSE(contains(errors, "BEGIN PRIVATE KEY"));
  return line;
}

// -- requests -----------------------------------------------------------------

const std::string chat_body
  = R"({"model":"v","messages":[{"role":"user","content":"hi"}]})";

/// The request the model's provider builds for `body` on `endpoint`.
upstream_request request_for(const model_config& m,
                             const std::string& body = chat_body,
                             api_endpoint endpoint = api_endpoint::chat) {
  auto req = adapters::adapter_for(m, endpoint)
               .to_provider_request(chat_payload{body}, m);
  if (!req)
    FAIL(message_of(req.error()));
  return *req;
}

/// A copy of `m` holding the access token the MODEL actor would give it.
std::shared_ptr<model_config>
with_token(const model_config_ptr& m, const std::string& token = "ya29.tok") {
  auto copy = std::make_shared<model_config>(*m);
  copy->access_token = redacted_string{token};
  return copy;
}

/// The value of the form field `name` (as sent, percent-encoded).
std::string form_value(const std::string& body, const std::string& name) {
  for (const auto& field : form_fields(body))
    if (field.starts_with(name + "="))
      return field.substr(name.size() + 1);
  return {};
}

const std::string location = "/v1/projects/p1/locations/us-central1";

} // namespace

// -- the provider -------------------------------------------------------------

TEST_CASE("vertex is a provider of chat and messages",
          "[adapters][providers][vertex]") {
  const auto* p = adapters::find_provider("vertex");
  REQUIRE(p != nullptr);
  CHECK(p->endpoints.has(api_endpoint::chat));
  CHECK(p->endpoints.has(api_endpoint::messages));
  CHECK_FALSE(p->endpoints.has(api_endpoint::embeddings));
  CHECK_FALSE(p->endpoints.has(api_endpoint::completions));
  CHECK_FALSE(p->endpoints.has(api_endpoint::count_tokens));
  CHECK_FALSE(p->local);
  CHECK(&adapters::adapter_for("vertex", api_endpoint::chat)
        != &adapters::adapter_for("vertex", api_endpoint::messages));
}

// -- loading ------------------------------------------------------------------

TEST_CASE("a vertex model with a service account loads",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = loaded("v", vertex_keys(file));
  CHECK(m->provider == "vertex");
  CHECK(m->model == gemini_id);
  CHECK(m->api_key.empty());
  CHECK(m->access_token.empty());
  const auto& o = vertex_of(*m);
  CHECK(o.project == "p1");
  CHECK(o.region == "us-central1");
  CHECK(o.publisher == vertex::publisher::google);
  CHECK(o.kind == vertex::credential_kind::service_account);
  CHECK(o.client_email == client_email);
  CHECK(o.private_key_id == "k1");
  CHECK(o.private_key.reveal() == rsa_key().private_pem);
  CHECK(o.token_url == sa_token_uri);
  CHECK(o.token_endpoint.host == "127.0.0.1");
  CHECK(o.token_endpoint.port == 1234);
  CHECK_FALSE(o.token_endpoint.tls);
  CHECK(o.token_endpoint.base_path == "/token");
  CHECK(o.scope == "https://www.googleapis.com/auth/cloud-platform");
}

TEST_CASE("vertex's base_url defaults to the region's endpoint",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  SECTION("us-central1") {
    auto m = loaded("v", vertex_keys(file));
    CHECK(m->base_url == "https://us-central1-aiplatform.googleapis.com");
    CHECK(m->target.host == "us-central1-aiplatform.googleapis.com");
    CHECK(m->target.tls);
    CHECK(m->target.port == 443);
    CHECK(m->target.base_path.empty());
  }
  SECTION("global") {
    auto m = loaded("v", vertex_keys(file, gemini_id, "", "global"));
    CHECK(m->base_url == "https://aiplatform.googleapis.com");
    CHECK(m->target.host == "aiplatform.googleapis.com");
    CHECK(m->target.tls);
    CHECK(vertex_of(*m).region == "global");
  }
  SECTION("a base_url set is kept") {
    auto m = loaded(
      "v", vertex_keys(file, gemini_id,
                       "    base_url: \"https://vertex.example.com/proxy\"\n"));
    CHECK(m->target.host == "vertex.example.com");
    CHECK(m->target.base_path == "/proxy");
  }
}

TEST_CASE("vertex's publisher follows the model id unless set",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  CHECK(vertex_of(*loaded("v", vertex_keys(file))).publisher
        == vertex::publisher::google);
  CHECK(vertex_of(*loaded("v", vertex_keys(file, claude_id))).publisher
        == vertex::publisher::anthropic);
  CHECK(vertex_of(*loaded("v", vertex_keys(file, "claude-3-5-haiku",
                                           "    publisher: google\n")))
          .publisher
        == vertex::publisher::google);
  CHECK(vertex_of(*loaded("v", vertex_keys(file, "some-model",
                                           "    publisher: anthropic\n")))
          .publisher
        == vertex::publisher::anthropic);
}

TEST_CASE("vertex's project and region are required and checked",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto creds = "    credentials_file: \"" + file + "\"\n";
  SECTION("no project") {
    auto text = model_errors("v", "    provider: vertex\n    model: m\n"
                                  "    region: us-central1\n"
                                    + creds);
    INFO(text);
    CHECK(contains(line_of(text, "models.v.project: "), "required"));
  }
  SECTION("a project with a space") {
    auto text = model_errors("v", "    provider: vertex\n    model: m\n"
                                  "    project: \"my project\"\n"
                                  "    region: us-central1\n"
                                    + creds);
    INFO(text);
    CHECK(contains(line_of(text, "models.v.project: "), "project id"));
  }
  SECTION("no region") {
    auto text = model_errors("v", "    provider: vertex\n    model: m\n"
                                  "    project: p1\n"
                                    + creds);
    INFO(text);
    CHECK(contains(line_of(text, "models.v.region: "), "required"));
  }
  SECTION("a region with a space") {
    auto text
      = model_errors("v", vertex_keys(file, gemini_id, "", "us central"));
    INFO(text);
    CHECK(contains(line_of(text, "models.v.region: "), "us-central1"));
  }
}

TEST_CASE("vertex refuses an api_key", "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto text
    = model_errors("v", vertex_keys(file, gemini_id, "    api_key: k-123\n"));
  INFO(text);
  auto line = line_of(text, "models.v.api_key: ");
  CHECK(contains(line, "credentials_file"));
  CHECK_FALSE(contains(text, "k-123"));
}

TEST_CASE("vertex's publisher is google or anthropic",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto text
    = model_errors("v", vertex_keys(file, gemini_id, "    publisher: x\n"));
  INFO(text);
  auto line = line_of(text, "models.v.publisher: ");
  CHECK(contains(line, "google or anthropic"));
  CHECK(contains(line, "'x'"));
}

TEST_CASE("an Anthropic model id on vertex must be fit for a URL",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto text = model_errors("v", vertex_keys(file, "claude/../x"));
  INFO(text);
  CHECK_FALSE(line_of(text, "models.v.model: ").empty());
}

TEST_CASE("vertex serves no embeddings", "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto text = model_errors(
    "v", vertex_keys(file, gemini_id, "    endpoints: [embeddings]\n"));
  INFO(text);
  CHECK(contains(line_of(text, "models.v.endpoints: "), "cannot serve"));
}

TEST_CASE("an unknown key of a vertex model lists vertex's keys",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto text
    = model_errors("v", vertex_keys(file, gemini_id, "    location: x\n"));
  INFO(text);
  auto line = line_of(text, "models.v.location: ");
  CHECK(contains(line, "unknown key"));
  for (const auto* key : {"project", "region", "publisher", "credentials_file"})
    CHECK(contains(line, key));
}

TEST_CASE("vertex's credentials file falls back to "
          "GOOGLE_APPLICATION_CREDENTIALS",
          "[adapters][providers][vertex]") {
  no_google_env env;
  SECTION("neither: an error naming the variable") {
    auto text = model_errors("v", vertex_keys(""));
    INFO(text);
    auto line = line_of(text, "models.v.credentials_file: ");
    CHECK(contains(line, "required"));
    CHECK(contains(line, "GOOGLE_APPLICATION_CREDENTIALS"));
  }
  SECTION("the variable names the file") {
    temp_dir dir;
    auto file = dir.write("sa.json", service_account_json().dump());
    ::setenv("GOOGLE_APPLICATION_CREDENTIALS", file.c_str(), 1);
    auto cfg = load_yaml(config_with("v", vertex_keys("")));
    ::unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (!cfg)
      FAIL(message_of(cfg.error()));
    const auto* m = cfg->find_model("v");
    REQUIRE(m != nullptr);
    const auto& o = vertex_of(**m);
    CHECK(o.kind == vertex::credential_kind::service_account);
    CHECK(o.client_email == client_email);
    CHECK(o.private_key_id == "k1");
  }
  SECTION("credentials_file wins over the variable") {
    temp_dir dir;
    auto file = dir.write("sa.json", service_account_json().dump());
    ::setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/pw-vertex.json",
             1);
    auto cfg = load_yaml(config_with("v", vertex_keys(file)));
    ::unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (!cfg)
      FAIL(message_of(cfg.error()));
  }
}

TEST_CASE("a vertex credentials file must be a Google credentials file",
          "[adapters][providers][vertex]") {
  no_google_env env;
  SECTION("unreadable") {
    auto text = model_errors("v", vertex_keys("/nonexistent/pw-vertex.json"));
    INFO(text);
    auto line = line_of(text, "models.v.credentials_file: ");
    CHECK(contains(line, "cannot read"));
    CHECK(contains(line, "/nonexistent/pw-vertex.json"));
  }
  SECTION("not JSON") {
    auto line = credentials_error("type: service_account\nnot json\n");
    CHECK(contains(line, "JSON"));
  }
  SECTION("a JSON array") {
    auto line = credentials_error("[1,2,3]");
    CHECK(contains(line, "JSON"));
  }
  SECTION("a person's login (authorized_user)") {
    auto line = credentials_error(
      R"({"type":"authorized_user","client_id":"c","client_secret":"s",)"
      R"("refresh_token":"r"})");
    CHECK(contains(line, "authorized_user"));
    CHECK(contains(line, "service_account"));
  }
}

TEST_CASE("a service account file needs its email, an RSA key and a safe "
          "token_uri",
          "[adapters][providers][vertex]") {
  no_google_env env;
  SECTION("no client_email") {
    auto j = service_account_json();
    j.erase("client_email");
    CHECK(contains(credentials_error(j.dump()), "client_email"));
  }
  SECTION("a private_key that is not a key") {
    auto j = service_account_json(not_a_key);
    CHECK(contains(credentials_error(j.dump()), "private_key"));
  }
  SECTION("no private_key") {
    auto j = service_account_json();
    j.erase("private_key");
    CHECK(contains(credentials_error(j.dump()), "private_key"));
  }
  SECTION("a private_key that is not RSA") {
    auto j = service_account_json(ec_key().private_pem);
    CHECK(contains(credentials_error(j.dump()), "RSA"));
  }
  SECTION("a token_uri in http to another host") {
    auto j = service_account_json();
    j["token_uri"] = "http://example.com/token";
    CHECK(contains(credentials_error(j.dump(), false), "https"));
  }
}

TEST_CASE("a service account file without token_uri uses Google's",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto j = service_account_json();
  j.erase("token_uri");
  j.erase("private_key_id");
  auto m = loaded("v", vertex_keys(dir.write("sa.json", j.dump())));
  const auto& o = vertex_of(*m);
  CHECK(o.token_url == "https://oauth2.googleapis.com/token");
  CHECK(o.token_endpoint.host == "oauth2.googleapis.com");
  CHECK(o.token_endpoint.tls);
  CHECK(o.token_endpoint.base_path == "/token");
  CHECK(o.private_key_id.empty());
  // No kid then.
  auto req = token_request(*m);
  CHECK(req.path == "/token");
  auto parts = split_jwt(form_value(req.body, "assertion"));
  auto head = nlohmann::json::parse(from_base64url(parts.header));
  CHECK_FALSE(head.contains("kid"));
  CHECK(head["alg"] == "RS256");
}

TEST_CASE("an external account file needs a readable token file and no "
          "impersonation",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto token = dir.write("subject-token", "eyJsubject.token.sig\n");
  SECTION("a whole one loads") {
    auto m = loaded("v", vertex_keys(dir.write(
                           "wif.json", external_account_json(token).dump())));
    const auto& o = vertex_of(*m);
    CHECK(o.kind == vertex::credential_kind::external_account);
    CHECK(o.audience == wif_audience);
    CHECK(o.subject_token_type == jwt_token_type);
    CHECK(o.subject_token_file == token);
    CHECK(o.token_url == "http://127.0.0.1:1234/v1/token");
    CHECK(o.token_endpoint.base_path == "/v1/token");
  }
  SECTION("service account impersonation") {
    auto j = external_account_json(token);
    j["service_account_impersonation_url"]
      = "https://iamcredentials.googleapis.com/v1/projects/-/"
        "serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken";
    CHECK(contains(credentials_error(j.dump()), "impersonation"));
  }
  SECTION("a credential_source without a file") {
    auto j = external_account_json(token);
    j["credential_source"] = {{"url", "http://169.254.169.254/token"}};
    CHECK(contains(credentials_error(j.dump()), "credential_source"));
  }
  SECTION("no credential_source") {
    auto j = external_account_json(token);
    j.erase("credential_source");
    CHECK(contains(credentials_error(j.dump()), "credential_source"));
  }
  SECTION("a token file that cannot be read") {
    auto j = external_account_json("/nonexistent/pw-subject-token");
    CHECK(
      contains(credentials_error(j.dump()), "/nonexistent/pw-subject-token"));
  }
  SECTION("no audience") {
    auto j = external_account_json(token);
    j.erase("audience");
    CHECK(contains(credentials_error(j.dump()), "audience"));
  }
  SECTION("a token_url in http to another host") {
    auto j = external_account_json(token, "http://sts.example.com/v1/token");
    CHECK(contains(credentials_error(j.dump(), false), "https"));
  }
}

// -- Google's models ----------------------------------------------------------

TEST_CASE("a Google model on vertex is called on the OpenAI-compatible "
          "endpoint with its token",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = loaded("v", vertex_keys(file));
  // No token fetched yet: no credentials at all (the SESSION never calls).
  auto bare = request_for(*m);
  CHECK_FALSE(has_header(bare, "Authorization"));
  auto t = with_token(m);
  auto req = request_for(*t);
  CHECK(req.method == "POST");
  CHECK(req.target.host == "us-central1-aiplatform.googleapis.com");
  CHECK(req.target.tls);
  CHECK(req.path == location + "/endpoints/openapi/chat/completions");
  CHECK(header(req, "Authorization") == "Bearer ya29.tok");
  CHECK_FALSE(has_header(req, "x-api-key"));
  CHECK_FALSE(has_header(req, "api-key"));
  auto body = nlohmann::json::parse(req.body);
  CHECK(body["model"] == gemini_id);
  CHECK(body["messages"][0]["content"] == "hi");
  CHECK_FALSE(contains(req.body, "BEGIN PRIVATE KEY"));
}

TEST_CASE("a vertex base_url with a path keeps it before /v1/projects",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto more = "    base_url: \"https://vertex.example.com/proxy\"\n";
  auto google = with_token(loaded("v", vertex_keys(file, gemini_id, more)));
  CHECK(request_for(*google).path
        == "/proxy" + location + "/endpoints/openapi/chat/completions");
  auto claude = with_token(loaded("v", vertex_keys(file, claude_id, more)));
  CHECK(request_for(*claude).path
        == "/proxy" + location + "/publishers/anthropic/models/" + claude_id
             + ":rawPredict");
}

TEST_CASE("vertex has no health check", "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  for (const auto& id : {gemini_id, claude_id}) {
    INFO(id);
    auto m = with_token(loaded("v", vertex_keys(file, id)));
    CHECK_FALSE(adapters::adapter_for(*m).health_request(*m).has_value());
    CHECK_FALSE(adapters::adapter_for(*m, api_endpoint::messages)
                  .health_request(*m)
                  .has_value());
  }
}

TEST_CASE("the Messages API to a Google model on vertex is translated to "
          "chat",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = with_token(loaded(
    "v", vertex_keys(file, gemini_id, "    endpoints: [chat, messages]\n")));
  auto req = request_for(
    *m,
    R"({"model":"v","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})",
    api_endpoint::messages);
  CHECK(req.path == location + "/endpoints/openapi/chat/completions");
  CHECK(header(req, "Authorization") == "Bearer ya29.tok");
  auto body = nlohmann::json::parse(req.body);
  CHECK(body["model"] == gemini_id);
  CHECK(body["max_tokens"] == 10);
  CHECK_FALSE(body.contains("max_completion_tokens"));
}

TEST_CASE("a Google model's answer on vertex carries the alias",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = loaded("v", vertex_keys(file));
  auto res = adapters::adapter_for(*m).from_provider_response(
    answer(200, R"({"id":"c1","object":"chat.completion","created":1,)"
                R"("model":"google/gemini-2.0-flash","choices":[{"index":0,)"
                R"("message":{"role":"assistant","content":"hello"},)"
                R"("finish_reason":"stop"}],)"
                R"("usage":{"prompt_tokens":3,"completion_tokens":2,)"
                R"("total_tokens":5}})"),
    *m);
  if (!res)
    FAIL(message_of(res.error()));
  auto j = nlohmann::json::parse(res->body);
  CHECK(j["model"] == "v");
  CHECK(j["choices"][0]["message"]["content"] == "hello");
  CHECK(res->prompt_tokens == 3);
  CHECK(res->completion_tokens == 2);
}

// -- Anthropic's models -------------------------------------------------------

TEST_CASE("a Claude model on vertex is called through rawPredict without "
          "model and with Vertex's anthropic_version",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = with_token(loaded("v", vertex_keys(file, claude_id)));
  auto req = request_for(*m);
  CHECK(req.method == "POST");
  CHECK(req.target.host == "us-central1-aiplatform.googleapis.com");
  CHECK(req.path
        == location + "/publishers/anthropic/models/" + claude_id
             + ":rawPredict");
  CHECK(req.path.ends_with(":rawPredict"));
  CHECK(header(req, "Authorization") == "Bearer ya29.tok");
  CHECK_FALSE(has_header(req, "x-api-key"));
  CHECK_FALSE(has_header(req, "anthropic-version"));
  INFO(req.body);
  auto body = nlohmann::json::parse(req.body);
  CHECK_FALSE(body.contains("model"));
  CHECK(body["anthropic_version"] == "vertex-2023-10-16");
  REQUIRE(body.contains("messages"));
  CHECK(body["messages"][0]["role"] == "user");
  // Anthropic requires max_tokens: the model's default.
  CHECK(body["max_tokens"] == 4096);
  CHECK_FALSE(body.contains("stream"));
}

TEST_CASE("a streamed chat to a Claude model on vertex goes to "
          "streamRawPredict",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = with_token(loaded("v", vertex_keys(file, claude_id)));
  auto req = request_for(
    *m,
    R"({"model":"v","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  CHECK(req.path
        == location + "/publishers/anthropic/models/" + claude_id
             + ":streamRawPredict");
  CHECK(header(req, "Authorization") == "Bearer ya29.tok");
  auto body = nlohmann::json::parse(req.body);
  CHECK(body["stream"] == true);
  CHECK_FALSE(body.contains("model"));
  CHECK(body["anthropic_version"] == "vertex-2023-10-16");
}

TEST_CASE("the Messages API to a Claude model on vertex passes the client's "
          "fields through",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = with_token(loaded(
    "v", vertex_keys(file, claude_id, "    endpoints: [chat, messages]\n")));
  const auto& messages = adapters::adapter_for(*m, api_endpoint::messages);
  CHECK_FALSE(messages.takes_anthropic_headers());
  auto req = request_for(*m,
                         R"({"model":"v","max_tokens":10,)"
                         R"("metadata":{"user_id":"u-1"},"top_k":5,)"
                         R"("messages":[{"role":"user","content":"hi"}]})",
                         api_endpoint::messages);
  CHECK(req.path
        == location + "/publishers/anthropic/models/" + claude_id
             + ":rawPredict");
  CHECK(header(req, "Authorization") == "Bearer ya29.tok");
  CHECK_FALSE(has_header(req, "x-api-key"));
  CHECK_FALSE(has_header(req, "anthropic-version"));
  INFO(req.body);
  auto body = nlohmann::json::parse(req.body);
  CHECK_FALSE(body.contains("model"));
  CHECK(body["anthropic_version"] == "vertex-2023-10-16");
  CHECK(body["max_tokens"] == 10);
  CHECK(body["metadata"]["user_id"] == "u-1");
  CHECK(body["top_k"] == 5);
  CHECK(body["messages"][0]["content"] == "hi");

  auto streamed = request_for(*m,
                              R"({"model":"v","max_tokens":10,"stream":true,)"
                              R"("messages":[{"role":"user","content":"hi"}]})",
                              api_endpoint::messages);
  CHECK(streamed.path.ends_with(":streamRawPredict"));
  CHECK(nlohmann::json::parse(streamed.body)["stream"] == true);
}

TEST_CASE("a Claude model on vertex answers in Anthropic's format, "
          "translated for chat and relayed for messages",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = loaded(
    "v", vertex_keys(file, claude_id, "    endpoints: [chat, messages]\n"));
  const std::string message
    = R"({"id":"msg_1","type":"message","role":"assistant",)"
      R"("model":"claude-sonnet-4-20250514",)"
      R"("content":[{"type":"text","text":"Salut"}],)"
      R"("stop_reason":"end_turn","stop_sequence":null,)"
      R"("usage":{"input_tokens":4,"output_tokens":2}})";
  SECTION("chat") {
    auto res = adapters::adapter_for(*m).from_provider_response(
      answer(200, message), *m);
    if (!res)
      FAIL(message_of(res.error()));
    INFO(res->body);
    auto j = nlohmann::json::parse(res->body);
    CHECK(j["object"] == "chat.completion");
    CHECK(j["model"] == "v");
    CHECK(j["choices"][0]["message"]["role"] == "assistant");
    CHECK(j["choices"][0]["message"]["content"] == "Salut");
    CHECK(j["choices"][0]["finish_reason"] == "stop");
    CHECK(res->prompt_tokens == 4);
    CHECK(res->completion_tokens == 2);
  }
  SECTION("messages") {
    auto res = adapters::adapter_for(*m, api_endpoint::messages)
                 .from_provider_response(answer(200, message), *m);
    if (!res)
      FAIL(message_of(res.error()));
    INFO(res->body);
    auto j = nlohmann::json::parse(res->body);
    CHECK(j["type"] == "message");
    CHECK(j["model"] == "v");
    CHECK(j["content"][0]["text"] == "Salut");
    CHECK(res->prompt_tokens == 4);
    CHECK(res->completion_tokens == 2);
  }
}

// -- token requests -----------------------------------------------------------

TEST_CASE("a service account's token request is a JWT signed with its key",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = loaded("v", vertex_keys(file));
  auto before = now_seconds();
  auto req = token_request(*m);
  auto after = now_seconds();
  CHECK(req.method == "POST");
  CHECK(req.target.host == "127.0.0.1");
  CHECK(req.target.port == 1234);
  CHECK_FALSE(req.target.tls);
  CHECK(req.path == "/token");
  CHECK(header(req, "Content-Type") == "application/x-www-form-urlencoded");
  CHECK_FALSE(has_header(req, "Authorization"));
  INFO(req.body);
  auto fields = form_fields(req.body);
  CHECK(fields.size() == 2);
  CHECK(fields.count(
          "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
        == 1);
  CHECK_FALSE(contains(req.body, "BEGIN PRIVATE KEY"));
  // A JWT's characters are all unreserved: the form carries it as is.
  auto jwt = form_value(req.body, "assertion");
  REQUIRE_FALSE(jwt.empty());
  auto parts = split_jwt(jwt);

  auto head = nlohmann::json::parse(from_base64url(parts.header));
  CHECK(head["alg"] == "RS256");
  CHECK(head["typ"] == "JWT");
  CHECK(head["kid"] == "k1");

  auto claims = nlohmann::json::parse(from_base64url(parts.claims));
  CHECK(claims["iss"] == client_email);
  CHECK(claims["aud"] == "http://127.0.0.1:1234/token");
  CHECK(claims["scope"] == "https://www.googleapis.com/auth/cloud-platform");
  REQUIRE(claims["iat"].is_number_integer());
  REQUIRE(claims["exp"].is_number_integer());
  auto iat = claims["iat"].get<int64_t>();
  auto exp = claims["exp"].get<int64_t>();
  CHECK(iat >= before);
  CHECK(iat <= after);
  CHECK(exp - iat == 3600);
  CHECK_FALSE(claims.contains("sub"));

  // RS256 with the account's key: its public half verifies it.
  auto signature = from_base64url(parts.signature);
  CHECK(signature.size() == 256);
  auto input = parts.header + "." + parts.claims;
  CHECK(verifies(rsa_key().public_pem, input, signature));
  auto tampered = input;
  auto at = parts.header.size() + 1;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  CHECK_FALSE(verifies(rsa_key().public_pem, tampered, signature));
}

TEST_CASE("a Google token answer gives the token and its lifetime",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto file = dir.write("sa.json", service_account_json().dump());
  auto m = loaded("v", vertex_keys(file));
  const auto& a = adapters::adapter_for(*m);
  auto c = a.credential_from(
    answer(200, R"({"access_token":"ya29.x","expires_in":3599,)"
                R"("token_type":"Bearer"})"),
    *m);
  if (!c)
    FAIL(message_of(c.error()));
  CHECK(c->token.reveal() == "ya29.x");
  CHECK(c->lifetime.count() == 3599);
  auto refused = a.credential_from(
    answer(400, R"({"error":"invalid_grant",)"
                R"("error_description":"Invalid JWT Signature."})"),
    *m);
  REQUIRE_FALSE(refused);
  auto text = message_of(refused.error());
  INFO(text);
  CHECK(contains(text, "Google"));
  CHECK(contains(text, "HTTP 400"));
  CHECK(contains(text, "invalid_grant"));
}

TEST_CASE("an external account's token request is a token exchange of its "
          "token file",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto token = dir.write("subject-token", "  eyJsubject.token.sig\n");
  auto m = loaded("v", vertex_keys(dir.write(
                         "wif.json", external_account_json(token).dump())));
  auto req = token_request(*m);
  CHECK(req.method == "POST");
  CHECK(req.target.host == "127.0.0.1");
  CHECK(req.target.port == 1234);
  CHECK(req.path == "/v1/token");
  CHECK(header(req, "Content-Type") == "application/x-www-form-urlencoded");
  INFO(req.body);
  auto fields = form_fields(req.body);
  CHECK(fields.count("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3A"
                     "token-exchange")
        == 1);
  CHECK(fields.count("audience=%2F%2Fiam.googleapis.com%2Fprojects%2F123%2F"
                     "locations%2Fglobal%2FworkloadIdentityPools%2Fpool1%2F"
                     "providers%2Fprov1")
        == 1);
  CHECK(
    fields.count("audience=" + adapters::oauth::percent_encoded(wif_audience))
    == 1);
  CHECK(fields.count(
          "scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform")
        == 1);
  CHECK(fields.count("requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                     "token-type%3Aaccess_token")
        == 1);
  CHECK(fields.count("subject_token=eyJsubject.token.sig") == 1);
  CHECK(fields.count(
          "subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt")
        == 1);
  CHECK_FALSE(contains(req.body, "assertion="));

  // The platform rotates the token: it is read again at each fetch.
  dir.write("subject-token", "eyJrotated.token.sig");
  auto again = token_request(*m);
  CHECK(form_fields(again.body).count("subject_token=eyJrotated.token.sig")
        == 1);
}

TEST_CASE("an external account's refused exchange does not quote its token",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto token = dir.write("subject-token", "eyJsubject.token.sig\n");
  auto m = loaded("v", vertex_keys(dir.write(
                         "wif.json", external_account_json(token).dump())));
  auto refused = adapters::adapter_for(*m).credential_from(
    answer(400, R"({"error":"invalid_grant","error_description":)"
                R"("The token eyJsubject.token.sig has expired"})"),
    *m);
  REQUIRE_FALSE(refused);
  auto text = message_of(refused.error());
  INFO(text);
  CHECK(contains(text, "invalid_grant"));
  CHECK_FALSE(contains(text, "eyJsubject.token.sig"));
}

TEST_CASE("an external account's token file gone after loading makes the "
          "token request an error naming it",
          "[adapters][providers][vertex]") {
  no_google_env env;
  temp_dir dir;
  auto token = dir.write("subject-token", "eyJsubject.token.sig\n");
  auto m = loaded("v", vertex_keys(dir.write(
                         "wif.json", external_account_json(token).dump())));
  std::filesystem::remove(token);
  auto req = adapters::adapter_for(*m).credential_request(*m);
  REQUIRE(req.has_value());
  REQUIRE_FALSE(*req);
  CHECK(contains(message_of(req->error()), token));
}

// -- the OAuth helpers --------------------------------------------------------

TEST_CASE("base64url encodes without padding in the URL alphabet",
          "[adapters][providers][vertex][oauth]") {
  using adapters::oauth::base64url;
  CHECK(base64url("") == "");
  CHECK(base64url("f") == "Zg");
  CHECK(base64url("fo") == "Zm8");
  CHECK(base64url("foo") == "Zm9v");
  CHECK(base64url("foob") == "Zm9vYg");
  // FB FF: "+/8=" in standard base64.
  CHECK(base64url("\xfb\xff") == "-_8");
  CHECK(base64url(std::string_view{"\xfb\xef\xbe", 3}) == "----");
  CHECK(base64url(std::string_view{"\xff\xff\xff", 3}) == "____");
  std::string bytes{"\x00\x01\x02\xfd\xfe\xff", 6};
  CHECK(from_base64url(base64url(bytes)) == bytes);
}

TEST_CASE("rs256_jwt signs with an RSA key and refuses anything else",
          "[adapters][providers][vertex][oauth]") {
  nlohmann::json head{{"alg", "RS256"}, {"typ", "JWT"}};
  nlohmann::json claims{{"iss", "x"}, {"n", 1}};
  SECTION("an RSA key") {
    auto jwt = adapters::oauth::rs256_jwt(rsa_key().private_pem, head, claims);
    if (!jwt)
      FAIL(message_of(jwt.error()));
    auto parts = split_jwt(*jwt);
    CHECK(nlohmann::json::parse(from_base64url(parts.header)) == head);
    CHECK(nlohmann::json::parse(from_base64url(parts.claims)) == claims);
    CHECK(verifies(rsa_key().public_pem, parts.header + "." + parts.claims,
                   from_base64url(parts.signature)));
  }
  SECTION("a PEM block that is not a key") {
    auto jwt = adapters::oauth::rs256_jwt(not_a_key, head, claims);
    REQUIRE_FALSE(jwt);
    CHECK_FALSE(contains(message_of(jwt.error()), "bm90IGEga2V5"));
  }
  SECTION("no PEM at all") {
    CHECK_FALSE(adapters::oauth::rs256_jwt("", head, claims));
  }
  SECTION("an EC key") {
    auto jwt = adapters::oauth::rs256_jwt(ec_key().private_pem, head, claims);
    REQUIRE_FALSE(jwt);
    CHECK_FALSE(contains(message_of(jwt.error()), "PRIVATE KEY"));
  }
}

TEST_CASE("readable_rsa_key accepts only an RSA private key",
          "[adapters][providers][vertex][oauth]") {
  CHECK(adapters::oauth::readable_rsa_key(rsa_key().private_pem));
  CHECK_FALSE(adapters::oauth::readable_rsa_key(rsa_key().public_pem));
  CHECK_FALSE(adapters::oauth::readable_rsa_key(ec_key().private_pem));
  CHECK_FALSE(adapters::oauth::readable_rsa_key(not_a_key));
  CHECK_FALSE(adapters::oauth::readable_rsa_key(""));
}
