#include "core/sha256.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace pw {

sha256_digest sha256(std::string_view data) {
  sha256_digest out{};
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string to_hex(const sha256_digest& digest) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (unsigned char c : digest) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0x0f]);
  }
  return out;
}

bool digest_equal(const sha256_digest& x, const sha256_digest& y) {
  return CRYPTO_memcmp(x.data(), y.data(), x.size()) == 0;
}

} // namespace pw
