#include "adapters/bedrock/sigv4.hpp"

#include "core/sha256.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <algorithm>
#include <ctime>
#include <utility>

namespace pw::adapters::bedrock {

namespace {

bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
         || c == '~';
}

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// Leading and trailing spaces removed, inner runs of spaces as one.
std::string trimmed(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space)
      out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

/// The path without `.` and `..` segments and empty ones, keeping a
/// trailing slash (RFC 3986 section 5.2.4, as SigV4 for non-S3 services).
std::string normalised(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t pos = 0;
  while (pos <= path.size()) {
    auto next = path.find('/', pos);
    if (next == std::string_view::npos)
      next = path.size();
    auto seg = path.substr(pos, next - pos);
    if (seg == "..") {
      if (!segments.empty())
        segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    pos = next + 1;
  }
  std::string out = "/";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0)
      out.push_back('/');
    out += segments[i];
  }
  bool trailing
    = path.size() > 1
      && (path.ends_with("/") || path.ends_with("/.") || path.ends_with("/.."));
  if (trailing && !segments.empty())
    out.push_back('/');
  return out;
}

std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t pos = 0;
  while (pos < query.size()) {
    auto amp = query.find('&', pos);
    if (amp == std::string_view::npos)
      amp = query.size();
    auto pair = query.substr(pos, amp - pos);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      auto key = pair.substr(0, eq);
      auto value = eq == std::string_view::npos ? std::string_view{}
                                                : pair.substr(eq + 1);
      params.emplace_back(uri_encoded(key, false), uri_encoded(value, false));
    }
    pos = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty())
      out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::string hex(const unsigned char* data, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
  return out;
}

/// One HMAC-SHA256 context per thread, its algorithm and digest fetched
/// once: the one-shot HMAC() looks both up in OpenSSL's method store at
/// every call (docs/performance.md, "Bedrock").
struct hmac_context {
  EVP_MAC_CTX* ctx = nullptr;

  hmac_context() {
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr)
      return;
    ctx = EVP_MAC_CTX_new(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[]
      = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
         OSSL_PARAM_construct_end()};
    if (ctx != nullptr && EVP_MAC_CTX_set_params(ctx, params) != 1) {
      EVP_MAC_CTX_free(ctx);
      ctx = nullptr;
    }
  }

  ~hmac_context() { EVP_MAC_CTX_free(ctx); }

  hmac_context(const hmac_context&) = delete;
  hmac_context& operator=(const hmac_context&) = delete;
};

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  thread_local hmac_context local;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  if (local.ctx != nullptr
      && EVP_MAC_init(local.ctx,
                      reinterpret_cast<const unsigned char*>(key.data()),
                      key.size(), nullptr)
           == 1
      && EVP_MAC_update(local.ctx, bytes, data.size()) == 1
      && EVP_MAC_final(local.ctx, out, &len, sizeof out) == 1)
    return std::string{reinterpret_cast<const char*>(out), len};
  // Out of memory, or no default provider: the one-shot path.
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes,
       data.size(), out, &n);
  return std::string{reinterpret_cast<const char*>(out), n};
}

/// The key of one secret, day, region and service. The last one each
/// thread derived is kept: a model signs with the same key all day, and
/// four HMACs fewer per request (docs/performance.md, "Bedrock").
std::string signing_key(const std::string& secret, std::string_view day,
                        std::string_view region, std::string_view service) {
  struct derived {
    std::string secret;
    std::string scope;
    std::string key;
  };
  thread_local derived last;
  std::string scope{day};
  scope += '/';
  scope += region;
  scope += '/';
  scope += service;
  if (last.key.empty() || last.secret != secret || last.scope != scope) {
    auto key = hmac("AWS4" + secret, day);
    key = hmac(key, region);
    key = hmac(key, service);
    last.key = hmac(key, "aws4_request");
    last.secret = secret;
    last.scope = std::move(scope);
  }
  return last.key;
}

} // namespace

std::string uri_encoded(std::string_view text, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
      continue;
    }
    out.push_back('%');
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  return to_hex(sha256(data));
}

std::string canonical_request(const signable_request& r,
                              std::string& signed_headers) {
  // Headers: lower-case names, sorted (stable, so repeated ones keep
  // their order and join with ',').
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(r.headers.size());
  for (const auto& h : r.headers)
    headers.emplace_back(lower(h.name), trimmed(h.value));
  std::stable_sort(
    headers.begin(), headers.end(),
    [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers;
  signed_headers.clear();
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.pop_back(); // the '\n'
      canonical_headers += "," + headers[i].second + "\n";
      continue;
    }
    canonical_headers += headers[i].first + ":" + headers[i].second + "\n";
    if (!signed_headers.empty())
      signed_headers.push_back(';');
    signed_headers += headers[i].first;
  }
  std::string out;
  out += r.method;
  out += '\n';
  out += uri_encoded(normalised(r.path), true);
  out += '\n';
  out += canonical_query(r.query);
  out += '\n';
  out += canonical_headers;
  out += '\n';
  out += signed_headers;
  out += '\n';
  if (r.payload_hash.empty())
    out += sha256_hex(r.payload);
  else
    out += r.payload_hash;
  return out;
}

std::string credential_scope(std::string_view amz_date, std::string_view region,
                             std::string_view service) {
  return std::string{amz_date.substr(0, 8)} + "/" + std::string{region} + "/"
         + std::string{service} + "/aws4_request";
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical) {
  return "AWS4-HMAC-SHA256\n" + std::string{amz_date} + "\n"
         + std::string{scope} + "\n" + sha256_hex(canonical);
}

std::string authorization(const signable_request& r,
                          const aws_credentials& credentials,
                          std::string_view region, std::string_view service,
                          std::string_view amz_date) {
  std::string signed_headers;
  auto canonical = canonical_request(r, signed_headers);
  auto scope = credential_scope(amz_date, region, service);
  auto sts = string_to_sign(amz_date, scope, canonical);
  auto signature = hmac(signing_key(credentials.secret_access_key.reveal(),
                                    amz_date.substr(0, 8), region, service),
                        sts);
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/"
         + scope + ", SignedHeaders=" + signed_headers + ", Signature="
         + hex(reinterpret_cast<const unsigned char*>(signature.data()),
               signature.size());
}

std::string amz_date(int64_t t) {
  // Requests of the same second share the text.
  thread_local int64_t last_t = -1;
  thread_local std::string last;
  if (t == last_t)
    return last;
  auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[17];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  last_t = t;
  last = buf;
  return last;
}

void sign(upstream_request& out, const aws_credentials& credentials,
          std::string_view region, std::string_view service, int64_t now) {
  auto date = amz_date(now);
  auto has = [&](std::string_view name) {
    return std::any_of(
      out.headers.begin(), out.headers.end(),
      [&](const header_field& h) { return lower(h.name) == lower(name); });
  };
  if (!has("host"))
    out.headers.push_back({"Host", out.target.host_header()});
  out.headers.push_back({"X-Amz-Date", date});
  auto payload_hash = sha256_hex(out.body);
  out.headers.push_back({"X-Amz-Content-Sha256", payload_hash});
  if (!credentials.session_token.empty())
    out.headers.push_back(
      {"X-Amz-Security-Token", credentials.session_token.reveal()});
  signable_request r;
  r.method = out.method;
  auto q = out.path.find('?');
  r.path = out.path.substr(0, q);
  if (q != std::string::npos)
    r.query = out.path.substr(q + 1);
  // Only the headers AWS needs signed: the rest (Accept, Content-Type)
  // may be changed by nothing on the way, but are not worth the risk of a
  // proxy that rewrites them.
  for (const auto& h : out.headers) {
    auto name = lower(h.name);
    if (name == "host" || name.starts_with("x-amz-") || name == "content-type")
      r.headers.push_back(h);
  }
  r.payload = out.body;
  r.payload_hash = payload_hash;
  out.headers.push_back(
    {"Authorization", authorization(r, credentials, region, service, date)});
}

} // namespace pw::adapters::bedrock
