// Inbound TLS through the real binary: certificates made at test time by a
// test CA, TLS 1.2+ only, plain HTTP on the TLS port refused, certificate
// rotation on SIGHUP, and a bad new pair rejected while the old one serves.

#include "tests/integration/common.hpp"
#include "tests/support/tls_kit.hpp"

#include <openssl/ssl.h>

#include <csignal>
#include <filesystem>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

std::string tls_server(const std::string& cert, const std::string& key,
                       const std::string& more = "") {
  return "  tls:\n    cert_file: \"" + cert + "\"\n    key_file: \"" + key
         + "\"\n" + more;
}

http_response live(const gateway_process& gw, const tls_client_options& o) {
  return https_request(gw.port(), o, "GET", "/health/live");
}

tls_client_options trusting(const test_pki& pki, int min = 0, int max = 0) {
  tls_client_options o;
  o.ca_file = pki.ca_cert;
  o.min_version = min;
  o.max_version = max;
  return o;
}

} // namespace

TEST_CASE("inbound TLS serves clients that trust its CA, TLS 1.2 and up") {
  auto pki = make_test_pki("inbound");
  gateway_process gw{make_config(echo_model, "echo",
                                 tls_server(pki.server_cert, pki.server_key))};
  CHECK(gw.output().find("\"subject\":\"/CN=localhost\"") != std::string::npos);
  auto res = live(gw, trusting(pki));
  INFO(res.body);
  REQUIRE(res.status == 200);
  CHECK(res.header("x-test-tls-version") == "TLSv1.3");
  // A chat answer over TLS, whole and streamed.
  auto chat
    = https_request(gw.port(), trusting(pki), "POST", "/v1/chat/completions",
                    chat_body("echo", "hi tls"), auth_json(full_key));
  REQUIRE(chat.status == 200);
  CHECK(chat.json()["choices"][0]["message"]["content"].get<std::string>().find(
          "hi tls")
        != std::string::npos);
  CHECK_FALSE(chat.header("x-gateway-overhead-us").empty());
  auto streamed = https_request(
    gw.port(), trusting(pki), "POST", "/v1/chat/completions",
    R"({"model":"echo","stream":true,"messages":[{"role":"user","content":"s"}]})",
    auth_json(full_key));
  REQUIRE(streamed.status == 200);
  CHECK(streamed.header("content-type") == "text/event-stream");
  CHECK(streamed.body.find("data: [DONE]") != std::string::npos);
  // TLS 1.2 is accepted; 1.1 and 1.0 are refused in the handshake.
  auto v12 = live(gw, trusting(pki, TLS1_2_VERSION, TLS1_2_VERSION));
  CHECK(v12.status == 200);
  CHECK(v12.header("x-test-tls-version") == "TLSv1.2");
  for (int old : {TLS1_1_VERSION, TLS1_VERSION}) {
    auto refused = live(gw, trusting(pki, old, old));
    INFO(refused.body);
    CHECK(refused.status == 0);
    // The server's answer: a protocol_version alert.
    CHECK(refused.body.find("protocol version") != std::string::npos);
  }
  // A client that does not trust the CA stops at the certificate.
  auto other = make_test_pki("other");
  auto untrusted = live(gw, trusting(other));
  CHECK(untrusted.status == 0);
  CHECK(untrusted.body.find("certificate verify failed") != std::string::npos);
  // Plain HTTP on the TLS port gets no HTTP answer, and the gateway says
  // why in one log line.
  {
    raw_connection conn{gw.port()};
    REQUIRE(conn.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
    bool closed = false;
    auto raw = conn.read_until_close(5s, closed);
    CHECK(closed);
    CHECK(raw.find("HTTP/1.1") == std::string::npos);
  }
  CHECK(gw.wait_for_output("\"error\":\"http request (SSL routines)\""));
  CHECK(gw.running());
  std::filesystem::remove_all(pki.dir);
  std::filesystem::remove_all(other.dir);
}

TEST_CASE("server.tls.min_version 1.3 refuses TLS 1.2") {
  auto pki = make_test_pki("tls13");
  gateway_process gw{make_config(
    echo_model, "echo",
    tls_server(pki.server_cert, pki.server_key, "    min_version: \"1.3\"\n"))};
  CHECK(live(gw, trusting(pki)).status == 200);
  auto v12 = live(gw, trusting(pki, TLS1_2_VERSION, TLS1_2_VERSION));
  CHECK(v12.status == 0);
  CHECK(v12.body.find("protocol version") != std::string::npos);
  std::filesystem::remove_all(pki.dir);
}

TEST_CASE("SIGHUP loads a new certificate, a broken one is rejected and the "
          "old one keeps serving") {
  auto first = make_test_pki("first");
  auto second = make_test_pki("second");
  // The config names fixed paths; rotation replaces the files behind them.
  auto dir = std::filesystem::path{first.dir} / "live";
  std::filesystem::create_directory(dir);
  auto cert = (dir / "cert.pem").string();
  auto key = (dir / "key.pem").string();
  auto install = [&](const test_pki& pki) {
    using std::filesystem::copy_options;
    std::filesystem::copy_file(pki.server_cert, cert,
                               copy_options::overwrite_existing);
    std::filesystem::copy_file(pki.server_key, key,
                               copy_options::overwrite_existing);
  };
  install(first);
  gateway_process gw{make_config(echo_model, "echo", tls_server(cert, key))};
  REQUIRE(live(gw, trusting(first)).status == 200);
  CHECK(live(gw, trusting(second)).status == 0);
  install(second);
  gw.signal(SIGHUP);
  REQUIRE(gw.wait_for_output("\"event\":\"tls_reloaded\""));
  REQUIRE(gw.wait_for_output("\"event\":\"config_reloaded\""));
  CHECK(live(gw, trusting(second)).status == 200);
  CHECK(live(gw, trusting(first)).status == 0);
  // A key that does not match the certificate: the reload is refused with
  // the reason, and the second certificate keeps serving.
  std::filesystem::copy_file(first.server_key, key,
                             std::filesystem::copy_options::overwrite_existing);
  gw.signal(SIGHUP);
  REQUIRE(gw.wait_for_output("\"event\":\"reload_rejected\""));
  CHECK(gw.output().find("key_file does not match cert_file")
        != std::string::npos);
  CHECK(live(gw, trusting(second)).status == 200);
  std::filesystem::remove_all(first.dir);
  std::filesystem::remove_all(second.dir);
}

TEST_CASE("check-config reads the TLS files and names what is wrong") {
  auto pki = make_test_pki("check");
  auto other = make_test_pki("check-other");
  auto good = write_temp_file(make_config(
    echo_model, "echo", tls_server(pki.server_cert, pki.server_key)));
  CHECK(run_pw_router({"--check-config", good}).exit_code == 0);
  auto mismatched = write_temp_file(make_config(
    echo_model, "echo", tls_server(pki.server_cert, other.server_key)));
  auto r = run_pw_router({"--check-config", mismatched});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("server.tls: key_file does not match cert_file")
        != std::string::npos);
  auto missing = write_temp_file(make_config(
    echo_model, "echo", tls_server(pki.dir + "/nope.pem", pki.server_key)));
  auto m = run_pw_router({"--check-config", missing});
  CHECK(m.exit_code == 2);
  CHECK(m.err.find("server.tls: cert_file '" + pki.dir
                   + "/nope.pem' cannot be read: No such file or directory")
        != std::string::npos);
  // A key that is not a key (here: a certificate).
  auto not_a_key = write_temp_file(make_config(
    echo_model, "echo", tls_server(pki.server_cert, pki.server_cert)));
  auto k = run_pw_router({"--check-config", not_a_key});
  CHECK(k.exit_code == 2);
  CHECK(k.err.find("server.tls: key_file '" + pki.server_cert
                   + "' is not an unencrypted PEM private key")
        != std::string::npos);
  std::filesystem::remove_all(pki.dir);
  std::filesystem::remove_all(other.dir);
}

TEST_CASE("a TLS client that leaves mid-stream with close_notify cancels the "
          "upstream at once") {
  auto pki = make_test_pki("leave");
  // 200 events 100 ms apart: 20 s unless the gateway notices the client.
  fake_upstream upstream{[](const fake_request&) {
    fake_response r;
    r.content_type = "text/event-stream";
    r.chunks = openai_stream(std::vector<std::string>(200, "tok"), 100ms);
    return r;
  }};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m",
                                 tls_server(pki.server_cert, pki.server_key))};
  tls_connection conn{gw.port(), trusting(pki)};
  std::string body = R"({"model":"m","stream":true,"messages":)"
                     R"([{"role":"user","content":"hi"}]})";
  REQUIRE(conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                    "Authorization: Bearer "
                    + full_key + "\r\nContent-Length: "
                    + std::to_string(body.size()) + "\r\n\r\n" + body));
  REQUIRE(conn.read_until("\"tok\"", 10s).find("\"tok\"") != std::string::npos);
  // close_notify and FIN; the socket stays open and unread, so no reset
  // and no failed write tells the gateway: only the FIN does.
  conn.leave();
  CHECK(upstream.wait_for_cut(1s));
  CHECK(gw.wait_for_output("\"error\":\"client_closed\""));
  std::filesystem::remove_all(pki.dir);
}

TEST_CASE("a TLS client that leaves a whole answer with close_notify cuts "
          "the upstream at once") {
  auto pki = make_test_pki("leave-whole");
  fake_upstream upstream{[](const fake_request& req) {
    auto r = answer_ok()(req);
    r.delay = 30s; // a whole answer, 30 s away
    return r;
  }};
  gateway_process gw{make_config(openai_model("m", upstream.base_url()), "m",
                                 tls_server(pki.server_cert, pki.server_key))};
  tls_connection conn{gw.port(), trusting(pki)};
  auto body = chat_body("m");
  REQUIRE(conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                    "Authorization: Bearer "
                    + full_key + "\r\nContent-Length: "
                    + std::to_string(body.size()) + "\r\n\r\n" + body));
  REQUIRE(upstream.wait_for_requests(1, 10s));
  // close_notify and FIN, the socket left open: only the FIN tells.
  conn.leave();
  CHECK(upstream.wait_for_cut(5s));
  CHECK(gw.wait_for_output("\"status\":499"));
  auto health = https_request(gw.port(), trusting(pki), "GET", "/health", "",
                              {{"Authorization", "Bearer " + admin_key}})
                  .json();
  CHECK(health["models"]["m"]["in_flight"] == 0);
  CHECK(health["models"]["m"]["failures"] == 0);
  std::filesystem::remove_all(pki.dir);
}
