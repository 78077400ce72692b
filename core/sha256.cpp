#include "core/sha256.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace pw {

namespace {

/// SHA-256 fetched once. EVP_sha256() makes every digest look its
/// implementation up again in OpenSSL's method store, under a read lock all
/// threads share; a fetched one carries it.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

/// One digest context per thread, reused: no allocation per digest.
struct digest_context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~digest_context() { EVP_MD_CTX_free(ctx); }
};

} // namespace

sha256_digest sha256(std::string_view data) {
  sha256_digest out{};
  unsigned len = 0;
  thread_local digest_context local;
  const auto* md = sha256_md();
  if (md == nullptr || local.ctx == nullptr
      || EVP_DigestInit_ex2(local.ctx, md, nullptr) != 1
      || EVP_DigestUpdate(local.ctx, data.data(), data.size()) != 1
      || EVP_DigestFinal_ex(local.ctx, out.data(), &len) != 1)
    // Out of memory, or no default provider: the one-shot path, as
    // before the fetched digest.
    EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(),
               nullptr);
  return out;
}

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0x0f]);
  }
  return out;
}

bool digest_equal(const sha256_digest& x, const sha256_digest& y) {
  return CRYPTO_memcmp(x.data(), y.data(), x.size()) == 0;
}

bool parse_hex(std::string_view hex, std::span<unsigned char> out) {
  if (hex.size() != 2 * out.size())
    return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    auto hi = nibble(hex[2 * i]);
    auto lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

bool parse_sha256_hex(std::string_view hex, sha256_digest& out) {
  sha256_digest digest{};
  if (!parse_hex(hex, digest))
    return false;
  out = digest;
  return true;
}

} // namespace pw
