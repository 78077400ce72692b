#pragma once

// A client connection, plain TCP or TLS, as one stream type: the connection
// coroutine, Beast's parser and serializer and the stream sink use it the
// same way either way. Both variants complete with the same signatures, so
// each operation forwards to whichever layer this connection has.

#include "http/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <optional>
#include <utility>

namespace pw::http {

class client_stream {
public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  /// A TLS connection when `tls` is set (handshake() must succeed before
  /// anything else), else a plain one.
  client_stream(boost::asio::ip::tcp::socket sock, tls_context* tls) {
    if (tls != nullptr)
      tls_.emplace(std::move(sock), tls->native());
    else
      plain_.emplace(std::move(sock));
  }

  client_stream(const client_stream&) = delete;
  client_stream& operator=(const client_stream&) = delete;

  [[nodiscard]] bool tls() const { return tls_.has_value(); }

  /// The TCP layer: timeouts, the socket, closing.
  boost::beast::tcp_stream& lowest() {
    return tls_ ? tls_->next_layer() : *plain_;
  }

  executor_type get_executor() { return lowest().get_executor(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (tls_)
      return tls_->async_read_some(buffers, std::forward<Token>(token));
    return plain_->async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (tls_)
      return tls_->async_write_some(buffers, std::forward<Token>(token));
    return plain_->async_write_some(buffers, std::forward<Token>(token));
  }

  /// The server side of the TLS handshake, within `timeout`; nothing to do
  /// for a plain connection. Returns the error, if any.
  boost::asio::awaitable<boost::system::error_code>
  handshake(std::chrono::milliseconds timeout) {
    if (!tls_)
      co_return boost::system::error_code{};
    lowest().expires_after(timeout);
    auto [ec] = co_await tls_->async_handshake(
      boost::asio::ssl::stream_base::server,
      boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return ec;
  }

  /// Ends the sending side: TLS sends close_notify first, without waiting
  /// for the client's (which pooled clients never send), then the TCP side
  /// is shut down.
  boost::asio::awaitable<void> close_write() {
    if (tls_) {
      SSL_set_shutdown(tls_->native_handle(), SSL_RECEIVED_SHUTDOWN);
      lowest().expires_after(std::chrono::seconds{1});
      co_await tls_->async_shutdown(
        boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    boost::system::error_code ec;
    lowest().socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  }

private:
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
};

} // namespace pw::http
