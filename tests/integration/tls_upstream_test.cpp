// Outbound HTTPS: SNI, certificate and host name verification on by default.

#include "tests/integration/common.hpp"

using namespace pw::test;

namespace {

const std::string tls_dir = std::string{PW_TEST_DATA_DIR} + "/tls/";

tls_files cert(const std::string& name) {
  return {tls_dir + name + ".pem", tls_dir + name + ".key"};
}

std::string tls_model(const std::string& base_url, bool with_ca) {
  return openai_model("secure", base_url,
                      with_ca ? "    ca_file: \"" + tls_dir + "ca.pem\"\n"
                              : std::string{});
}

http_response ask(const gateway_process& gw) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      chat_body("secure"), auth_json(full_key));
}

} // namespace

TEST_CASE("an HTTPS upstream with a trusted certificate is called with SNI") {
  fake_upstream upstream{answer_ok("over tls"), cert("localhost")};
  gateway_process gw{make_config(
    tls_model(upstream.base_url("localhost") + "/v1", true), "secure")};
  auto res = ask(gw);
  REQUIRE(res.status == 200);
  CHECK(res.json()["choices"][0]["message"]["content"] == "over tls");
  REQUIRE(upstream.requests().size() == 1);
  CHECK(upstream.requests()[0].sni == "localhost");
  CHECK(upstream.requests()[0].headers["authorization"]
        == "Bearer " + upstream_key);
  // Keep-alive works over TLS too.
  REQUIRE(ask(gw).status == 200);
}

TEST_CASE("an IP-address upstream is verified against the certificate's IP "
          "names") {
  fake_upstream upstream{answer_ok(), cert("localhost")};
  gateway_process gw{make_config(
    tls_model(upstream.base_url("127.0.0.1") + "/v1", true), "secure")};
  REQUIRE(ask(gw).status == 200);
  CHECK(upstream.requests()[0].sni.empty());
}

TEST_CASE("an untrusted certificate fails with 502 and reaches no "
          "application") {
  fake_upstream upstream{answer_ok(), cert("localhost")};
  gateway_process gw{make_config(
    tls_model(upstream.base_url("localhost") + "/v1", false), "secure")};
  auto res = ask(gw);
  CHECK(res.status == 502);
  CHECK(error_of(res)["message"].get<std::string>().find(
          "certificate verify failed")
        != std::string::npos);
  CHECK(upstream.requests().empty());
}

TEST_CASE("a certificate for another host name fails with 502") {
  fake_upstream upstream{answer_ok(), cert("wrong-host")};
  gateway_process gw{make_config(
    tls_model(upstream.base_url("localhost") + "/v1", true), "secure")};
  auto res = ask(gw);
  CHECK(res.status == 502);
  CHECK(error_of(res)["code"] == "upstream_failed");
  CHECK(upstream.requests().empty());
}

TEST_CASE("without ca_file the system CA store decides, as OpenSSL's "
          "SSL_CERT_FILE points it") {
  fake_upstream upstream{answer_ok("system store"), cert("localhost")};
  auto config = make_config(
    tls_model(upstream.base_url("localhost") + "/v1", false), "secure");
  // OpenSSL's default paths honour SSL_CERT_FILE: with the test CA there,
  // the same upstream that fails without it is trusted.
  gateway_process gw{config, {{"SSL_CERT_FILE", tls_dir + "ca.pem"}}};
  auto res = ask(gw);
  REQUIRE(res.status == 200);
  CHECK(res.json()["choices"][0]["message"]["content"] == "system store");
  CHECK(upstream.requests().size() == 1);
}
