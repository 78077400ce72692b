#pragma once

// The client connection of a chat request, as the request's other parts see
// it while the connection coroutine waits for the SESSION's reply: it
// watches the client (one that leaves cancels the SESSION's work and cuts
// the upstream exchange in flight), and a streamed answer is written
// through it by the upstream client, on the same io thread.

#include "core/request/exchange.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pw::http {

class client_stream;

class downstream_sink : public std::enable_shared_from_this<downstream_sink> {
public:
  downstream_sink(client_stream& stream, unsigned http_version,
                  std::chrono::milliseconds write_timeout,
                  std::shared_ptr<boost::asio::steady_timer> deadline);

  /// The connection moved on (answered, or gave up): the socket is never
  /// touched through this sink again.
  void detach();

  /// The response headers went out.
  [[nodiscard]] bool started() const { return started_; }

  /// The client closed its connection (or could not keep up).
  [[nodiscard]] bool client_gone() const { return gone_; }

  /// Watches the client while the request is served: if it closes its
  /// connection (also before this call, or only its sending half, as
  /// nginx counts it), the exchange set by cut_with() is cut and
  /// `on_gone(cancel_reason::client_left)` runs, once. Data the client sends
  /// meanwhile (a pipelined request) stays unread for the connection; without
  /// TLS, the watch ends there.
  void watch(std::function<void(cancel_reason)> on_gone);

  /// Stops watching; `on_gone` will not run any more.
  void stop_watching();

  /// While an upstream exchange works for this request, `cut` ends it (it
  /// closes the upstream socket); it runs at once if the client leaves.
  /// An empty function: no exchange in flight.
  void cut_with(std::function<void()> cut);

  /// A write of this sink is in flight.
  [[nodiscard]] bool writing() const { return busy_ > 0; }

  /// Waits until no write of this sink is in flight, closing the socket
  /// first if one is: the connection may then destroy its stream.
  boost::asio::awaitable<void> settle();

  /// Sends `200` with `text/event-stream` headers (chunked) and takes the
  /// request deadline away: from now on the stream's own timeouts apply.
  /// `X-Request-Id` and the `extra` headers go out with them. False if the
  /// client is gone.
  boost::asio::awaitable<bool> begin(const std::string& request_id,
                                     const std::vector<header_field>& extra);

  /// Sends one piece of the event stream; false if the client is gone or
  /// did not take it within the write timeout.
  boost::asio::awaitable<bool> write(std::string_view events);

  /// Ends the response body.
  boost::asio::awaitable<void> end();

private:
  client_stream& stream_;
  unsigned version_;
  std::chrono::milliseconds write_timeout_;
  std::shared_ptr<boost::asio::steady_timer> deadline_;
  std::function<void(cancel_reason)> on_gone_;
  std::function<void()> cut_;
  /// Under TLS: looks for the client's FIN now and then (check_hangup).
  /// Both timers are made on first use: most requests need neither, and
  /// making a timer looks up its service under the io_context's lock.
  std::optional<boost::asio::steady_timer> recheck_;
  /// Cancelled when the last write in flight ends while settle() waits.
  std::optional<boost::asio::steady_timer> idle_;
  unsigned busy_ = 0;
  bool settling_ = false;
  bool attached_ = true;
  bool started_ = false;
  bool gone_ = false;
  bool watching_ = false;
  bool peek_pending_ = false;
  /// Where the watch's peeking receive puts the byte it looks at.
  char peek_byte_ = 0;

  void op_done();
  void client_left();
  /// Readable bytes with the client still there: a pipelined request, or
  /// (under TLS) most likely its close_notify.
  void saw_data();
  void check_hangup();
};

} // namespace pw::http
