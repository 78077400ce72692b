#include "adapters/provider.hpp"
#include "core/config/config.hpp"
#include "core/errc.hpp"
#include "core/sha256.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <string>

using namespace pw;

namespace {

// Every built-in provider, as pw-router's main gives them to the loader.
caf::expected<gateway_config> load_config_text(std::string_view yaml) {
  return pw::load_config_text(yaml, adapters::catalog());
}

caf::expected<gateway_config> load_config(const std::string& path) {
  return pw::load_config(path, adapters::catalog());
}

} // namespace

namespace {

const std::string keys = R"(server:
  api_keys:
    - key: "sk-unit-key"
      name: "unit"
      allowed_models: ["*"]
)";

const std::string echo_models = R"(models:
  echo:
    provider: echo
)";

const std::string echo_routing = R"(routing:
  default_model: echo
)";

/// The error text of a config that must fail.
std::string errors_of(const std::string& yaml) {
  auto cfg = load_config_text(yaml);
  REQUIRE_FALSE(cfg);
  CHECK(code_of(cfg.error()) == errc::invalid_config);
  return message_of(cfg.error());
}

/// True if `text` has a line equal to `line`.
bool has_line(const std::string& text, const std::string& line) {
  size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    if (text.substr(pos, nl - pos) == line)
      return true;
    if (nl == std::string::npos)
      break;
    pos = nl + 1;
  }
  return false;
}

#define CHECK_ERROR(yaml, line)                                                \
  do {                                                                         \
    auto text_ = errors_of(yaml);                                              \
    INFO(text_);                                                               \
    CHECK(has_line(text_, line));                                              \
  } while (false)

} // namespace

TEST_CASE("config.example.yaml loads and runs the echo model by default") {
  auto cfg = load_config(std::string{PW_SOURCE_DIR} + "/config.example.yaml");
  REQUIRE(cfg);
  CHECK(cfg->routing.default_model == "echo");
  REQUIRE(cfg->find_model("echo") != nullptr);
  CHECK((*cfg->find_model("echo"))->provider == "echo");
  CHECK(cfg->server.port == 8100);
  CHECK(cfg->server.api_keys.size() == 1);
  CHECK(cfg->source_sha256.size() == 64);
}

TEST_CASE("pw-router's own config files load once their variables are set") {
  setenv("PW_ROUTER_API_KEY_1", "k1", 1);
  setenv("OPENAI_API_KEY", "sk-openai", 1);
  setenv("ANTHROPIC_API_KEY", "sk-ant", 1);
  setenv("RUNPOD_API_KEY", "rp", 1);
  setenv("RUNPOD_ENDPOINT_ID", "endpoint-7", 1);
  auto dir = std::string{PW_TEST_DATA_DIR} + "/config/";
  SECTION("the README example") {
    auto cfg = load_config(dir + "pw_router_readme.yaml");
    REQUIRE(cfg);
    CHECK(cfg->models.size() == 2);
    CHECK(cfg->routing.rules.size() == 1);
    CHECK(cfg->routing.rules[0].tag == "client-data");
    auto llama = *cfg->find_model("local-llama");
    CHECK(llama->target.host == "api.runpod.ai");
    CHECK(llama->target.base_path == "/v2/endpoint-7/openai/v1");
    CHECK(llama->api_key.reveal() == "rp");
    // Not documented by pw-router, so its default: rate limiting off.
    CHECK_FALSE(cfg->rate_limit.enabled);
  }
  SECTION("config.example.yaml with max_retries, tags and logging") {
    auto cfg = load_config(dir + "pw_router_example.yaml");
    REQUIRE(cfg);
    CHECK(cfg->models.size() == 3);
    CHECK((*cfg->find_model("gpt-4o"))->max_retries == 2);
    CHECK((*cfg->find_model("gpt-4o"))->tags
          == std::vector<std::string>{"external", "reasoning"});
    auto claude = *cfg->find_model("claude-sonnet");
    CHECK(claude->base_url == "https://api.anthropic.com");
    CHECK(cfg->routing.fallback_chains.size() == 3);
    CHECK(cfg->routing.fallback_chains[0].name == "reasoning");
    CHECK(cfg->logging.level == log_level::info);
    // pw-router's rule: the cooldown defaults to the check interval.
    CHECK(cfg->health.cooldown.count() == 30);
  }
}

TEST_CASE("actor_threads: 0 runs the actors on the io threads, N on a pool") {
  for (auto n : {0u, 3u}) {
    auto cfg = load_config_text(keys + "  actor_threads: " + std::to_string(n)
                                + "\n" + echo_models + echo_routing);
    REQUIRE(cfg);
    CHECK(cfg->server.actor_threads == n);
  }
}

TEST_CASE("defaults fill what a config leaves out") {
  auto cfg = load_config_text(keys + echo_models + echo_routing);
  REQUIRE(cfg);
  CHECK(cfg->server.host == "0.0.0.0");
  CHECK(cfg->server.port == 8100);
  CHECK(cfg->server.max_body_bytes == 10 * 1024 * 1024);
  CHECK(cfg->server.io_threads >= 1);
  CHECK(cfg->server.actor_threads == 0); // the actors run on the io threads
  CHECK(cfg->health.unhealthy_threshold == 3);
  CHECK(cfg->health.check_interval.count() == 30);
  CHECK_FALSE(cfg->rate_limit.enabled);
}

TEST_CASE("providers get their default base_url, keys are kept secret") {
  auto cfg = load_config_text(keys + R"(models:
  a: {provider: openai, model: m, api_key: "sk-secret-1"}
  b: {provider: vllm, model: m}
  c: {provider: ollama, model: m}
  d: {provider: anthropic, model: m}
  e: {provider: openai, model: m, base_url: "http://[::1]:9000/v1/"}
routing: {default_model: a}
)");
  REQUIRE(cfg);
  auto url
    = [&](const char* alias) { return (*cfg->find_model(alias))->base_url; };
  CHECK(url("a") == "https://api.openai.com/v1");
  CHECK(url("b") == "http://localhost:8000/v1");
  CHECK(url("c") == "http://localhost:11434/v1");
  CHECK(url("d") == "https://api.anthropic.com");
  auto e = *cfg->find_model("e");
  CHECK(e->target.host == "::1");
  CHECK(e->target.port == 9000);
  CHECK(e->target.base_path == "/v1");
  CHECK_FALSE(e->target.tls);
  CHECK(e->target.host_header() == "[::1]:9000");
  auto a = *cfg->find_model("a");
  CHECK(to_string(a->api_key) == "***");
  CHECK(a->target.port == 443);
}

TEST_CASE("environment variables expand in values, numbers included") {
  setenv("PW_UNIT_PORT", "9123", 1);
  setenv("PW_UNIT_EMPTY", "", 1);
  unsetenv("PW_UNIT_UNSET");
  auto cfg = load_config_text(R"(server:
  port: ${PW_UNIT_PORT}
  host: "${PW_UNIT_UNSET:-127.0.0.1}"
  api_keys:
    - key: "sk-${PW_UNIT_PORT}-${PW_UNIT_EMPTY:-x}"
      name: "unit"
      allowed_models: ["*"]
)" + echo_models + echo_routing);
  REQUIRE(cfg);
  CHECK(cfg->server.port == 9123);
  CHECK(cfg->server.host == "127.0.0.1");
  CHECK(cfg->server.api_keys[0].key.reveal() == "sk-9123-x");
}

TEST_CASE("every invalid config is rejected with its YAML path") {
  SECTION("not YAML") {
    auto text = errors_of("server: [unclosed");
    CHECK(text.starts_with("config: invalid YAML at line"));
  }
  SECTION("not a mapping") {
    CHECK_ERROR("- a\n- b\n", "config: expected a mapping at the top level");
    CHECK_ERROR("", "config: expected a mapping at the top level");
  }
  SECTION("unknown top-level key") {
    CHECK_ERROR(
      keys + echo_models + echo_routing + "extras: 1\n",
      "extras: unknown key (allowed: server, models, routing, "
      "health, rate_limit, teams, state, middleware, logging, tracing)");
  }
  SECTION("duplicate key") {
    CHECK_ERROR(keys + echo_models + echo_routing + "routing: {}\n",
                "routing: duplicate key");
  }
  SECTION("unset variable") {
    unsetenv("PW_UNIT_NOPE");
    CHECK_ERROR(keys
                  + "models:\n  m:\n    provider: openai\n    model: x\n"
                    "    api_key: ${PW_UNIT_NOPE}\n"
                  + "routing:\n  default_model: m\n",
                "models.m.api_key: environment variable PW_UNIT_NOPE is not "
                "set");
  }
  SECTION("malformed variable reference") {
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "logging:\n  level: \"${1BAD}\"\n",
                "logging.level: malformed variable reference: '${' must be "
                "followed by a name of letters, digits and '_'");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "logging:\n  level: \"${OPEN\"\n",
                "logging.level: unterminated variable reference '${' "
                "(missing '}')");
  }
  SECTION("a malformed reference is never echoed, not even by later checks") {
    auto text
      = errors_of(keys + "  port: \"${sk-secret-port}\"\n"
                  + "models:\n  m:\n    provider: openai\n    model: x\n"
                    "    base_url: \"https://${sk-secret-token}/v1\"\n"
                  + "routing:\n  default_model: m\n");
    CHECK(text.find("sk-secret") == std::string::npos);
    CHECK(has_line(text, "models.m.base_url: malformed variable reference: "
                         "'${' must be followed by a name of letters, "
                         "digits and '_'"));
  }
  SECTION("server") {
    CHECK_ERROR(echo_models + echo_routing, "server: required");
    CHECK_ERROR("server:\n  port: 8100\n" + echo_models + echo_routing,
                "server.api_keys: required (at least one key)");
    CHECK_ERROR("server:\n  api_keys: []\n" + echo_models + echo_routing,
                "server.api_keys: must contain at least one key");
    CHECK_ERROR("server:\n  api_keys: {a: 1}\n" + echo_models + echo_routing,
                "server.api_keys: expected a list, got a mapping");
    CHECK_ERROR(keys + "  port: 70000\n" + echo_models + echo_routing,
                "server.port: must be at most 65535 (got 70000)");
    CHECK_ERROR(keys + "  port: http\n" + echo_models + echo_routing,
                "server.port: expected an integer (got \"http\")");
    CHECK_ERROR(keys + "  io_threads: 0\n" + echo_models + echo_routing,
                "server.io_threads: must be at least 1 (got 0)");
    CHECK_ERROR(keys + "  actor_threads: -1\n" + echo_models + echo_routing,
                "server.actor_threads: must be at least 0 (got -1)");
    CHECK_ERROR(keys + "  header_timeout_seconds: -1\n" + echo_models
                  + echo_routing,
                "server.header_timeout_seconds: must be > 0 (got -1)");
    CHECK_ERROR(keys + "  health_details: admins\n" + echo_models
                  + echo_routing,
                "server.health_details: must be \"admin\" (counters and "
                "errors need an admin key) or \"public\" (anyone who can "
                "connect sees them) (got \"admins\")");
    CHECK_ERROR(keys + "  listen: 1\n" + echo_models + echo_routing,
                "server.listen: unknown key (allowed: host, port, api_keys, "
                "io_threads, actor_threads, max_body_bytes, max_header_bytes, "
                "header_timeout_seconds, body_timeout_seconds, "
                "keepalive_timeout_seconds, write_timeout_seconds, "
                "max_connections, drain_seconds, request_deadline_seconds, "
                "sched_batch, metrics_public, health_details, tls)");
  }
  SECTION("api keys") {
    auto entry = [](const std::string& body) {
      return "server:\n  api_keys:\n    - " + body + "\n";
    };
    CHECK_ERROR(entry("{name: a, allowed_models: ['*']}") + echo_models
                  + echo_routing,
                "server.api_keys[0].key: required");
    CHECK_ERROR(entry("{key: '', name: a, allowed_models: ['*']}") + echo_models
                  + echo_routing,
                "server.api_keys[0].key: must not be empty");
    CHECK_ERROR(entry("{key: k, allowed_models: ['*']}") + echo_models
                  + echo_routing,
                "server.api_keys[0].name: required");
    CHECK_ERROR(entry("{key: k, name: a}") + echo_models + echo_routing,
                "server.api_keys[0].allowed_models: required (use [\"*\"] to "
                "allow every model)");
    CHECK_ERROR(entry("{key: k, name: a, allowed_models: []}") + echo_models
                  + echo_routing,
                "server.api_keys[0].allowed_models: must not be empty (use "
                "[\"*\"] to allow every model)");
    CHECK_ERROR(entry("{key: k, name: a, allowed_models: ['*'], role: x}")
                  + echo_models + echo_routing,
                "server.api_keys[0].role: unknown key (allowed: key, "
                "key_sha256, name, allowed_models, admin, team, limits)");
    CHECK_ERROR(entry("{key: k, name: a, allowed_models: ['*'], admin: 1}")
                  + echo_models + echo_routing,
                "server.api_keys[0].admin: expected true or false (got "
                "\"1\")");
  }
  SECTION("a duplicated key is named by path, never by value") {
    auto text = errors_of(
      "server:\n  api_keys:\n"
      "    - {key: sk-dup-secret-77, name: a, allowed_models: ['*']}\n"
      "    - {key: sk-dup-secret-77, name: b, allowed_models: ['*']}\n"
      + echo_models + echo_routing);
    CHECK(has_line(text, "server.api_keys[1].key: same key as "
                         "server.api_keys[0]"));
    CHECK(text.find("sk-dup-secret-77") == std::string::npos);
  }
  SECTION("key_sha256: 64 hex digits, instead of key") {
    auto entry = [](const std::string& body) {
      return "server:\n  api_keys:\n    - " + body + "\n";
    };
    CHECK_ERROR(entry("{key_sha256: abc, name: a, allowed_models: ['*']}")
                  + echo_models + echo_routing,
                "server.api_keys[0].key_sha256: must be 64 hexadecimal "
                "digits, the SHA-256 of the key (pw-router hash-key prints "
                "it)");
    CHECK_ERROR(entry("{key: k, key_sha256: '" + std::string(64, 'a')
                      + "', name: a, allowed_models: ['*']}")
                  + echo_models + echo_routing,
                "server.api_keys[0]: give key or key_sha256, not both");
    // The same key once in clear and once hashed is still one key twice.
    auto text = errors_of(
      "server:\n  api_keys:\n"
      "    - {key: k, name: a, allowed_models: ['*']}\n"
      "    - {key_sha256: "
      "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a, "
      "name: b, allowed_models: ['*']}\n"
      + echo_models + echo_routing);
    CHECK(has_line(text, "server.api_keys[1].key_sha256: same key as "
                         "server.api_keys[0]"));
  }
  SECTION("models") {
    CHECK_ERROR(keys + echo_routing, "models: required (at least one model)");
    CHECK_ERROR(keys + "models: {}\n" + echo_routing,
                "models: must contain at least one model");
    auto model = [](const std::string& body) {
      return "models:\n  m:\n" + body + "routing:\n  default_model: m\n";
    };
    CHECK_ERROR(keys + model("    model: x\n"), "models.m.provider: required");
    CHECK_ERROR(
      keys + model("    provider: watsonx\n    model: x\n"),
      "models.m.provider: unknown provider \"watsonx\" (known: "
      "openai, vllm, ollama, anthropic, azure, bedrock, gemini, vertex, "
      "echo)");
    auto custom = errors_of(keys + model("    provider: custom_http\n"));
    CHECK(custom.find("custom_http is not supported") != std::string::npos);
    CHECK_ERROR(keys + model("    provider: openai\n"),
                "models.m.model: required");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    base_url: ftp://host/v1\n"),
                "models.m.base_url: must start with http:// or https:// (got "
                "\"ftp://host/v1\")");
    auto creds = errors_of(keys
                           + model("    provider: openai\n    model: x\n"
                                   "    base_url: https://user:pw@host/v1\n"));
    CHECK(has_line(creds, "models.m.base_url: must not contain credentials "
                          "(use api_key)"));
    CHECK(creds.find("user:pw") == std::string::npos);
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    base_url: http://host:0/v1\n"),
                "models.m.base_url: has an invalid port (got "
                "\"http://host:0/v1\")");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    timeout_seconds: 0\n"),
                "models.m.timeout_seconds: must be > 0 (got 0)");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    timeout_seconds: soon\n"),
                "models.m.timeout_seconds: expected a number (got \"soon\")");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    timeout_seconds: .nan\n"),
                "models.m.timeout_seconds: expected a number (got \".nan\")");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    max_retries: -1\n"),
                "models.m.max_retries: must be at least 0 (got -1)");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    tags: external\n"),
                "models.m.tags: expected a list, got a scalar");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    ca_file: /nonexistent/ca.pem\n"),
                "models.m.ca_file: cannot read \"/nonexistent/ca.pem\"");
    CHECK_ERROR(keys + model("    provider: echo\n    base_url: http://x\n"),
                "models.m.base_url: the echo provider takes no base_url");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    temperature: 1\n"),
                "models.m.temperature: unknown key (allowed: provider, model, "
                "api_key, base_url, timeout_seconds, connect_timeout_seconds, "
                "first_byte_timeout_seconds, idle_timeout_seconds, "
                "max_retries, max_concurrent, tags, ca_file, "
                "default_max_tokens, endpoints, pricing)");
    CHECK_ERROR(keys
                  + model("    provider: openai\n    model: x\n"
                          "    api_key: [a, b]\n"),
                "models.m.api_key: expected a string, got a list");
  }
  SECTION("routing") {
    CHECK_ERROR(keys + echo_models,
                "routing: required (at least routing.default_model)");
    CHECK_ERROR(keys + echo_models + "routing: {}\n",
                "routing.default_model: required");
    CHECK_ERROR(keys + echo_models + "routing:\n  default_model: gpt\n",
                "routing.default_model: unknown model \"gpt\" (models: echo)");
    auto chains = [](const std::string& body) {
      return echo_routing + "  fallback_chains:\n" + body;
    };
    CHECK_ERROR(keys + echo_models + chains("    main: [echo, ghost]\n"),
                "routing.fallback_chains.main[1]: unknown model \"ghost\" "
                "(models: echo)");
    CHECK_ERROR(keys + echo_models + chains("    main: []\n"),
                "routing.fallback_chains.main: must contain at least one "
                "model");
    CHECK_ERROR(keys + echo_models + chains("    echo: [echo]\n"),
                "routing.fallback_chains.echo: a chain must not have the name "
                "of a model");
    CHECK_ERROR(keys + echo_models + chains("    main: [echo, echo]\n"),
                "routing.fallback_chains.main[1]: model \"echo\" listed twice");
    CHECK_ERROR(keys + echo_models + chains("    main: echo\n"),
                "routing.fallback_chains.main: expected a list of models, got "
                "a scalar");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "  rules:\n    - match: {tag: pii}\n"
                    "      route_to_chain: nowhere\n",
                "routing.rules[0].route_to_chain: unknown chain \"nowhere\"");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "  rules:\n    - route_to_chain: x\n",
                "routing.rules[0].match: required");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "  rules:\n    - match: {label: pii}\n"
                    "      route_to_chain: x\n",
                "routing.rules[0].match.label: unknown key (allowed: tag)");
  }
  SECTION("health and rate_limit") {
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "health:\n  unhealthy_threshold: 0\n",
                "health.unhealthy_threshold: must be at least 1 (got 0)");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "rate_limit:\n  max_requests: 0\n",
                "rate_limit.max_requests: must be at least 1 (got 0)");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "rate_limit:\n  window_seconds: 0\n",
                "rate_limit.window_seconds: must be > 0 (got 0)");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "health:\n  cooldown_seconds: 4000000000\n",
                "health.cooldown_seconds: must be at most 100 years (got "
                "4000000000)");
  }
  SECTION("middleware and logging") {
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "middleware:\n  pre_request:\n    - config: {}\n",
                "middleware.pre_request[0].plugin: required");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "middleware:\n  pre_request:\n    - plugin: regex\n"
                    "      config: [1]\n",
                "middleware.pre_request[0].config: expected a mapping, got a "
                "list");
    CHECK_ERROR(keys + echo_models + echo_routing + "logging:\n  level: LOUD\n",
                "logging.level: expected one of debug, info, warning, error "
                "(got \"LOUD\")");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "logging:\n  format: text\n",
                "logging.format: only \"json\" is supported (got \"text\")");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "logging:\n  log_request_body: maybe\n",
                "logging.log_request_body: expected true or false (got "
                "\"maybe\")");
  }
}

TEST_CASE("health cooldown follows pw-router's rule") {
  auto load = [](const std::string& health) {
    auto cfg = load_config_text(keys + echo_models + echo_routing + health);
    REQUIRE(cfg);
    return cfg->health;
  };
  CHECK(load("health:\n  check_interval_seconds: 10\n").cooldown.count() == 10);
  CHECK(load("health:\n  check_interval_seconds: 0\n").cooldown.count() == 30);
  CHECK(load("health:\n  cooldown_seconds: -5\n").cooldown.count() == 30);
  CHECK(load("health:\n  cooldown_seconds: 4.5\n").cooldown.count() == 4.5);
}

TEST_CASE("extreme but meaningful values load, each with a warning") {
  // What pw-router accepts must load: only zero, negatives and wrong types
  // are refused; the extreme is loaded as given and said out loud.
  auto cfg = load_config_text(keys + echo_models + echo_routing
                              + "health:\n  unhealthy_threshold: 1000000\n"
                                "  cooldown_seconds: 172800\n");
  REQUIRE(cfg);
  CHECK(cfg->health.unhealthy_threshold == 1'000'000);
  CHECK(cfg->health.cooldown.count() == 172800);
  REQUIRE(cfg->warnings.size() == 2);
  CHECK(cfg->warnings[0]
        == "health.unhealthy_threshold: unusually large (1000000, more than "
           "1000); loaded as given");
  CHECK(cfg->warnings[1]
        == "health.cooldown_seconds: unusually long (172800 s, more than a "
           "day); loaded as given");
  auto usual = load_config_text(keys + echo_models + echo_routing
                                + "health:\n  unhealthy_threshold: 5\n");
  REQUIRE(usual);
  CHECK(usual->warnings.empty());
}

TEST_CASE("a rate_limit section turns the limit on with pw-router's "
          "defaults") {
  auto cfg
    = load_config_text(keys + echo_models + echo_routing + "rate_limit: {}\n");
  REQUIRE(cfg);
  CHECK(cfg->rate_limit.enabled);
  CHECK(cfg->rate_limit.max_requests == 60);
  CHECK(cfg->rate_limit.window.count() == 60);
}

TEST_CASE("base URLs parse into endpoints") {
  std::string why;
  auto ep = parse_base_url("https://api.example.com:8443/openai/v1/", why);
  REQUIRE(ep);
  CHECK(ep->tls);
  CHECK(ep->host == "api.example.com");
  CHECK(ep->port == 8443);
  CHECK(ep->base_path == "/openai/v1");
  CHECK(ep->origin() == "https://api.example.com:8443");
  CHECK(ep->host_header() == "api.example.com:8443");
  auto plain = parse_base_url("http://localhost", why);
  REQUIRE(plain);
  CHECK(plain->port == 80);
  CHECK(plain->base_path.empty());
  CHECK(plain->host_header() == "localhost");
  CHECK_FALSE(parse_base_url("http://", why));
  CHECK_FALSE(parse_base_url("http://host/v1?x=1", why));
  CHECK_FALSE(parse_base_url("http://[::1/v1", why));
  CHECK_FALSE(parse_base_url("http://host:abc", why));
}

TEST_CASE("a key stored as key_sha256 authenticates like the key itself") {
  auto cfg = load_config_text(
    "server:\n  api_keys:\n"
    "    - key_sha256: "
    "\"8254C329A92850F6D539DD376F4816EE2764517DA5E0235514AF433164480D7A\"\n"
    "      name: hashed\n      allowed_models: ['*']\n"
    + echo_models + echo_routing);
  REQUIRE(cfg);
  const auto& key = cfg->server.api_keys[0];
  CHECK(key.key.reveal().empty());
  CHECK(key.key_digest == sha256("k"));
}

TEST_CASE("admin keys, public metrics and inbound TLS are read from server") {
  auto cfg = load_config_text(
    "server:\n  metrics_public: true\n  health_details: public\n"
    "  tls: {cert_file: /etc/pw/cert.pem, key_file: /etc/pw/key.pem}\n"
    "  api_keys:\n"
    "    - {key: k1, name: ops, allowed_models: ['*'], admin: true}\n"
    "    - {key: k2, name: app, allowed_models: ['*']}\n"
    + echo_models + echo_routing);
  REQUIRE(cfg);
  CHECK(cfg->server.metrics_public);
  CHECK(cfg->server.health_details_public);
  CHECK(cfg->server.api_keys[0].admin);
  CHECK_FALSE(cfg->server.api_keys[1].admin);
  CHECK(cfg->server.tls.enabled());
  CHECK(cfg->server.tls.cert_file == "/etc/pw/cert.pem");
  CHECK(cfg->server.tls.min_version == 12);
  auto defaults = load_config_text(
    "server:\n  api_keys:\n    - {key: k, name: a, allowed_models: ['*']}\n"
    + echo_models + echo_routing);
  REQUIRE(defaults);
  CHECK_FALSE(defaults->server.metrics_public);
  CHECK_FALSE(defaults->server.health_details_public);
  CHECK_FALSE(defaults->server.tls.enabled());
  auto with_tls = [](const std::string& tls) {
    return "server:\n  tls: " + tls
           + "\n  api_keys:\n    - {key: k, name: a, allowed_models: ['*']}\n"
           + echo_models + echo_routing;
  };
  auto v13 = load_config_text(
    with_tls("{cert_file: c, key_file: k, min_version: \"1.3\"}"));
  REQUIRE(v13);
  CHECK(v13->server.tls.min_version == 13);
  CHECK_ERROR(with_tls("{cert_file: c, key_file: k, min_version: \"1.1\"}"),
              "server.tls.min_version: must be \"1.2\" or \"1.3\" (TLS 1.0 "
              "and 1.1 are never accepted) (got \"1.1\")");
  CHECK_ERROR(with_tls("{cert_file: c}"), "server.tls.key_file: required");
  CHECK_ERROR(with_tls("{cert_file: c, key_file: k, ciphers: x}"),
              "server.tls.ciphers: unknown key (allowed: cert_file, key_file, "
              "min_version)");
}

TEST_CASE("endpoints: what a model serves, chat by default") {
  auto cfg = load_config_text(keys + R"(models:
  echo:
    provider: echo
    endpoints: [chat, embeddings]
  embed:
    provider: vllm
    model: bge
    base_url: "http://127.0.0.1:9/v1"
    endpoints: [embeddings]
  claude:
    provider: anthropic
    model: claude-x
)" + echo_routing);
  REQUIRE(cfg);
  const auto& models = cfg->models;
  REQUIRE(models.size() == 3);
  CHECK(models[0]->endpoints.has(api_endpoint::chat));
  CHECK(models[0]->endpoints.has(api_endpoint::embeddings));
  CHECK_FALSE(models[1]->endpoints.has(api_endpoint::chat));
  CHECK(models[1]->endpoints.has(api_endpoint::embeddings));
  CHECK(models[2]->endpoints == endpoint_set{api_endpoint::chat});
  auto with = [](const std::string& provider, const std::string& list) {
    return keys + "models:\n  m:\n    provider: " + provider
           + "\n    model: x\n    endpoints: " + list
           + "\nrouting:\n  default_model: m\n";
  };
  // Counting tokens goes with the Messages API where the provider counts.
  auto served = [&](const std::string& provider) {
    auto c = load_config_text(
      keys + "models:\n  m:\n    provider: " + provider
      + (provider == "echo"
           ? std::string{}
           : "\n    model: x\n    base_url: \"http://127.0.0.1:9/v1\"")
      + "\n    endpoints: [messages]\nrouting:\n  default_model: m\n");
    REQUIRE(c);
    return c->models[0]->endpoints;
  };
  CHECK(served("anthropic")
        == endpoint_set{api_endpoint::messages, api_endpoint::count_tokens});
  CHECK(served("echo")
        == endpoint_set{api_endpoint::messages, api_endpoint::count_tokens});
  for (const auto* p : {"openai", "vllm", "ollama"})
    CHECK(served(p) == endpoint_set{api_endpoint::messages});
  CHECK_ERROR(with("anthropic", "[embeddings]"),
              "models.m.endpoints: the anthropic provider cannot serve "
              "\"embeddings\"");
  CHECK_ERROR(with("openai", "[chat, images]"),
              "models.m.endpoints: unknown endpoint \"images\" (known: chat, "
              "completions, embeddings, messages)");
  CHECK_ERROR(with("anthropic", "[completions]"),
              "models.m.endpoints: the anthropic provider cannot serve "
              "\"completions\"");
  CHECK_ERROR(with("anthropic", "[chat, count_tokens]"),
              "models.m.endpoints: unknown endpoint \"count_tokens\" (known: "
              "chat, completions, embeddings, messages)");
  CHECK_ERROR(with("openai", "[chat, chat]"),
              "models.m.endpoints: endpoint \"chat\" listed twice");
  CHECK_ERROR(with("openai", "[]"),
              "models.m.endpoints: must name at least one endpoint (chat, "
              "completions, embeddings, messages)");
  CHECK_ERROR(with("openai", "chat"), "models.m.endpoints: expected a list, "
                                      "got a scalar");
}

namespace {

/// `server.api_keys` with one entry (a flow mapping) per element.
std::string key_list(std::initializer_list<std::string> entries) {
  std::string out = "server:\n  api_keys:\n";
  for (const auto& e : entries)
    out += "    - " + e + "\n";
  return out;
}

bool has_warning(const gateway_config& cfg, const std::string& line) {
  return std::find(cfg.warnings.begin(), cfg.warnings.end(), line)
         != cfg.warnings.end();
}

const std::string all_limits
  = "requests_per_minute, tokens_per_minute, max_concurrent, "
    "tokens_per_day, tokens_per_month, budget_usd_per_month";

} // namespace

TEST_CASE("usage limits load for keys and teams") {
  auto cfg = load_config_text(R"(server:
  api_keys:
    - key: k1
      name: alice
      allowed_models: ["*"]
      team: red
      limits:
        requests_per_minute: 60
        tokens_per_minute: 100000
        max_concurrent: 4
        tokens_per_day: 1000000
        tokens_per_month: 20000000
        budget_usd_per_month: 12.5
    - {key: k2, name: bob, allowed_models: ["*"]}
    - {key: k3, name: carol, allowed_models: ["*"], team: red}
teams:
  red:
    limits: {tokens_per_day: 5000000, budget_usd_per_month: 10}
  blue:
    limits: {max_concurrent: 8}
)" + echo_models + echo_routing);
  REQUIRE(cfg);
  const auto& list = cfg->server.api_keys;
  REQUIRE(list.size() == 3);
  CHECK(list[0].team == "red");
  const auto& lim = list[0].limits;
  CHECK(lim.requests_per_minute == 60u);
  CHECK(lim.tokens_per_minute == 100'000u);
  CHECK(lim.max_concurrent == 4u);
  CHECK(lim.tokens_per_day == 1'000'000u);
  CHECK(lim.tokens_per_month == 20'000'000u);
  // USD in pico-USD: 12.5 * 10^12.
  CHECK(lim.budget_per_month == 12'500'000'000'000u);
  CHECK(lim.any());
  CHECK(list[1].team.empty());
  CHECK_FALSE(list[1].limits.any());
  CHECK(list[1].limits == usage_limits{});
  CHECK(list[2].team == "red");
  CHECK_FALSE(list[2].limits.any());
  REQUIRE(cfg->teams.size() == 2);
  CHECK(cfg->teams[0].name == "red"); // in config order
  CHECK(cfg->teams[1].name == "blue");
  const auto* red = cfg->find_team("red");
  REQUIRE(red != nullptr);
  CHECK(red->limits.tokens_per_day == 5'000'000u);
  CHECK(red->limits.budget_per_month == 10'000'000'000'000u);
  CHECK_FALSE(red->limits.requests_per_minute);
  CHECK_FALSE(red->limits.max_concurrent);
  REQUIRE(cfg->find_team("blue") != nullptr);
  CHECK(cfg->find_team("blue")->limits.max_concurrent == 8u);
  CHECK(cfg->find_team("green") == nullptr);
  CHECK(cfg->governed());
  // The echo model is free: a budget says nothing about it.
  CHECK(cfg->warnings.empty());
}

TEST_CASE("keys that share a name share their team and limits") {
  auto cfg = load_config_text(
    key_list({"{key: k1, name: a, allowed_models: ['*'], team: red, "
              "limits: {max_concurrent: 2}}",
              "{key: k2, name: a, allowed_models: ['*'], team: red, "
              "limits: {max_concurrent: 2}}"})
    + "teams:\n  red:\n    limits: {tokens_per_day: 100}\n" + echo_models
    + echo_routing);
  REQUIRE(cfg);
  CHECK(cfg->server.api_keys.size() == 2);
  CHECK(cfg->server.api_keys[0].limits == cfg->server.api_keys[1].limits);
}

TEST_CASE("governed(): whether any key or team has a usage limit") {
  auto plain = load_config_text(keys + echo_models + echo_routing);
  REQUIRE(plain);
  CHECK_FALSE(plain->governed());
  CHECK(plain->teams.empty());
  auto by_key
    = load_config_text(key_list({"{key: k, name: a, allowed_models: ['*'], "
                                 "limits: {requests_per_minute: 5}}"})
                       + echo_models + echo_routing);
  REQUIRE(by_key);
  CHECK(by_key->governed());
  // A team's limits govern even before a key names it.
  auto by_team = load_config_text(
    keys + "teams:\n  red:\n    limits: {tokens_per_month: 1000}\n"
    + echo_models + echo_routing);
  REQUIRE(by_team);
  CHECK(by_team->governed());
}

TEST_CASE("pricing is USD per million tokens, held in pico-USD per token") {
  auto cfg = load_config_text(keys + R"(models:
  gpt:
    provider: openai
    model: gpt-4o
    pricing: {input: 2.5, output: 10}
  mini:
    provider: openai
    model: gpt-4o-mini
    pricing: {input: 0.15, output: 0.6, cached_input: 0.075}
  echo:
    provider: echo
routing:
  default_model: gpt
)");
  REQUIRE(cfg);
  const auto& gpt = (*cfg->find_model("gpt"))->pricing;
  REQUIRE(gpt);
  CHECK(gpt->input == 2'500'000);
  CHECK(gpt->output == 10'000'000);
  CHECK(gpt->cached_input == 2'500'000); // defaults to input
  const auto& mini = (*cfg->find_model("mini"))->pricing;
  REQUIRE(mini);
  CHECK(mini->input == 150'000);
  CHECK(mini->output == 600'000);
  CHECK(mini->cached_input == 75'000);
  CHECK_FALSE((*cfg->find_model("echo"))->pricing);
  auto model = [](const std::string& pricing) {
    return keys + "models:\n  m:\n    provider: openai\n    model: x\n"
           + "    pricing: " + pricing + "\nrouting:\n  default_model: m\n";
  };
  CHECK_ERROR(model("{input: 1}"),
              "models.m.pricing.output: required (USD per million tokens)");
  CHECK_ERROR(model("{output: 1}"),
              "models.m.pricing.input: required (USD per million tokens)");
  CHECK_ERROR(model("{input: -1, output: 1}"),
              "models.m.pricing.input: expected a number >= 0 (got \"-1\")");
  CHECK_ERROR(model("{input: cheap, output: 1}"),
              "models.m.pricing.input: expected a number (got \"cheap\")");
  CHECK_ERROR(model("{input: 1, output: 1, currency: EUR}"),
              "models.m.pricing.currency: unknown key (allowed: input, "
              "output, cached_input)");
  CHECK_ERROR(model("2.5"),
              "models.m.pricing: expected a mapping, got a scalar");
}

TEST_CASE("a budget with a model without pricing loads with a warning") {
  auto config = [](const std::string& limits, const std::string& pricing) {
    return key_list({"{key: k, name: a, allowed_models: ['*'], limits: "
                     + limits + "}"})
           + "models:\n  gpt:\n    provider: openai\n    model: x\n" + pricing
           + "  echo:\n    provider: echo\nrouting:\n  default_model: gpt\n";
  };
  const std::string warning = "models.gpt: no pricing: its tokens cost "
                              "nothing against budget_usd_per_month";
  auto cfg = load_config_text(config("{budget_usd_per_month: 10}", ""));
  REQUIRE(cfg);
  CHECK(has_warning(*cfg, warning));
  // The echo model costs nothing anyway: no warning for it.
  for (const auto& w : cfg->warnings)
    CHECK_FALSE(w.starts_with("models.echo"));
  // A team's budget counts too.
  auto team = load_config_text(
    key_list({"{key: k, name: a, allowed_models: ['*'], team: red}"})
    + "teams:\n  red:\n    limits: {budget_usd_per_month: 1}\n"
    + "models:\n  gpt:\n    provider: openai\n    model: x\n"
    + "routing:\n  default_model: gpt\n");
  REQUIRE(team);
  CHECK(has_warning(*team, warning));
  // Without a budget, or with a price, nothing to say.
  auto no_budget = load_config_text(config("{tokens_per_day: 10}", ""));
  REQUIRE(no_budget);
  CHECK_FALSE(has_warning(*no_budget, warning));
  auto priced = load_config_text(config(
    "{budget_usd_per_month: 10}", "    pricing: {input: 1, output: 2}\n"));
  REQUIRE(priced);
  CHECK(priced->warnings.empty());
}

TEST_CASE("state: embedded by default, or redis with its connection") {
  auto defaults = load_config_text(keys + echo_models + echo_routing);
  REQUIRE(defaults);
  CHECK(defaults->state.backend == state_backend::embedded);
  CHECK(defaults->state.path.empty());
  CHECK_FALSE(defaults->state.allow_when_unavailable);
  CHECK(defaults->state.journal_interval.count() == 1);
  auto embedded = load_config_text(
    keys + echo_models + echo_routing
    + "state:\n  path: /var/lib/pw/usage.json\n"
      "  journal_interval_seconds: 5\n  on_unavailable: deny\n");
  REQUIRE(embedded);
  CHECK(embedded->state.backend == state_backend::embedded);
  CHECK(embedded->state.path == "/var/lib/pw/usage.json");
  CHECK(embedded->state.journal_interval.count() == 5);
  CHECK_FALSE(embedded->state.allow_when_unavailable);
  auto redis = load_config_text(keys + echo_models + echo_routing + R"(state:
  backend: redis
  on_unavailable: allow
  redis:
    host: redis.internal
    port: 6380
    db: 2
    password: s3cret
    key_prefix: gw
    timeout_ms: 100
)");
  REQUIRE(redis);
  const auto& s = redis->state;
  CHECK(s.backend == state_backend::redis);
  CHECK(s.allow_when_unavailable);
  CHECK(s.redis.host == "redis.internal");
  CHECK(s.redis.port == 6380);
  CHECK(s.redis.db == 2);
  CHECK(s.redis.password.reveal() == "s3cret");
  CHECK(to_string(s.redis.password) == "***");
  CHECK(s.redis.key_prefix == "gw");
  CHECK(s.redis.timeout == std::chrono::milliseconds{100});
  auto redis_defaults = load_config_text(keys + echo_models + echo_routing
                                         + "state:\n  backend: redis\n"
                                           "  redis: {}\n");
  REQUIRE(redis_defaults);
  CHECK(redis_defaults->state.redis.host == "127.0.0.1");
  CHECK(redis_defaults->state.redis.port == 6379);
  CHECK(redis_defaults->state.redis.key_prefix == "pw-router");
  CHECK(redis_defaults->state.redis.timeout == std::chrono::milliseconds{250});
}

TEST_CASE("invalid limits, teams and state are refused with their YAML "
          "path") {
  auto entry = [](const std::string& extra) {
    return key_list({"{key: k, name: a, allowed_models: ['*'], " + extra + "}"})
           + echo_models + echo_routing;
  };
  SECTION("limits") {
    CHECK_ERROR(entry("limits: {rpm: 5}"),
                "server.api_keys[0].limits.rpm: unknown key (allowed: "
                  + all_limits + ")");
    CHECK_ERROR(entry("limits: {}"),
                "server.api_keys[0].limits: sets no limit (remove it, or set "
                "requests_per_minute, tokens_per_minute, max_concurrent, "
                "tokens_per_day, tokens_per_month or budget_usd_per_month)");
    CHECK_ERROR(entry("limits: {requests_per_minute: 0}"),
                "server.api_keys[0].limits.requests_per_minute: must be at "
                "least 1 (got 0)");
    CHECK_ERROR(entry("limits: {tokens_per_day: 0, max_concurrent: 2}"),
                "server.api_keys[0].limits.tokens_per_day: must be at least 1 "
                "(got 0)");
    CHECK_ERROR(entry("limits: {max_concurrent: -1}"),
                "server.api_keys[0].limits.max_concurrent: must be at least 1 "
                "(got -1)");
    CHECK_ERROR(entry("limits: {tokens_per_month: lots}"),
                "server.api_keys[0].limits.tokens_per_month: expected an "
                "integer (got \"lots\")");
    CHECK_ERROR(entry("limits: {budget_usd_per_month: -1}"),
                "server.api_keys[0].limits.budget_usd_per_month: expected a "
                "number >= 0 (got \"-1\")");
    auto huge = errors_of(entry("limits: {budget_usd_per_month: 20000000}"));
    CHECK(huge.find("server.api_keys[0].limits.budget_usd_per_month: must be "
                    "at most ")
          != std::string::npos);
    CHECK_ERROR(entry("limits: 5"),
                "server.api_keys[0].limits: expected a mapping, got a scalar");
  }
  SECTION("teams") {
    CHECK_ERROR(entry("team: ghost"),
                "server.api_keys[0].team: unknown team \"ghost\" (define it "
                "under teams)");
    // The index is the key's own.
    CHECK_ERROR(key_list({"{key: k1, name: a, allowed_models: ['*']}",
                          "{key: k2, name: b, allowed_models: ['*'], "
                          "team: ghost}"})
                  + "teams:\n  red:\n    limits: {max_concurrent: 1}\n"
                  + echo_models + echo_routing,
                "server.api_keys[1].team: unknown team \"ghost\" (define it "
                "under teams)");
    CHECK_ERROR(keys + echo_models + echo_routing + "teams:\n  red: {}\n",
                "teams.red.limits: required");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "teams:\n  red:\n    limits: {}\n",
                "teams.red.limits: sets no limit (remove it, or set "
                "requests_per_minute, tokens_per_minute, max_concurrent, "
                "tokens_per_day, tokens_per_month or budget_usd_per_month)");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "teams:\n  red:\n    limits: {max_concurrent: 1}\n"
                    "    members: [a]\n",
                "teams.red.members: unknown key (allowed: limits)");
    CHECK_ERROR(keys + echo_models + echo_routing
                  + "teams:\n  red:\n    limits: {max_concurrent: 0}\n",
                "teams.red.limits.max_concurrent: must be at least 1 (got 0)");
    CHECK_ERROR(keys + echo_models + echo_routing + "teams: [red]\n",
                "teams: expected a mapping, got a list");
  }
  SECTION("keys with the same name but different limits or teams") {
    CHECK_ERROR(key_list({"{key: k1, name: a, allowed_models: ['*'], "
                          "limits: {max_concurrent: 1}}",
                          "{key: k2, name: a, allowed_models: ['*'], "
                          "limits: {max_concurrent: 2}}"})
                  + echo_models + echo_routing,
                "server.api_keys[1]: keys named \"a\" must have the same team "
                "and limits (see server.api_keys[0])");
    CHECK_ERROR(key_list({"{key: k1, name: a, allowed_models: ['*'], "
                          "limits: {max_concurrent: 1}}",
                          "{key: k2, name: a, allowed_models: ['*']}"})
                  + echo_models + echo_routing,
                "server.api_keys[1]: keys named \"a\" must have the same team "
                "and limits (see server.api_keys[0])");
    CHECK_ERROR(key_list({"{key: k1, name: a, allowed_models: ['*'], "
                          "team: red}",
                          "{key: k2, name: a, allowed_models: ['*']}"})
                  + "teams:\n  red:\n    limits: {max_concurrent: 1}\n"
                  + echo_models + echo_routing,
                "server.api_keys[1]: keys named \"a\" must have the same team "
                "and limits (see server.api_keys[0])");
  }
  SECTION("state") {
    auto state = [](const std::string& body) {
      return keys + echo_models + echo_routing + "state: " + body + "\n";
    };
    CHECK_ERROR(state("{backend: redis}"),
                "state.redis: required with backend: redis");
    CHECK_ERROR(state("{redis: {host: r}}"),
                "state.redis: set, but backend is not redis");
    CHECK_ERROR(state("{backend: embedded, redis: {host: r}}"),
                "state.redis: set, but backend is not redis");
    CHECK_ERROR(state("{on_unavailable: maybe}"),
                "state.on_unavailable: expected deny or allow (got "
                "\"maybe\")");
    CHECK_ERROR(state("{backend: etcd}"),
                "state.backend: expected embedded or redis (got \"etcd\")");
    CHECK_ERROR(state("{file: x}"),
                "state.file: unknown key (allowed: backend, path, "
                "on_unavailable, journal_interval_seconds, redis)");
    CHECK_ERROR(state("{journal_interval_seconds: 0}"),
                "state.journal_interval_seconds: must be > 0 (got 0)");
    CHECK_ERROR(state("{backend: redis, redis: {port: 0}}"),
                "state.redis.port: must be at least 1 (got 0)");
    CHECK_ERROR(state("{backend: redis, redis: {user: x}}"),
                "state.redis.user: unknown key (allowed: host, port, db, "
                "password, key_prefix, timeout_ms)");
    CHECK_ERROR(state("[embedded]"), "state: expected a mapping, got a list");
  }
}
