#pragma once

// The outbound HTTP/1.1 client of one io thread: a keep-alive connection
// pool per origin, TLS with SNI and certificate verification, and a total
// timeout per exchange. One instance per io thread; never shared.

#include "core/request/exchange.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pw::http {

class downstream_sink;

class upstream_pool {
public:
  /// Idle connections kept per origin; more are closed after use.
  static constexpr size_t max_idle_per_origin = 64;
  /// An idle connection older than this is closed instead of reused.
  static constexpr std::chrono::seconds max_idle_time{30};
  /// An idle connection is checked for a close by the peer before reuse
  /// only once it has been idle this long.
  static constexpr std::chrono::milliseconds look_after_idle{100};
  /// Largest upstream response body accepted.
  static constexpr uint64_t max_response_bytes = 32 * 1024 * 1024;

  explicit upstream_pool(boost::asio::io_context& ioc);
  ~upstream_pool();

  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  /// Sends `req` and reads the whole response. A pooled connection that
  /// turns out to be closed by the peer before any response byte is
  /// retried once on a fresh connection. Never throws. With `req.stream`
  /// and a `sink`, a 2xx answer is relayed to the client as it arrives.
  boost::asio::awaitable<upstream_result>
  call(upstream_request req, std::shared_ptr<downstream_sink> sink = nullptr);

  /// Closes every idle connection (shutdown).
  void clear();

  /// Shutdown: closes every connection, idle or in use, so in-flight
  /// exchanges end at once with `cancelled`; later calls fail the same way.
  void cancel_all();

  struct connection;

private:
  using time_point = std::chrono::steady_clock::time_point;
  using maybe_failure = boost::asio::awaitable<std::optional<upstream_result>>;

  /// The addresses of `req`'s host, looked up until `by` (cancel_all()
  /// cuts the lookup short). The failure, if any.
  maybe_failure resolve(const upstream_request& req, time_point by,
                        std::vector<boost::asio::ip::tcp::endpoint>& out);
  /// Opens `conn` to `req`'s origin: resolve, connect, TLS handshake, all
  /// until `by`. The failure, if any.
  maybe_failure open(const upstream_request& req, time_point by,
                     connection& conn);
  /// open() for call(): false, with the failure in `failed`, if it failed.
  /// (A failure returned would stay in call()'s frame for a stream's life.)
  boost::asio::awaitable<bool> dial(const upstream_request& req, time_point by,
                                    connection& conn, upstream_result& failed);
  /// The TLS handshake of a new connection, with SNI and the host name
  /// checked against the certificate.
  maybe_failure handshake(connection& conn, const std::string& host);
  /// One exchange on an open connection into `result`, relayed to `sink`
  /// for a stream. (Written into the caller's result: a value returned
  /// would stay in call()'s frame for a stream's life, beside it.)
  boost::asio::awaitable<void>
  exchange_on(connection& conn, const upstream_request& req,
              downstream_sink* sink, time_point first_byte, time_point deadline,
              bool& reusable, bool& retryable, upstream_result& result);
  std::unique_ptr<connection> take_idle(const std::string& key);
  void give_back(const std::string& key, std::unique_ptr<connection> c);

  boost::asio::io_context& ioc_;
  /// Connections with an exchange in progress (closed by cancel_all).
  std::unordered_set<connection*> active_;
  /// Name resolutions in progress (cancelled by cancel_all).
  struct resolving;
  std::unordered_set<resolving*> resolving_;
  bool stopping_ = false;
  std::unordered_map<std::string, std::vector<std::unique_ptr<connection>>>
    idle_;
  struct tls_contexts;
  std::unique_ptr<tls_contexts> tls_;
};

} // namespace pw::http
