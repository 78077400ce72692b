#include "core/config/env_expand.hpp"
#include "core/errc.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace pw;

namespace {

env_lookup table(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end())
      return std::nullopt;
    return it->second;
  };
}

std::string expand(std::string_view text, const env_lookup& env) {
  auto r = expand_env(text, env);
  REQUIRE(r);
  return *r;
}

} // namespace

TEST_CASE("variables expand anywhere in a value, several at once") {
  auto env = table({{"HOST", "example.com"}, {"PORT", "8443"}, {"E", ""}});
  CHECK(expand("https://${HOST}:${PORT}/v1", env)
        == "https://example.com:8443/v1");
  CHECK(expand("${HOST}", env) == "example.com");
  CHECK(expand("plain text", env) == "plain text");
  CHECK(expand("", env).empty());
  CHECK(expand("${E}", env).empty());
}

TEST_CASE("defaults apply when the variable is unset or empty") {
  auto env = table({{"SET", "value"}, {"EMPTY", ""}});
  CHECK(expand("${SET:-other}", env) == "value");
  CHECK(expand("${UNSET:-fallback}", env) == "fallback");
  CHECK(expand("${EMPTY:-fallback}", env) == "fallback");
  CHECK(expand("${UNSET:-}", env).empty());
  CHECK(expand("${UNSET:-a:-b}", env) == "a:-b");
}

TEST_CASE("expansion is one pass: values are not expanded again") {
  auto env = table({{"A", "${B}"}, {"B", "never"}});
  CHECK(expand("${A}", env) == "${B}");
}

TEST_CASE("a dollar without a brace stays literal") {
  auto env = table({});
  CHECK(expand("cost: $5", env) == "cost: $5");
  CHECK(expand("$NAME", env) == "$NAME");
  CHECK(expand("trailing $", env) == "trailing $");
}

TEST_CASE("unset variables and malformed references are errors") {
  auto env = table({});
  auto unset = expand_env("x${MISSING}y", env);
  REQUIRE_FALSE(unset);
  CHECK(message_of(unset.error()) == "environment variable MISSING is not set");
  CHECK_FALSE(expand_env("${}", env));
  CHECK_FALSE(expand_env("${9A}", env));
  CHECK_FALSE(expand_env("${A B}", env));
  CHECK_FALSE(expand_env("${OPEN", env));
}
