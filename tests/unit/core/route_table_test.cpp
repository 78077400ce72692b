#include "core/errc.hpp"
#include "core/route_table.hpp"

#include <catch2/catch.hpp>

using namespace pw;
using strings = std::vector<std::string>;

namespace {

gateway_config routing_config_of() {
  gateway_config cfg;
  for (const auto* alias : {"claude", "gpt", "llama", "mistral"}) {
    auto m = std::make_shared<model_config>();
    m->alias = alias;
    cfg.models.push_back(m);
  }
  cfg.routing.default_model = "claude";
  cfg.routing.fallback_chains = {
    {"reasoning", {"claude", "gpt", "llama"}},
    {"fast", {"gpt", "llama"}},
    {"client-safe", {"llama"}},
  };
  cfg.routing.rules = {{"client-data", "client-safe"}};
  return cfg;
}

const strings everything{"*"};

strings resolve(const route_table& t, std::string_view model,
                const strings& tags = {}, const strings& globs = everything) {
  auto r = t.resolve(model, tags, globs);
  REQUIRE(r);
  return *r;
}

errc refusal(const route_table& t, std::string_view model,
             const strings& globs) {
  auto r = t.resolve(model, {}, globs);
  REQUIRE_FALSE(r);
  return code_of(r.error());
}

} // namespace

TEST_CASE("an explicit model takes the first chain containing it from its "
          "position on") {
  route_table t{routing_config_of()};
  CHECK(resolve(t, "claude") == strings{"claude", "gpt", "llama"});
  CHECK(resolve(t, "gpt") == strings{"gpt", "llama"});
  CHECK(resolve(t, "llama") == strings{"llama"});
  CHECK(resolve(t, "mistral") == strings{"mistral"});
}

TEST_CASE("a chain name routes to its members") {
  route_table t{routing_config_of()};
  CHECK(resolve(t, "fast") == strings{"gpt", "llama"});
  CHECK(resolve(t, "client-safe") == strings{"llama"});
}

TEST_CASE("no model: a tag rule, else the default model's chain") {
  route_table t{routing_config_of()};
  CHECK(resolve(t, "") == strings{"claude", "gpt", "llama"});
  CHECK(resolve(t, "", {"client-data"}) == strings{"llama"});
  CHECK(resolve(t, "", {"other-tag"}) == strings{"claude", "gpt", "llama"});
}

TEST_CASE("unknown names are model_not_found") {
  route_table t{routing_config_of()};
  auto r = t.resolve("gpt-5", {}, everything);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::model_not_found);
  CHECK(message_of(r.error()) == "The model 'gpt-5' does not exist");
}

TEST_CASE("the key's allowlist filters candidates and refuses named models") {
  route_table t{routing_config_of()};
  strings locals{"llama", "mis*"};
  CHECK(refusal(t, "claude", locals) == errc::model_not_allowed);
  CHECK(refusal(t, "", {"mistral"}) == errc::no_allowed_model);
  CHECK(resolve(t, "", {}, {"gpt", "llama"}) == strings{"gpt", "llama"});
  CHECK(resolve(t, "reasoning", {}, locals) == strings{"llama"});
  CHECK(refusal(t, "reasoning", {"mistral"}) == errc::no_allowed_model);
  CHECK(resolve(t, "mistral", {}, locals) == strings{"mistral"});
}
