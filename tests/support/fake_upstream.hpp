#pragma once

// A scriptable upstream for integration tests (Envoy's FakeUpstream,
// userver's HttpServerMock): serves HTTP/1.1 (optionally TLS) on
// 127.0.0.1:0 from a handler function, records every request, and can
// stall, delay or drop connections. Runs on its own thread.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace pw::test {

struct fake_request {
  std::string method;
  std::string target;
  /// Header names lower-cased; a repeated header's values joined by ", ".
  std::map<std::string, std::string> headers;
  std::string body;
  /// The TLS server name (SNI) the client sent, empty for plain HTTP.
  std::string sni;
  /// Which accepted connection (0, 1, ...) carried this request.
  size_t connection = 0;

  [[nodiscard]] bool has_header(const std::string& lower_name) const {
    return headers.count(lower_name) > 0;
  }
};

/// One piece of a streamed (chunked) answer, written after `delay`.
struct fake_chunk {
  std::chrono::milliseconds delay{0};
  std::string data;
};

struct fake_response {
  unsigned status = 200;
  std::string body = "{}";
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  /// Wait this long before answering (a gateway that closes the
  /// connection meanwhile counts as a cut).
  std::chrono::milliseconds delay{0};
  /// Close the connection without answering.
  bool drop = false;
  /// Raw bytes written before the response (e.g. an interim 1xx answer).
  std::string interim;
  /// When set, these bytes are written instead of any HTTP response, and
  /// the connection is closed (garbage, a cut-off answer).
  std::optional<std::string> raw;
  /// When set, the body is sent chunked, piece by piece (`body` unused).
  std::vector<fake_chunk> chunks;
  /// Streams only: false closes the connection after the chunks, without
  /// ending the body (a stream that breaks off).
  bool finish = true;
  /// Streams only: after the chunks, keep the connection open this long
  /// without sending anything (a stalled stream).
  std::chrono::milliseconds stall{0};
};

using fake_handler = std::function<fake_response(const fake_request&)>;

struct tls_files {
  std::string cert_chain;
  std::string private_key;
};

class fake_upstream {
public:
  explicit fake_upstream(fake_handler handler,
                         std::optional<tls_files> tls = std::nullopt);
  ~fake_upstream();

  fake_upstream(const fake_upstream&) = delete;
  fake_upstream& operator=(const fake_upstream&) = delete;

  [[nodiscard]] uint16_t port() const;

  /// "http://127.0.0.1:PORT" (or https with the given host name).
  [[nodiscard]] std::string base_url(const std::string& host
                                     = "127.0.0.1") const;

  /// Copies of every request received so far.
  [[nodiscard]] std::vector<fake_request> requests() const;

  /// Blocks until at least `n` requests arrived or `timeout` passed.
  bool wait_for_requests(size_t n, std::chrono::milliseconds timeout
                                   = std::chrono::seconds{10}) const;

  /// Connections accepted so far.
  [[nodiscard]] size_t connections_opened() const;

  /// Blocks until the gateway closed a connection while an answer was on
  /// its way (during the `delay` of a whole answer, or in the middle of a
  /// streamed one), or `timeout` passed.
  bool wait_for_cut(std::chrono::milliseconds timeout) const;

  /// Replaces the handler (thread-safe).
  void set_handler(fake_handler handler);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// An SSE event: "data: <json>\n\n" (or with an `event:` line).
std::string sse(const std::string& data, const std::string& event = "");

/// The chunks of an OpenAI stream that says `pieces`, then [DONE].
std::vector<fake_chunk> openai_stream(const std::vector<std::string>& pieces,
                                      std::chrono::milliseconds gap
                                      = std::chrono::milliseconds{0});

/// The chunks of an Anthropic Messages stream that says `pieces`.
std::vector<fake_chunk> anthropic_stream(const std::vector<std::string>& pieces,
                                         std::chrono::milliseconds gap
                                         = std::chrono::milliseconds{0});

/// A chat.completion body as an OpenAI-compatible server returns it.
std::string openai_completion(const std::string& model,
                              const std::string& content);

} // namespace pw::test
