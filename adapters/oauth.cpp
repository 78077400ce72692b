#include "adapters/oauth.hpp"

#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>

namespace pw::adapters::oauth {

namespace {

/// A token file larger than this is not a token.
constexpr size_t max_token_file = 64 * 1024;

bool unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
         || c == '~';
}

caf::error token_error(std::string text) {
  return make_error(errc::upstream_failed, std::move(text));
}

} // namespace

std::string bounded(std::string text, const std::string& secret, size_t max) {
  if (secret.size() >= 4)
    for (auto pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos))
      text.replace(pos, secret.size(), "***");
  text.resize(utf8_prefix(text, max).size());
  return text;
}

std::string percent_encoded(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (unreserved(c)) {
      out.push_back(c);
      continue;
    }
    auto b = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

void form::add(std::string_view name, std::string_view value) {
  if (!text_.empty())
    text_.push_back('&');
  text_ += percent_encoded(name);
  text_.push_back('=');
  text_ += percent_encoded(value);
}

caf::expected<std::string> read_token_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(errc::upstream_failed,
                      "cannot read the token file '" + path + "'");
  std::string text(max_token_file + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > max_token_file)
    return make_error(errc::upstream_failed,
                      "the token file '" + path + "' is larger than 64 KiB");
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return make_error(errc::upstream_failed,
                      "the token file '" + path + "' is empty");
  auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::optional<endpoint> parse_token_url(const std::string& url,
                                        const std::string& where,
                                        config_reader& cfg) {
  std::string why;
  auto parsed = parse_base_url(url, why);
  if (!parsed) {
    cfg.fail(where, why);
    return std::nullopt;
  }
  if (!parsed->tls && !is_loopback_host(parsed->host)) {
    cfg.fail(where, "must be https (http only to a loopback host, for "
                    "tests): tokens and secrets travel on it");
    return std::nullopt;
  }
  return parsed;
}

upstream_request token_post(const model_config& model, const endpoint& at,
                            std::string path, std::string body) {
  upstream_request out;
  out.target = at;
  out.method = "POST";
  out.path = std::move(path);
  out.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  out.headers.push_back({"Accept", "application/json"});
  out.body = std::move(body);
  out.connect_timeout = to_ms(model.connect_timeout);
  out.timeout = std::chrono::seconds{30};
  out.first_byte_timeout = std::chrono::seconds{30};
  return out;
}

std::string base64url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(bytes.data()),
                           static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  for (auto& c : out)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

namespace {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

/// The private key in `pem`, or null.
pkey_ptr read_key(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free};
  if (!bio)
    return {nullptr, &EVP_PKEY_free};
  return {PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
          &EVP_PKEY_free};
}

} // namespace

bool readable_rsa_key(const std::string& key_pem) {
  auto key = read_key(key_pem);
  return key && EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_RSA;
}

caf::expected<std::string> rs256_jwt(const std::string& key_pem,
                                     const nlohmann::json& header,
                                     const nlohmann::json& claims) {
  auto key = read_key(key_pem);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    return make_error(errc::upstream_failed,
                      "the private key is not an RSA key OpenSSL can read");
  auto input = base64url(header.dump()) + "." + base64url(claims.dump());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free};
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx
      || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                            key.get())
           != 1
      || EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1)
    return make_error(errc::upstream_failed,
                      "signing the token request failed");
  std::string signature(len, '\0');
  if (EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()), &len,
                     data, input.size())
      != 1)
    return make_error(errc::upstream_failed,
                      "signing the token request failed");
  signature.resize(len);
  return input + "." + base64url(signature);
}

caf::expected<fetched_credential>
read_token_answer(const upstream_result& result, std::string_view issuer,
                  const std::string& secret) {
  std::string who{issuer};
  if (result.failure != upstream_failure::none)
    return token_error(who + "'s token endpoint could not be reached ("
                       + std::string{to_string(result.failure)} + ": "
                       + bounded(result.detail, secret) + ")");
  auto read = json::read(result.body, json::upstream_limits);
  if (result.status < 200 || result.status >= 300) {
    std::string text = who + "'s token endpoint answered HTTP "
                       + std::to_string(result.status);
    if (read && read->root().is_object()) {
      auto code = json::string_of(read->root(), "error");
      auto description = json::string_of(read->root(), "error_description");
      if (!code.empty())
        text += ": " + bounded(std::string{code}, secret, 100);
      if (!description.empty())
        text += " (" + bounded(std::string{description}, secret) + ")";
    }
    return token_error(std::move(text));
  }
  if (!read || !read->root().is_object())
    return token_error(who + "'s token endpoint answered with no JSON object");
  auto root = read->root();
  auto token = json::string_of(root, "access_token");
  if (token.empty())
    return token_error(who
                       + "'s token endpoint answered with no "
                         "access_token");
  fetched_credential out;
  out.token = redacted_string{std::string{token}};
  // 5 minutes when the answer does not say: renewed early, not too late.
  int64_t seconds = 300;
  if (auto n = json::member(root, "expires_in")) {
    if (n->is_int64() || n->is_uint64())
      seconds = n->is_int64() ? n->get_int64().value_unsafe()
                              : static_cast<int64_t>(std::min<uint64_t>(
                                n->get_uint64().value_unsafe(), 1u << 30));
    else if (n->is_string()) {
      auto text = n->get_string().value_unsafe();
      int64_t parsed = 0;
      auto [ptr, ec]
        = std::from_chars(text.data(), text.data() + text.size(), parsed);
      if (ec == std::errc{} && ptr == text.data() + text.size())
        seconds = parsed;
    }
  }
  out.lifetime = std::chrono::seconds{std::clamp<int64_t>(seconds, 0, 1 << 30)};
  return out;
}

} // namespace pw::adapters::oauth
