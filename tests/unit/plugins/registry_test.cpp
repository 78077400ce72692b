#include "plugins/plugin.hpp"

#include <catch2/catch.hpp>

using namespace pw;

TEST_CASE("middleware entries must name a built-in plugin") {
  gateway_config cfg;
  CHECK(plugins::check_middleware(cfg).empty());
  plugin_entry python;
  python.plugin = "plugins.example_redact";
  python.path = "middleware.pre_request[0]";
  cfg.middleware.pre_request.push_back(python);
  plugin_entry nonsense;
  nonsense.plugin = "nonsense";
  nonsense.path = "middleware.post_response[0]";
  cfg.middleware.post_response.push_back(nonsense);
  auto errors = plugins::check_middleware(cfg);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].starts_with("middleware.pre_request[0].plugin: unknown "
                              "plugin 'plugins.example_redact' (pw-router's "
                              "Python plugin modules do not run here"));
  CHECK(errors[1].starts_with("middleware.post_response[0].plugin: unknown "
                              "plugin 'nonsense'"));
}
