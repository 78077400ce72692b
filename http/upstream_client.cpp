#include "http/upstream_client.hpp"

#include "core/boundary.hpp"
#include "http/downstream_sink.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <cerrno>
#include <optional>
#include <sys/socket.h>

namespace pw::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr uint32_t max_response_header_bytes = 64 * 1024;

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

upstream_result failure(upstream_failure kind, std::string detail) {
  upstream_result r;
  r.failure = kind;
  r.detail = std::move(detail);
  return r;
}

/// True for errors that mean "the peer closed the connection".
bool is_closed(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof
         || ec == net::error::connection_reset || ec == net::error::broken_pipe
         || ec == net::error::connection_aborted
         || ec == ssl::error::stream_truncated;
}

} // namespace

/// One name resolution in progress, with its deadline.
struct upstream_pool::resolving {
  tcp::resolver resolver;
  net::steady_timer timer;
  bool timed_out = false;

  resolving(net::io_context& ioc, clock_type::time_point deadline)
      : resolver(ioc), timer(ioc, deadline) {
    // nop
  }
};

struct upstream_pool::connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  clock_type::time_point idle_since;

  beast::tcp_stream& lowest() {
    return plain ? *plain : beast::get_lowest_layer(*tls);
  }

  /// False if the peer closed the idle connection (or sent something it
  /// should not have). `socket().is_open()` cannot see a peer's FIN.
  bool alive() {
    char byte = 0;
    auto fd = lowest().socket().native_handle();
    auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

/// One TLS client context per CA bundle ("" = system store), per io thread.
struct upstream_pool::tls_contexts {
  std::unordered_map<std::string, std::unique_ptr<ssl::context>> by_ca;

  ssl::context* get(const std::string& ca_file, std::string& why) {
    auto it = by_ca.find(ca_file);
    if (it != by_ca.end())
      return it->second.get();
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                       | ssl::context::no_sslv3 | ssl::context::no_tlsv1
                       | ssl::context::no_tlsv1_1,
                     ec);
    if (!ec)
      ctx->set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
      if (ca_file.empty())
        ctx->set_default_verify_paths(ec);
      else
        ctx->load_verify_file(ca_file, ec);
    }
    if (ec) {
      why = "cannot set up TLS: " + ec.message();
      return nullptr;
    }
    auto* raw = ctx.get();
    by_ca.emplace(ca_file, std::move(ctx));
    return raw;
  }
};

namespace {

/// Writes the request; on failure returns what went wrong and sets
/// `retryable` when the peer had closed the connection.
template <class Stream>
net::awaitable<std::optional<upstream_result>>
send_request(Stream& stream, beast::tcp_stream& lowest,
             const upstream_request& req, clock_type::time_point deadline,
             bool& retryable) {
  auto verb = bhttp::string_to_verb(req.method);
  bhttp::request<bhttp::string_body> msg{verb, req.path, 11};
  msg.set(bhttp::field::host, req.target.host_header());
  msg.set(bhttp::field::user_agent, "pw-router/" PW_VERSION);
  for (const auto& h : req.headers)
    msg.set(h.name, h.value);
  msg.body() = req.body;
  msg.prepare_payload();
  lowest.expires_at(deadline);
  auto [ec, written] = co_await bhttp::async_write(stream, msg, nothrow);
  if (!ec)
    co_return std::nullopt;
  if (ec == beast::error::timeout)
    co_return failure(upstream_failure::timeout,
                      "timed out sending the request");
  retryable = is_closed(ec);
  co_return failure(upstream_failure::protocol,
                    "sending the request failed: " + ec.message());
}

/// Writes the request and reads the whole response on an open connection.
/// Sets `reusable` if the connection may go back to the pool, and
/// `retryable` if it failed before any response byte because the peer had
/// closed it (the request was never processed).
template <class Stream>
net::awaitable<upstream_result>
exchange(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
         const upstream_request& req, clock_type::time_point first_byte,
         clock_type::time_point deadline, bool& reusable, bool& retryable) {
  reusable = false;
  retryable = false;
  if (auto failed
      = co_await send_request(stream, lowest, req, deadline, retryable))
    co_return std::move(*failed);
  // Interim 1xx answers (100 Continue, 103 Early Hints) are skipped: only a
  // final response completes the exchange, so one client's answer can never
  // be left in a pooled connection for the next.
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  for (;;) {
    parser.emplace();
    parser->header_limit(max_response_header_bytes);
    parser->body_limit(upstream_pool::max_response_bytes);
    // The headers must come within the first-byte timeout, the whole
    // answer within the attempt's total timeout.
    lowest.expires_at(std::min(first_byte, deadline));
    auto [hec, hread]
      = co_await bhttp::async_read_header(stream, buffer, *parser, nothrow);
    boost::system::error_code rec = hec;
    if (!rec) {
      lowest.expires_at(deadline);
      auto [bec, bread]
        = co_await bhttp::async_read(stream, buffer, *parser, nothrow);
      rec = bec;
    }
    if (rec) {
      if (rec == beast::error::timeout)
        co_return failure(upstream_failure::timeout,
                          parser->is_header_done()
                            ? "timed out reading the response"
                            : "timed out waiting for the response");
      if (!parser->got_some() && is_closed(rec)) {
        retryable = true;
        co_return failure(upstream_failure::protocol,
                          "the connection closed before a response");
      }
      if (rec == bhttp::error::body_limit)
        co_return failure(upstream_failure::protocol,
                          "the response body is too large");
      co_return failure(upstream_failure::protocol,
                        "malformed HTTP response: " + rec.message());
    }
    auto status = parser->get().result_int();
    if (status >= 200 || status == 101)
      break;
  }
  auto res = parser->release();
  upstream_result r;
  r.status = res.result_int();
  if (auto it = res.find(bhttp::field::content_type); it != res.end())
    r.content_type = std::string{it->value()};
  if (auto it = res.find(bhttp::field::retry_after); it != res.end())
    r.retry_after = std::string{it->value()};
  r.body = std::move(res.body());
  // Pool it only if the exchange ended cleanly: nothing unread is left.
  reusable = r.status >= 200 && res.keep_alive() && !res.need_eof()
             && buffer.size() == 0;
  co_return r;
}

/// Largest error body read from a streaming request's non-2xx answer (a
/// whole 2xx answer may be as large as any other response).
constexpr size_t max_stream_error_bytes = 1024 * 1024;

/// The streaming variant of exchange(): writes the request, waits for the
/// response headers until `deadline`; a 2xx answer is relayed to `sink`
/// piece by piece through `req.stream` (the translator), with
/// `req.idle_timeout` between reads, until `end_by` (the attempt's or the
/// request's time limit, whichever comes first); anything else is read
/// whole and returned like exchange() does. The client is watched
/// throughout: if it leaves, the upstream connection is closed at once.
template <class Stream>
net::awaitable<upstream_result>
stream_exchange(Stream& stream, beast::tcp_stream& lowest,
                beast::flat_buffer& buffer, const upstream_request& req,
                clock_type::time_point deadline, clock_type::time_point end_by,
                downstream_sink& sink, bool& reusable, bool& retryable) {
  reusable = false;
  retryable = false;
  upstream_result r;
  // A client that leaves cancels the upstream call: closing the socket
  // ends whatever read or write is pending on it.
  sink.watch([&lowest] {
    boost::system::error_code ec;
    lowest.socket().close(ec);
  });
  struct stop_watch {
    downstream_sink& sink;
    ~stop_watch() { sink.stop_watching(); }
  } guard{sink};
  auto gone = [&] {
    upstream_result g = failure(upstream_failure::cancelled,
                                "the client closed the connection");
    g.client_gone = true;
    return g;
  };
  if (auto failed
      = co_await send_request(stream, lowest, req, deadline, retryable))
    co_return sink.client_gone() ? gone() : std::move(*failed);
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  for (;;) {
    parser.emplace();
    parser->header_limit(max_response_header_bytes);
    parser->body_limit(boost::none); // a stream is bounded by time
    lowest.expires_at(deadline);
    auto [hec, hn]
      = co_await bhttp::async_read_header(stream, buffer, *parser, nothrow);
    if (hec) {
      if (sink.client_gone())
        co_return gone();
      if (hec == beast::error::timeout)
        co_return failure(upstream_failure::timeout,
                          "timed out waiting for the response");
      if (!parser->got_some() && is_closed(hec)) {
        retryable = true;
        co_return failure(upstream_failure::protocol,
                          "the connection closed before a response");
      }
      co_return failure(upstream_failure::protocol,
                        "malformed HTTP response: " + hec.message());
    }
    auto status = parser->get().result_int();
    if (status >= 200 || status == 101)
      break;
    // An interim 1xx: its (empty) body is done; read the next header.
    if (!parser->is_done())
      co_return failure(upstream_failure::protocol,
                        "malformed interim response");
  }
  const auto& head = parser->get();
  r.status = head.result_int();
  if (auto it = head.find(bhttp::field::content_type); it != head.end())
    r.content_type = std::string{it->value()};
  if (auto it = head.find(bhttp::field::retry_after); it != head.end())
    r.retry_after = std::string{it->value()};
  std::array<char, 16 * 1024> piece;
  auto read_piece
    = [&]() -> net::awaitable<std::pair<boost::system::error_code, size_t>> {
    parser->get().body().data = piece.data();
    parser->get().body().size = piece.size();
    auto [ec, n]
      = co_await bhttp::async_read_some(stream, buffer, *parser, nothrow);
    if (ec == bhttp::error::need_buffer)
      ec = {};
    co_return std::make_pair(ec, piece.size() - parser->get().body().size);
  };
  // A 2xx that is not an event stream (a server that ignores "stream")
  // is read whole too; the SESSION turns it into a stream.
  bool event_stream
    = r.content_type.find("text/event-stream") != std::string::npos;
  if (r.status < 200 || r.status >= 300 || !event_stream) {
    // Not a stream: read the answer whole, for the SESSION.
    auto limit = r.status >= 200 && r.status < 300
                   ? upstream_pool::max_response_bytes
                   : max_stream_error_bytes;
    while (!parser->is_done()) {
      auto [ec, n] = co_await read_piece();
      if (ec) {
        if (sink.client_gone())
          co_return gone();
        if (ec == beast::error::timeout)
          co_return failure(upstream_failure::timeout,
                            "timed out reading the response");
        co_return failure(upstream_failure::protocol,
                          "reading the response failed: " + ec.message());
      }
      if (r.body.size() + n > limit)
        co_return failure(upstream_failure::protocol,
                          "the response body is too large");
      r.body.append(piece.data(), n);
    }
    reusable = head.keep_alive() && !head.need_eof() && buffer.size() == 0;
    co_return r;
  }
  // -- relay: the client gets 200 only now ------------------------------------
  auto& decoder = *req.stream;
  if (!co_await sink.begin(req.response_headers))
    co_return gone();
  r.streamed = true;
  std::string out;
  bool clean = false;
  bool timed_out = false;
  bool internal = false;
  while (!parser->is_done()) {
    lowest.expires_at(std::min(clock_type::now() + req.idle_timeout, end_by));
    auto [ec, n] = co_await read_piece();
    out.clear();
    if (n > 0) {
      // The translator reads the provider's bytes: a failure in it ends
      // this stream with an error event, nothing else.
      try {
        inject_fault(boundary::stream_piece);
        decoder.feed(std::string_view{piece.data(), n}, out);
      } catch (...) {
        report_failure(boundary::stream_piece, req.request_id,
                       current_exception_text());
        internal = true;
        decoder.abort(out, std::string{internal_failure_message},
                      "internal_error", "internal_error");
      }
    }
    if (ec && decoder.state() == stream_state::open) {
      if (sink.client_gone())
        break;
      if (ec != beast::error::timeout)
        decoder.abort(out, "The upstream stream broke off: " + ec.message());
      else if (clock_type::now() < end_by)
        decoder.abort(out, "The upstream stream stalled (idle timeout)");
      else {
        // A time limit, not a fault seen in the stream.
        timed_out = true;
        r.past_deadline = end_by >= req.request_deadline;
        decoder.abort(
          out,
          r.past_deadline ? "The request reached its deadline "
                            "(server.request_deadline_seconds) while streaming"
                          : "The answer took longer than the model's "
                            "timeout_seconds",
          "timeout_error", r.past_deadline ? "deadline_exceeded" : "timeout");
      }
    }
    if (!out.empty() && !co_await sink.write(out))
      break;
    if (ec || decoder.state() != stream_state::open)
      break;
  }
  if (parser->is_done() && decoder.state() == stream_state::open
      && !sink.client_gone()) {
    out.clear();
    decoder.finish(out);
    if (!out.empty())
      co_await sink.write(out);
  }
  clean = decoder.state() == stream_state::done && parser->is_done();
  if (!sink.client_gone())
    co_await sink.end();
  r.summary = decoder.summary();
  if (sink.client_gone()) {
    r.client_gone = true;
    r.failure = upstream_failure::cancelled;
    r.detail = "the client closed the connection";
  } else if (!r.summary.complete) {
    r.failure = internal    ? upstream_failure::internal
                : timed_out ? upstream_failure::timeout
                            : upstream_failure::protocol;
    r.detail = r.summary.error;
  }
  // Reused only after a clean end with nothing left unread.
  reusable = clean && head.keep_alive() && buffer.size() == 0;
  co_return r;
}

} // namespace

upstream_pool::upstream_pool(net::io_context& ioc)
    : ioc_(ioc), tls_(std::make_unique<tls_contexts>()) {
  // nop
}

upstream_pool::~upstream_pool() = default;

void upstream_pool::clear() {
  idle_.clear();
}

void upstream_pool::cancel_all() {
  stopping_ = true;
  idle_.clear();
  for (auto* r : resolving_)
    r->resolver.cancel();
  for (auto* c : active_) {
    boost::system::error_code ec;
    c->lowest().socket().close(ec);
  }
}

std::unique_ptr<upstream_pool::connection>
upstream_pool::take_idle(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end())
    return nullptr;
  auto& list = it->second;
  auto now = clock_type::now();
  while (!list.empty()) {
    // Most recently used first: the likeliest to be alive.
    auto c = std::move(list.back());
    list.pop_back();
    if (now - c->idle_since < max_idle_time && c->alive())
      return c;
  }
  return nullptr;
}

void upstream_pool::give_back(const std::string& key,
                              std::unique_ptr<connection> c) {
  auto& list = idle_[key];
  if (list.size() >= max_idle_per_origin)
    return;
  c->lowest().expires_never();
  c->idle_since = clock_type::now();
  list.push_back(std::move(c));
}

net::awaitable<upstream_result>
upstream_pool::call(upstream_request req,
                    std::shared_ptr<downstream_sink> sink) {
  // A throw from here on reaches make_upstream_fn's completion (the
  // upstream_call boundary) as an exception_ptr.
  inject_fault(boundary::upstream_call);
  auto start = clock_type::now();
  auto deadline = start + req.timeout;
  auto first_byte = start + req.first_byte_timeout;
  if (req.stream && req.received != clock_type::time_point{}) {
    // A relayed stream's headers leave before the SESSION sees anything:
    // its overhead is the time in the gateway before this call.
    auto before = std::chrono::duration_cast<std::chrono::microseconds>(
                    start - req.received)
                  - req.upstream_before;
    req.response_headers.push_back(
      {std::string{overhead_header},
       std::to_string(std::max<int64_t>(0, before.count()))});
  }
  auto key = req.target.origin() + "|" + req.ca_file;
  upstream_result result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (stopping_) {
      result
        = failure(upstream_failure::cancelled, "the gateway is shutting down");
      break;
    }
    // The retry after a stale pooled connection always dials afresh.
    auto conn = attempt == 0 ? take_idle(key) : nullptr;
    bool reused = conn != nullptr;
    // Tracks the connection while in use, so cancel_all() can close it;
    // declared after `conn`, so it lets go first.
    struct active_entry {
      std::unordered_set<connection*>& set;
      connection* c = nullptr;
      void track(connection* x) {
        c = x;
        set.insert(x);
      }
      ~active_entry() {
        if (c != nullptr)
          set.erase(c);
      }
    } entry{active_};
    if (conn)
      entry.track(conn.get());
    if (!conn) {
      // -- connect: resolve -> connect -> handshake ---------------------------
      auto connect_deadline
        = std::min(deadline, clock_type::now() + req.connect_timeout);
      const auto& host = req.target.host;
      std::vector<tcp::endpoint> endpoints;
      boost::system::error_code aec;
      auto address = net::ip::make_address(host, aec);
      if (!aec) {
        endpoints.emplace_back(address, req.target.port);
      } else {
        // Name resolution counts against the connect timeout, and
        // cancel_all() can cut it: the resolver is shared with a timer
        // that cancels it at the deadline.
        auto lookup = std::make_shared<resolving>(ioc_, connect_deadline);
        lookup->timer.async_wait([lookup](boost::system::error_code ec) {
          if (!ec) {
            lookup->timed_out = true;
            lookup->resolver.cancel();
          }
        });
        resolving_.insert(lookup.get());
        auto [rec, results] = co_await lookup->resolver.async_resolve(
          host, std::to_string(req.target.port), nothrow);
        resolving_.erase(lookup.get());
        lookup->timer.cancel();
        if (rec) {
          if (lookup->timed_out)
            result = failure(upstream_failure::timeout,
                             "resolving the host name timed out");
          else
            result = failure(upstream_failure::connect,
                             "cannot resolve the host name: " + rec.message());
          break;
        }
        for (const auto& found : results)
          endpoints.push_back(found.endpoint());
      }
      conn = std::make_unique<connection>();
      if (stopping_) {
        result = failure(upstream_failure::cancelled,
                         "the gateway is shutting down");
        break;
      }
      if (req.target.tls) {
        std::string why;
        auto* ctx = tls_->get(req.ca_file, why);
        if (ctx == nullptr) {
          result = failure(upstream_failure::tls, why);
          break;
        }
        conn->tls
          = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, *ctx);
      } else {
        conn->plain = std::make_unique<beast::tcp_stream>(ioc_);
      }
      entry.track(conn.get());
      auto& low = conn->lowest();
      low.expires_at(connect_deadline);
      auto [cec, ep] = co_await low.async_connect(endpoints, nothrow);
      if (cec) {
        if (cec == beast::error::timeout)
          result = failure(upstream_failure::timeout, "connecting timed out");
        else
          result = failure(upstream_failure::connect,
                           "connecting failed: " + cec.message());
        break;
      }
      boost::system::error_code nec;
      low.socket().set_option(tcp::no_delay(true), nec);
      if (conn->tls) {
        // SNI names the host (not for IP literals, RFC 6066); the peer's
        // certificate must match it.
        if (!is_ip_literal(host)
            && !SSL_set_tlsext_host_name(conn->tls->native_handle(),
                                         host.c_str())) {
          result = failure(upstream_failure::tls, "cannot set SNI");
          break;
        }
        conn->tls->set_verify_callback(ssl::host_name_verification(host));
        auto [hec] = co_await conn->tls->async_handshake(
          ssl::stream_base::client, nothrow);
        if (hec) {
          if (hec == beast::error::timeout)
            result = failure(upstream_failure::timeout,
                             "the TLS handshake timed out");
          else
            result = failure(upstream_failure::tls,
                             "the TLS handshake failed: " + hec.message());
          break;
        }
      }
    }
    // -- write -> read --------------------------------------------------------
    bool reusable = false;
    bool retryable = false;
    if (req.stream && sink) {
      // A stream's headers must come within min(timeout, first byte); its
      // last byte within the attempt's timeout and the request's deadline.
      auto headers_by = std::min(deadline, first_byte);
      auto end_by = std::min(deadline, req.request_deadline);
      if (conn->tls)
        result = co_await stream_exchange(*conn->tls, conn->lowest(),
                                          conn->buffer, req, headers_by, end_by,
                                          *sink, reusable, retryable);
      else
        result = co_await stream_exchange(*conn->plain, conn->lowest(),
                                          conn->buffer, req, headers_by, end_by,
                                          *sink, reusable, retryable);
    } else if (conn->tls) {
      result = co_await exchange(*conn->tls, conn->lowest(), conn->buffer, req,
                                 first_byte, deadline, reusable, retryable);
    } else {
      result
        = co_await exchange(*conn->plain, conn->lowest(), conn->buffer, req,
                            first_byte, deadline, reusable, retryable);
    }
    if (result.failure == upstream_failure::none || result.streamed) {
      if (reusable)
        give_back(key, std::move(conn));
      break;
    }
    // Only a pooled connection that the peer had already closed is retried:
    // the request never reached the application, so it cannot run twice.
    if (!reused || !retryable)
      break;
  }
  // cancel_all() closed the socket under the exchange: whatever error that
  // produced, the truth is "cancelled by shutdown", not a provider failure.
  if (stopping_ && result.failure != upstream_failure::none && !result.streamed)
    result
      = failure(upstream_failure::cancelled, "the gateway is shutting down");
  auto end = clock_type::now();
  // A timeout at the request's deadline was the deadline's doing.
  if (result.failure == upstream_failure::timeout
      && end >= req.request_deadline)
    result.past_deadline = true;
  result.elapsed
    = std::chrono::duration_cast<std::chrono::microseconds>(end - start);
  co_return result;
}

} // namespace pw::http
