#pragma once

// TLS for integration tests: a certificate authority and a server
// certificate made at test time with OpenSSL, and an HTTPS client whose
// protocol versions and trust anchor the test chooses.

#include "tests/support/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace pw::test {

/// PEM files in a fresh directory under /tmp: a CA, and a certificate for
/// localhost and 127.0.0.1 that it signed.
struct test_pki {
  std::string dir;
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
};

/// Makes a new CA named `name` and a server certificate signed by it.
test_pki make_test_pki(const std::string& name);

struct tls_client_options {
  /// The CA the client trusts (the server's certificate is verified).
  std::string ca_file;
  /// SNI and the name verified against the certificate.
  std::string host = "localhost";
  /// Protocol bounds, e.g. TLS1_1_VERSION; 0 = OpenSSL's defaults.
  int min_version = 0;
  int max_version = 0;
};

/// One request over TLS on a new connection to 127.0.0.1:port, within
/// 10 s. A failed handshake gives status 0 and the reason in `body`; the
/// negotiated protocol ("TLSv1.3") is in the `x-test-tls-version` header.
http_response https_request(uint16_t port, const tls_client_options& opts,
                            const std::string& method,
                            const std::string& target,
                            const std::string& body = {},
                            const header_list& headers = {});

/// A blocking TLS connection for tests that need to leave mid-answer
/// (every read bounded by its timeout).
class tls_connection {
public:
  /// Connects and completes the handshake; throws on failure.
  tls_connection(uint16_t port, const tls_client_options& opts);
  ~tls_connection();

  tls_connection(const tls_connection&) = delete;
  tls_connection& operator=(const tls_connection&) = delete;

  bool send(const std::string& bytes);

  /// Reads until `text` arrived, the peer closed or `timeout` passed.
  std::string read_until(const std::string& text,
                         std::chrono::milliseconds timeout);

  /// Leaves as a well-behaved client does: close_notify, then FIN. The
  /// socket stays open (without reading) until destruction, so the peer
  /// sees no reset.
  void leave();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace pw::test
