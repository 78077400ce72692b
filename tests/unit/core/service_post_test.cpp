// The POST pw-router sends to a service of its own (decision service,
// witness, trace collector): one Content-Type, the configured headers,
// the timeout everywhere.

#include "core/request/service_post.hpp"

#include <catch2/catch.hpp>

using namespace pw;

TEST_CASE("service_post: one Content-Type, then the configured headers",
          "[service_post]") {
  service_target to;
  to.target.host = "collector.example";
  to.target.port = 4318;
  to.target.tls = true;
  to.path = "/v1/traces";
  to.ca_file = "/etc/ca.pem";
  to.timeout = std::chrono::milliseconds{750};
  to.headers = {{"content-TYPE", "text/plain"},
                {"Authorization", "Bearer k"},
                {"X-Tenant", "t1"}};
  auto req = service_post(to, R"({"a":1})");
  CHECK(req.method == "POST");
  CHECK(req.path == "/v1/traces");
  CHECK(req.target.host == "collector.example");
  CHECK(req.ca_file == "/etc/ca.pem");
  CHECK(req.body == R"({"a":1})");
  REQUIRE(req.headers.size() == 3);
  CHECK(req.headers[0].name == "Content-Type");
  CHECK(req.headers[0].value == "application/json");
  CHECK(req.headers[1].name == "Authorization");
  CHECK(req.headers[2].name == "X-Tenant");
  CHECK(req.connect_timeout == std::chrono::milliseconds{750});
  CHECK(req.first_byte_timeout == std::chrono::milliseconds{750});
  CHECK(req.timeout == std::chrono::milliseconds{750});
  CHECK_FALSE(req.stream);
}
