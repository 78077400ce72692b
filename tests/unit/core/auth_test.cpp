#include "core/errc.hpp"
#include "core/policy/auth.hpp"
#include "core/sha256.hpp"

#include <catch2/catch.hpp>

using namespace pw;

namespace {

server_config two_keys() {
  server_config s;
  for (auto [key, name] :
       {std::pair{"sk-alpha-111", "alpha"}, std::pair{"sk-beta-222", "beta"}}) {
    api_key_config k;
    k.key = redacted_string{key};
    k.key_digest = sha256(key);
    k.name = name;
    k.allowed_models = {"*"};
    s.api_keys.push_back(k);
  }
  return s;
}

errc failure(const server_config& s, std::string_view header) {
  auto r = authenticate(s, header);
  REQUIRE_FALSE(r);
  return code_of(r.error());
}

} // namespace

TEST_CASE("a bearer token finds its key, with any case of the scheme") {
  auto s = two_keys();
  for (auto header : {"Bearer sk-beta-222", "bearer sk-beta-222",
                      "BEARER sk-beta-222", "Bearer   sk-beta-222 "}) {
    auto r = authenticate(s, header);
    REQUIRE(r);
    CHECK((*r)->name == "beta");
  }
  CHECK((*authenticate(s, "Bearer sk-alpha-111"))->name == "alpha");
}

TEST_CASE("missing or malformed headers are missing_api_key") {
  auto s = two_keys();
  CHECK(failure(s, "") == errc::missing_api_key);
  CHECK(failure(s, "Bearer") == errc::missing_api_key);
  CHECK(failure(s, "Bearer ") == errc::missing_api_key);
  CHECK(failure(s, "Basic sk-alpha-111") == errc::missing_api_key);
  CHECK(failure(s, "sk-alpha-111") == errc::missing_api_key);
  CHECK(failure(s, "Bearer " + std::string(5000, 'k'))
        == errc::missing_api_key);
}

TEST_CASE("unknown, non-ASCII and control-character tokens are "
          "invalid_api_key") {
  auto s = two_keys();
  CHECK(failure(s, "Bearer sk-alpha-112") == errc::invalid_api_key);
  CHECK(failure(s, "Bearer sk-alpha-11") == errc::invalid_api_key);
  CHECK(failure(s, "Bearer sk-\xc3\xa9") == errc::invalid_api_key);
  CHECK(failure(s, "Bearer sk-\x01") == errc::invalid_api_key);
  CHECK(failure(s, "Bearer sk alpha") == errc::invalid_api_key);
}
