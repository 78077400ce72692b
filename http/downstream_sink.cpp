#include "http/downstream_sink.hpp"

#include "http/client_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <cerrno>
#include <charconv>
#include <poll.h>
#include <span>
#include <sys/socket.h>
#include <sys/uio.h>

namespace pw::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);

/// Sends what the socket `fd` takes at once, without waiting: the bytes
/// sent (0 when its buffer is full), or -1 when the connection failed.
ssize_t send_now(int fd, const std::array<net::const_buffer, 3>& parts,
                 size_t count) {
  std::array<iovec, 3> iov{};
  for (size_t i = 0; i < count; ++i)
    iov[i] = {const_cast<void*>(parts[i].data()), parts[i].size()};
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  for (;;) {
    auto sent = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0)
      return sent;
    if (errno == EINTR)
      continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
}

} // namespace

downstream_sink::downstream_sink(client_stream& stream, unsigned http_version,
                                 std::chrono::milliseconds write_timeout,
                                 std::shared_ptr<net::steady_timer> deadline)
    : stream_(stream), version_(http_version), write_timeout_(write_timeout),
      deadline_(std::move(deadline)) {
  // nop
}

void downstream_sink::detach() {
  stop_watching();
  attached_ = false;
}

net::awaitable<void> downstream_sink::settle() {
  if (busy_ == 0)
    co_return;
  // Closing the socket ends the pending write at once; the stream object
  // must outlive it (a TLS write holds references into it).
  boost::system::error_code ec;
  stream_.lowest().socket().close(ec);
  settling_ = true;
  idle_.emplace(stream_.get_executor(), net::steady_timer::time_point::max());
  co_await idle_->async_wait(nothrow);
  settling_ = false;
}

void downstream_sink::op_done() {
  if (--busy_ == 0 && settling_)
    idle_->cancel();
}

void downstream_sink::client_left() {
  watching_ = false;
  gone_ = true;
  if (auto cut = std::move(cut_))
    cut();
  if (auto f = std::move(on_gone_))
    f(cancel_reason::client_left);
}

void downstream_sink::cut_with(std::function<void()> cut) {
  cut_ = std::move(cut);
}

void downstream_sink::watch(std::function<void(cancel_reason)> on_gone) {
  if (!attached_ || watching_)
    return;
  on_gone_ = std::move(on_gone);
  watching_ = true;
  // A peeking receive: Asio tries it at once (the socket's last read found
  // bytes, so the reactor reads speculatively), which sees a FIN that came
  // with the request's last bytes, whose edge that read took; else it
  // waits for the next edge. It costs one system call, where a readiness
  // wait would also re-arm the descriptor with epoll_ctl every time.
  peek_pending_ = true;
  stream_.lowest().socket().async_receive(
    net::buffer(&peek_byte_, 1), net::socket_base::message_peek,
    [self = shared_from_this()](boost::system::error_code ec, size_t n) {
      self->peek_pending_ = false;
      if (ec == net::error::operation_aborted || !self->attached_
          || !self->watching_)
        return;
      if (ec || n == 0) { // end of stream, or reset
        self->client_left();
        return;
      }
      self->saw_data();
    });
}

void downstream_sink::saw_data() {
  if (stream_.tls()) {
    // Under TLS these bytes are most likely the client's close_notify,
    // with its FIN right behind. Readability would fire again at once, so
    // look for the FIN itself, now and then, while the answer runs.
    check_hangup();
    return;
  }
  watching_ = false; // a pipelined request, left for later
}

void downstream_sink::check_hangup() {
  if (!attached_ || !watching_)
    return;
  pollfd p{stream_.lowest().socket().native_handle(), POLLRDHUP, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
    client_left();
    return;
  }
  if (!recheck_)
    recheck_.emplace(stream_.get_executor());
  recheck_->expires_after(std::chrono::milliseconds{50});
  recheck_->async_wait(
    [self = shared_from_this()](boost::system::error_code ec) {
      if (!ec)
        self->check_hangup();
    });
}

void downstream_sink::stop_watching() {
  if (!watching_)
    return;
  watching_ = false;
  on_gone_ = nullptr;
  if (recheck_)
    recheck_->cancel();
  if (attached_ && peek_pending_) {
    // Only the peeking receive is cancelled, never a write in flight.
    boost::system::error_code ec;
    stream_.lowest().socket().cancel(ec);
  }
}

net::awaitable<bool>
downstream_sink::begin(const std::string& request_id,
                       const std::vector<header_field>& extra) {
  if (!attached_ || gone_)
    co_return false;
  // The stream has its own timeouts now; the request deadline would cut a
  // long answer that is flowing fine.
  deadline_->cancel();
  bhttp::response<bhttp::empty_body> res{bhttp::status::ok, version_};
  res.set(bhttp::field::content_type, "text/event-stream");
  res.set(bhttp::field::cache_control, "no-cache");
  res.set("X-Request-Id", request_id);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Permissions-Policy", "interest-cohort=()");
  res.set("X-Accel-Buffering", "no");
  for (const auto& h : extra)
    res.set(h.name, h.value);
  if (version_ >= 11) {
    res.chunked(true);
  } else {
    res.keep_alive(false); // HTTP/1.0: the body ends when we close
  }
  started_ = true;
  bhttp::response_serializer<bhttp::empty_body> sr{res};
  stream_.lowest().expires_after(write_timeout_);
  ++busy_;
  auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, nothrow);
  op_done();
  if (ec) {
    gone_ = true;
    co_return false;
  }
  co_return true;
}

net::awaitable<bool> downstream_sink::write(std::string_view events) {
  if (!attached_ || gone_)
    co_return false;
  if (events.empty())
    co_return true; // an empty chunk would end the body
  // HTTP/1.1: one chunk (its size in hex, the events, CRLF); HTTP/1.0:
  // the bytes as they are.
  std::array<char, 20> head{};
  std::array<net::const_buffer, 3> parts;
  size_t count = 1;
  parts[0] = net::buffer(events.data(), events.size());
  if (version_ >= 11) {
    auto stop = std::to_chars(head.data(), head.data() + head.size() - 2,
                              events.size(), 16)
                  .ptr;
    *stop++ = '\r';
    *stop++ = '\n';
    parts = {net::buffer(head.data(), static_cast<size_t>(stop - head.data())),
             parts[0], net::buffer("\r\n", 2)};
    count = 3;
  }
  size_t total = 0;
  for (size_t i = 0; i < count; ++i)
    total += parts[i].size();
  // Most pieces fit in the socket's buffer: sent at once, they need no
  // timer, no write operation and no completion handler. (Under TLS the
  // bytes must go through the TLS layer, always asynchronously.)
  size_t sent = 0;
  if (!stream_.tls() && busy_ == 0) {
    auto n = send_now(stream_.lowest().socket().native_handle(), parts, count);
    if (n < 0) {
      gone_ = true;
      co_return false;
    }
    sent = static_cast<size_t>(n);
    if (sent == total)
      co_return true;
  }
  // A client that cannot take the rest of one piece within the write
  // timeout is cut: the gateway never buffers more of a stream than one
  // piece.
  beast::buffers_suffix<std::span<const net::const_buffer>> rest{
    std::span<const net::const_buffer>{parts.data(), count}};
  rest.consume(sent);
  stream_.lowest().expires_after(write_timeout_);
  ++busy_;
  auto [ec, n] = co_await net::async_write(stream_, rest, nothrow);
  op_done();
  if (ec || !attached_) {
    gone_ = true;
    co_return false;
  }
  co_return true;
}

net::awaitable<void> downstream_sink::end() {
  stop_watching();
  if (!attached_ || gone_ || version_ < 11)
    co_return;
  stream_.lowest().expires_after(write_timeout_);
  ++busy_;
  auto [ec, n]
    = co_await net::async_write(stream_, bhttp::make_chunk_last(), nothrow);
  op_done();
  if (ec)
    gone_ = true;
}

} // namespace pw::http
