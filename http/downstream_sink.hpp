#pragma once

// Where a streamed answer goes: the client connection that waits for it.
// The upstream client writes the SSE response through this, on the same
// io thread, while the connection coroutine waits for the SESSION's reply.

#include "core/request/exchange.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pw::http {

class client_stream;

class downstream_sink : public std::enable_shared_from_this<downstream_sink> {
public:
  downstream_sink(client_stream& stream, unsigned http_version,
                  std::string request_id,
                  std::chrono::milliseconds write_timeout,
                  std::shared_ptr<boost::asio::steady_timer> deadline);

  /// The connection moved on (answered, or gave up): the socket is never
  /// touched through this sink again.
  void detach();

  /// The response headers went out.
  [[nodiscard]] bool started() const { return started_; }

  /// The client closed its connection (or could not keep up).
  [[nodiscard]] bool client_gone() const { return gone_; }

  /// Watches the client while the upstream works: `on_gone` runs once if
  /// the client closes its connection. Data the client sends meanwhile (a
  /// pipelined request) stays unread for the connection.
  void watch(std::function<void()> on_gone);

  /// Stops watching; `on_gone` will not run any more.
  void stop_watching();

  /// Waits until no write of this sink is in flight, closing the socket
  /// first if one is: the connection may then destroy its stream.
  boost::asio::awaitable<void> settle();

  /// Sends `200` with `text/event-stream` headers (chunked) and takes the
  /// request deadline away: from now on the stream's own timeouts apply.
  /// `extra` headers go out with them. False if the client is gone.
  boost::asio::awaitable<bool> begin(const std::vector<header_field>& extra
                                     = {});

  /// Sends one piece of the event stream; false if the client is gone or
  /// did not take it within the write timeout.
  boost::asio::awaitable<bool> write(std::string_view events);

  /// Ends the response body.
  boost::asio::awaitable<void> end();

private:
  client_stream& stream_;
  unsigned version_;
  std::string request_id_;
  std::chrono::milliseconds write_timeout_;
  std::shared_ptr<boost::asio::steady_timer> deadline_;
  std::function<void()> on_gone_;
  /// Under TLS: looks for the client's FIN now and then (check_hangup).
  boost::asio::steady_timer recheck_;
  /// Cancelled when the last write in flight ends while settle() waits.
  boost::asio::steady_timer idle_;
  unsigned busy_ = 0;
  bool settling_ = false;
  bool attached_ = true;
  bool started_ = false;
  bool gone_ = false;
  bool watching_ = false;
  bool wait_pending_ = false;

  void op_done();
  void client_left();
  void check_hangup();
};

} // namespace pw::http
