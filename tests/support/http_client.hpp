#pragma once

// Blocking clients for integration tests: an HTTP/1.1 keep-alive client
// (Beast) and a raw socket for hostile or slow input. Every read is bounded
// by a socket timeout, so a test can fail but never hang.

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pw::test {

struct http_response {
  unsigned status = 0;
  /// Header names lower-cased.
  std::map<std::string, std::string> headers;
  std::string body;
  bool keep_alive = false;

  [[nodiscard]] nlohmann::json json() const;

  [[nodiscard]] std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One keep-alive connection to 127.0.0.1:port.
class http_client {
public:
  explicit http_client(uint16_t port, std::chrono::milliseconds timeout
                                      = std::chrono::seconds{30});
  ~http_client();

  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Sends one request and reads the response. Throws on transport errors.
  http_response request(const std::string& method, const std::string& target,
                        const std::string& body = {},
                        const header_list& headers = {});

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// One request on a fresh connection.
http_response http_request(uint16_t port, const std::string& method,
                           const std::string& target,
                           const std::string& body = {},
                           const header_list& headers = {});

/// Headers for an authenticated JSON request with `key`.
header_list auth_json(const std::string& key);

/// A raw TCP connection for bytes the HTTP client would never send.
class raw_connection {
public:
  explicit raw_connection(uint16_t port);
  ~raw_connection();

  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  /// Sends bytes; false if the peer has closed.
  bool send(const std::string& bytes);

  /// Reads until the peer closes the connection or `timeout` passes.
  /// Returns what arrived; `closed` says whether the peer closed.
  std::string read_until_close(std::chrono::milliseconds timeout, bool& closed);

  /// Reads until `text` arrived, the peer closed or `timeout` passed.
  std::string read_until(const std::string& text,
                         std::chrono::milliseconds timeout);

private:
  int fd_ = -1;
};

} // namespace pw::test
