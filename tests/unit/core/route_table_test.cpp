#include "core/errc.hpp"
#include "core/policy/route_table.hpp"

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
  return r->models;
}

std::string reason(const route_table& t, std::string_view model,
                   const strings& tags = {}) {
  auto r = t.resolve(model, tags, everything);
  REQUIRE(r);
  return r->reason;
}

errc tag_refusal(const route_table& t, std::string_view model,
                 const strings& tags) {
  auto r = t.resolve(model, tags, everything);
  REQUIRE_FALSE(r);
  return code_of(r.error());
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

TEST_CASE("tag rules bind explicit models too: reroute by default") {
  route_table t{routing_config_of()};
  // Every SDK names a model; a tagged request still only reaches the
  // rule's chain.
  CHECK(resolve(t, "claude", {"client-data"}) == strings{"llama"});
  CHECK(reason(t, "claude", {"client-data"})
        == "tag:client-data->chain:client-safe (rerouted from claude)");
  CHECK(resolve(t, "llama", {"client-data"}) == strings{"llama"});
  CHECK(reason(t, "llama", {"client-data"})
        == "tag:client-data->chain:client-safe");
  // A chain name keeps only its permitted members.
  CHECK(resolve(t, "reasoning", {"client-data"}) == strings{"llama"});
  CHECK(resolve(t, "fast", {"client-data", "x"}) == strings{"llama"});
}

TEST_CASE("tag rules: a permitted model falls back along the permitted "
          "chain only") {
  auto cfg = routing_config_of();
  cfg.routing.fallback_chains.push_back({"eu", {"mistral", "gpt", "llama"}});
  cfg.routing.rules = {{"eu-only", "eu"}};
  route_table t{cfg};
  CHECK(resolve(t, "gpt", {"eu-only"}) == strings{"gpt", "llama"});
  CHECK(resolve(t, "mistral", {"eu-only"})
        == strings{"mistral", "gpt", "llama"});
  CHECK(resolve(t, "", {"eu-only"}) == strings{"mistral", "gpt", "llama"});
  CHECK(resolve(t, "claude", {"eu-only"})
        == strings{"mistral", "gpt", "llama"});
}

TEST_CASE("tag rules with tag_override: reject refuse models outside") {
  auto cfg = routing_config_of();
  cfg.routing.on_tag_conflict = tag_override::reject;
  route_table t{cfg};
  CHECK(tag_refusal(t, "claude", {"client-data"}) == errc::policy_forbidden);
  CHECK(tag_refusal(t, "gpt", {"client-data"}) == errc::policy_forbidden);
  // A chain keeps its permitted members, under either override.
  CHECK(resolve(t, "fast", {"client-data"}) == strings{"llama"});
  CHECK(resolve(t, "llama", {"client-data"}) == strings{"llama"});
  CHECK(resolve(t, "", {"client-data"}) == strings{"llama"});
}

TEST_CASE("several matching rules: the intersection, never a silent pass") {
  auto cfg = routing_config_of();
  cfg.routing.fallback_chains.push_back({"eu", {"mistral", "gpt", "llama"}});
  cfg.routing.fallback_chains.push_back({"onprem", {"mistral"}});
  cfg.routing.rules = {{"eu-only", "eu"}, {"secret", "fast"}};
  route_table t{cfg};
  CHECK(resolve(t, "", {"secret", "eu-only"}) == strings{"gpt", "llama"});
  CHECK(reason(t, "", {"secret", "eu-only"})
        == "tag:eu-only->chain:eu,tag:secret->chain:fast");
  cfg.routing.rules
    = {{"eu-only", "eu"}, {"secret", "onprem"}, {"pci", "client-safe"}};
  route_table u{cfg};
  CHECK(resolve(u, "", {"secret", "eu-only"}) == strings{"mistral"});
  CHECK(tag_refusal(u, "", {"secret", "pci"}) == errc::policy_forbidden);
  CHECK(tag_refusal(u, "mistral", {"secret", "pci"}) == errc::policy_forbidden);
}

TEST_CASE("the route reason names what chose the route") {
  route_table t{routing_config_of()};
  CHECK(reason(t, "gpt") == "model:gpt");
  CHECK(reason(t, "fast") == "chain:fast");
  CHECK(reason(t, "") == "default:claude");
  CHECK(reason(t, "", {"client-data"}) == "tag:client-data->chain:client-safe");
}

TEST_CASE("the key's allowlist applies after tag rules") {
  route_table t{routing_config_of()};
  // The tags permit only llama; a key without llama gets nothing.
  auto r = t.resolve("", {"client-data"}, {"claude", "gpt"});
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::no_allowed_model);
}

TEST_CASE("the route reason is printable ASCII, whatever the names") {
  gateway_config cfg;
  auto m = std::make_shared<model_config>();
  m->alias = "caf\xc3\xa9";
  cfg.models.push_back(m);
  cfg.routing.default_model = m->alias;
  route_table t{cfg};
  auto r = t.resolve("", {}, {"*"});
  REQUIRE(r);
  CHECK(r->reason == "default:caf??");
}

TEST_CASE("routing keeps only the models that serve the endpoint called") {
  auto cfg = routing_config_of();
  // gpt and llama serve embeddings; claude and mistral chat only.
  for (auto& m : cfg.models)
    if (m->alias == "gpt" || m->alias == "llama") {
      auto copy = std::make_shared<model_config>(*m);
      copy->endpoints = {api_endpoint::chat, api_endpoint::embeddings};
      m = copy;
    }
  route_table t{cfg};
  auto embed = [&](std::string_view model, const strings& tags = {},
                   const strings& globs = everything) {
    return t.resolve(model, tags, globs, api_endpoint::embeddings);
  };
  SECTION("a chain skips its chat-only members") {
    auto r = embed("reasoning");
    REQUIRE(r);
    CHECK(r->models == strings{"gpt", "llama"});
    CHECK(r->reason == "chain:reasoning");
  }
  SECTION("the default route does too") {
    auto r = embed("");
    REQUIRE(r);
    CHECK(r->models == strings{"gpt", "llama"});
  }
  SECTION("a named model that does not serve it is the client's mistake") {
    auto r = embed("claude");
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::endpoint_unsupported);
    CHECK(param_of(r.error()) == "model");
    CHECK(message_of(r.error())
          == "The model 'claude' does not serve /v1/embeddings (it serves: "
             "chat)");
  }
  SECTION("the allowlist is checked first: nothing is said of other models") {
    auto r = embed("claude", {}, {"gpt"});
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::model_not_allowed);
  }
  SECTION("nothing left after the allowlist and the endpoint") {
    auto r = embed("reasoning", {}, {"claude"});
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::endpoint_unsupported);
    CHECK(message_of(r.error()).find("'reasoning'") != std::string::npos);
  }
  SECTION("tag rules still decide first") {
    auto r = embed("gpt", {"client-data"});
    REQUIRE(r);
    CHECK(r->models == strings{"llama"});
  }
  SECTION("chat is unchanged") {
    CHECK(resolve(t, "reasoning") == strings{"claude", "gpt", "llama"});
  }
}
