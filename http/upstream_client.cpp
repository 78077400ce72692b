#include "http/upstream_client.hpp"

#include "core/boundary.hpp"
#include "http/downstream_sink.hpp"
#include "http/wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

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

  /// False until dial() made the stream.
  [[nodiscard]] bool has_socket() const { return plain || tls; }

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

/// What a whole answer's first read has room for.
constexpr size_t first_read_bytes = 4096;

/// Writes the request; on failure returns what went wrong and sets
/// `retryable` when the peer had closed the connection.
template <class Stream>
net::awaitable<std::optional<upstream_result>>
send_request(Stream& stream, beast::tcp_stream& lowest,
             const upstream_request& req, clock_type::time_point deadline,
             bool& retryable) {
  auto verb = bhttp::string_to_verb(req.method);
  bhttp::request<bhttp::empty_body> msg{verb, req.path, 11};
  msg.set(bhttp::field::host, req.target.host_header());
  msg.set(bhttp::field::user_agent, "pw-router/" PW_VERSION);
  for (const auto& h : req.headers)
    msg.set(h.name, h.value);
  // The body goes out from the request itself, not a copy in the message.
  set_payload_length(msg, req.body.size());
  lowest.expires_at(deadline);
  auto wire = to_wire(msg.base(), req.body, false);
  auto [ec, written]
    = co_await net::async_write(stream, wire.buffers(), nothrow);
  if (!ec)
    co_return std::nullopt;
  if (ec == beast::error::timeout)
    co_return failure(upstream_failure::timeout,
                      "timed out sending the request");
  retryable = is_closed(ec);
  co_return failure(upstream_failure::protocol,
                    "sending the request failed: " + ec.message());
}

/// Writes the request and reads the whole response on an open connection,
/// into `r` (the answer, or what failed). Sets `reusable` if the connection may
/// go back to the pool, and `retryable` if it failed before any response byte
/// because the peer had closed it (the request was never processed).
template <class Stream>
net::awaitable<void>
exchange(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
         const upstream_request& req, clock_type::time_point first_byte,
         clock_type::time_point deadline, bool& reusable, bool& retryable,
         upstream_result& r) {
  r = upstream_result{};
  reusable = false;
  retryable = false;
  if (auto failed
      = co_await send_request(stream, lowest, req, deadline, retryable)) {
    r = std::move(*failed);
    co_return;
  }
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
    // Room for a usual answer in one read (Beast reads 512 bytes into an
    // empty buffer, and most answers are longer).
    if (buffer.capacity() < first_read_bytes)
      buffer.reserve(first_read_bytes);
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
        r = failure(upstream_failure::timeout,
                    parser->is_header_done()
                      ? "timed out reading the response"
                      : "timed out waiting for the response");
      else if (!parser->got_some() && is_closed(rec)) {
        retryable = true;
        r = failure(upstream_failure::protocol,
                    "the connection closed before a response");
      } else if (rec == bhttp::error::body_limit)
        r = failure(upstream_failure::protocol,
                    "the response body is too large");
      else
        r = failure(upstream_failure::protocol,
                    "malformed HTTP response: " + rec.message());
      co_return;
    }
    auto status = parser->get().result_int();
    if (status >= 200 || status == 101)
      break;
  }
  auto res = parser->release();
  r.status = res.result_int();
  if (auto it = res.find(bhttp::field::content_type); it != res.end())
    r.content_type = std::string{it->value()};
  if (auto it = res.find(bhttp::field::retry_after); it != res.end())
    r.retry_after = std::string{it->value()};
  for (const auto& name : req.answer_headers)
    if (auto it = res.find(name); it != res.end())
      r.answer_headers.push_back({name, std::string{it->value()}});
  r.body = std::move(res.body());
  // Pool it only if the exchange ended cleanly: nothing unread is left.
  reusable = r.status >= 200 && res.keep_alive() && !res.need_eof()
             && buffer.size() == 0;
}

/// Largest error body read from a streaming request's non-2xx answer (a
/// whole 2xx answer may be as large as any other response).
constexpr size_t max_stream_error_bytes = 1024 * 1024;

/// How much of a relayed stream one read hands to the translator, at first
/// and at most. An event of a chat stream is a few hundred bytes, so a
/// stream that sends one at a time keeps the small buffer; one that fills
/// it (a burst) doubles it, up to the largest, so a burst still goes out in
/// few writes. Every open stream keeps its buffer: a fixed 16 KiB was the
/// largest part of a stream's memory (docs/performance.md, "Many slow
/// streams at once").
constexpr size_t first_piece_bytes = 1024;
constexpr size_t max_piece_bytes = 16 * 1024;

/// The most a stream's translated events are held back while it has no
/// content yet (role, message_start, pings): past it they go to the
/// client, and a failure can no longer fall back.
constexpr size_t max_held_bytes = 64 * 1024;

/// How much a non-stream answer to a streaming request grows its body by
/// per read.
constexpr size_t whole_piece_bytes = 16 * 1024;

upstream_result client_gone_result() {
  upstream_result g
    = failure(upstream_failure::cancelled, "the client closed the connection");
  g.client_gone = true;
  return g;
}

/// The steps of stream_exchange() on one connection: read the response
/// head, then read a non-stream answer whole or relay an event stream to
/// the client through the translator. Each step writes into the result
/// it is given: every value a coroutine returns is kept in its caller's
/// frame, and an open stream keeps all the frames of its chain.
template <class Stream>
class stream_exchange_op {
public:
  using piece_read = std::pair<boost::system::error_code, size_t>;

  stream_exchange_op(Stream& stream, beast::tcp_stream& lowest,
                     beast::flat_buffer& buffer, const upstream_request& req,
                     downstream_sink& sink)
      : stream_(stream), lowest_(lowest), buffer_(buffer), req_(req),
        sink_(sink) {
    // nop
  }

  /// The whole exchange into `r`, in one coroutine frame that holds the op
  /// too.
  static net::awaitable<void>
  run(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
      const upstream_request& req, downstream_sink& sink,
      clock_type::time_point deadline, clock_type::time_point end_by,
      bool& reusable, bool& retryable, upstream_result& r) {
    stream_exchange_op op{stream, lowest, buffer, req, sink};
    r = upstream_result{};
    reusable = false;
    retryable = false;
    if (auto failed
        = co_await send_request(stream, lowest, req, deadline, retryable)) {
      r = sink.client_gone() ? client_gone_result() : std::move(*failed);
      co_return;
    }
    if (!co_await op.read_head(deadline, retryable, r))
      co_return;
    const auto& head = op.parser_->get();
    r.status = head.result_int();
    if (auto it = head.find(bhttp::field::content_type); it != head.end())
      r.content_type = std::string{it->value()};
    if (auto it = head.find(bhttp::field::retry_after); it != head.end())
      r.retry_after = std::string{it->value()};
    // A 2xx that is not an event stream (a server that ignores "stream")
    // is read whole too; the SESSION turns it into a stream. Server-sent
    // events, or AWS's binary event stream (Bedrock's ConverseStream).
    bool event_stream
      = r.content_type.find("text/event-stream") != std::string::npos
        || r.content_type.find("application/vnd.amazon.eventstream")
             != std::string::npos;
    if (r.status < 200 || r.status >= 300 || !event_stream)
      co_await op.read_whole(r, reusable);
    else
      co_await op.relay(r, deadline, end_by, reusable);
  }

private:
  /// Reads the response head until `deadline`, skipping interim 1xx
  /// answers. False, with the failure in `r`, if it could not.
  net::awaitable<bool> read_head(clock_type::time_point deadline,
                                 bool& retryable, upstream_result& r) {
    for (;;) {
      parser_.emplace();
      parser_->header_limit(max_response_header_bytes);
      parser_->body_limit(boost::none); // a stream is bounded by time
      lowest_.expires_at(deadline);
      auto [ec, n] = co_await bhttp::async_read_header(stream_, buffer_,
                                                       *parser_, nothrow);
      if (ec) {
        if (sink_.client_gone())
          r = client_gone_result();
        else if (ec == beast::error::timeout)
          r = failure(upstream_failure::timeout,
                      "timed out waiting for the response");
        else if (!parser_->got_some() && is_closed(ec)) {
          retryable = true;
          r = failure(upstream_failure::protocol,
                      "the connection closed before a response");
        } else
          r = failure(upstream_failure::protocol,
                      "malformed HTTP response: " + ec.message());
        co_return false;
      }
      auto status = parser_->get().result_int();
      if (status >= 200 || status == 101)
        co_return true;
      // An interim 1xx: its (empty) body is done; read the next header.
      if (!parser_->is_done()) {
        r = failure(upstream_failure::protocol, "malformed interim response");
        co_return false;
      }
    }
  }

  /// Reads the next piece of the body into the `size` bytes at `into`: the
  /// error and how many bytes came.
  net::awaitable<piece_read> read_piece(char* into, size_t size) {
    parser_->get().body().data = into;
    parser_->get().body().size = size;
    auto [ec, n]
      = co_await bhttp::async_read_some(stream_, buffer_, *parser_, nothrow);
    if (ec == bhttp::error::need_buffer)
      ec = {};
    co_return piece_read{ec, size - parser_->get().body().size};
  }

  /// Not a stream: reads the answer whole into `r`, for the SESSION (on
  /// failure `r` says why).
  net::awaitable<void> read_whole(upstream_result& r, bool& reusable) {
    auto limit = r.status >= 200 && r.status < 300
                   ? upstream_pool::max_response_bytes
                   : max_stream_error_bytes;
    while (!parser_->is_done()) {
      // Read straight into the body: no buffer of its own in this frame.
      auto had = r.body.size();
      r.body.resize(had + whole_piece_bytes);
      auto [ec, n]
        = co_await read_piece(r.body.data() + had, whole_piece_bytes);
      r.body.resize(had + n);
      if (ec) {
        if (sink_.client_gone())
          r = client_gone_result();
        else if (ec == beast::error::timeout)
          r = failure(upstream_failure::timeout,
                      "timed out reading the response");
        else
          r = failure(upstream_failure::protocol,
                      "reading the response failed: " + ec.message());
        co_return;
      }
      if (r.body.size() > limit) {
        r = failure(upstream_failure::protocol,
                    "the response body is too large");
        co_return;
      }
    }
    const auto& head = parser_->get();
    reusable = head.keep_alive() && !head.need_eof() && buffer_.size() == 0;
  }

  /// Hands `n` bytes of the provider's stream to the translator. A
  /// failure in it ends this stream with an error event, nothing else.
  void feed(size_t n, std::string& out) {
    try {
      inject_fault(boundary::stream_piece);
      req_.stream->feed(std::string_view{piece_.get(), n}, out);
    } catch (...) {
      report_failure(boundary::stream_piece, req_.request_id,
                     current_exception_text());
      internal_ = true;
      req_.stream->abort(out, std::string{internal_failure_message},
                         "internal_error", "internal_error");
    }
  }

  /// A read of the open stream failed: the translator ends it with the
  /// error event that says why (broken, stalled, or out of time).
  void read_failed(boost::system::error_code ec, clock_type::time_point end_by,
                   upstream_result& r, std::string& out) {
    auto& decoder = *req_.stream;
    if (ec != beast::error::timeout) {
      decoder.abort(out, "The upstream stream broke off: " + ec.message());
      return;
    }
    if (clock_type::now() < end_by) {
      decoder.abort(out, "The upstream stream stalled (idle timeout)");
      return;
    }
    // A time limit, not a fault seen in the stream.
    timed_out_ = true;
    r.past_deadline = end_by >= req_.request_deadline;
    decoder.abort(
      out,
      r.past_deadline ? "The request reached its deadline "
                        "(server.request_deadline_seconds) while streaming"
                      : "The answer took longer than the model's "
                        "timeout_seconds",
      "timeout_error", r.past_deadline ? "deadline_exceeded" : "timeout");
  }

  /// The next read of the stream ends `req.idle_timeout` from now at the
  /// latest, and not past `by`.
  void arm_read(clock_type::time_point by) {
    lowest_.expires_at(std::min(clock_type::now() + req_.idle_timeout, by));
  }

  /// Translates the `n` bytes a read brought into `out` (cleared first);
  /// a read that filled the piece doubles it, up to the largest. (Not a
  /// coroutine: a relayed stream allocates no frame per read beyond
  /// read_piece's.)
  void take_piece(size_t n, std::string& out) {
    out.clear();
    if (n > 0)
      feed(n, out);
    if (n == piece_size_ && piece_size_ < max_piece_bytes) {
      // A full read: more was there. Its bytes are translated already.
      piece_size_ *= 2;
      piece_ = std::make_unique_for_overwrite<char[]>(piece_size_);
    }
  }

  /// Fallback until the first token: reads and translates the stream
  /// without sending anything until it carries content (a text, refusal
  /// or tool-call delta), ends properly, or holds more than
  /// max_held_bytes, with what came in `held`. False, with the failure in
  /// `r`, when it failed before that: an error event, a reset, an end
  /// without its last event, or no content by `content_by` (the model's
  /// first-byte timeout). Nothing reached the client then, so the SESSION
  /// retries or falls back as for any failed call, and the breaker hears
  /// of it.
  net::awaitable<bool> await_content(upstream_result& r,
                                     clock_type::time_point content_by,
                                     clock_type::time_point end_by,
                                     std::string& held) {
    auto& decoder = *req_.stream;
    std::string out;
    while (!decoder.has_content() && decoder.state() == stream_state::open
           && held.size() <= max_held_bytes) {
      if (parser_->is_done()) {
        r = failure(upstream_failure::protocol,
                    "the stream ended before its first token");
        co_return false;
      }
      arm_read(std::min(content_by, end_by));
      auto [ec, n] = co_await read_piece(piece_.get(), piece_size_);
      take_piece(n, out);
      // The gateway's own failure is not the model's: it is streamed as
      // before (its error event is in `out`).
      if (internal_) {
        held += out;
        co_return true;
      }
      // A held post plugin that cut the stream before any text was sent
      // is an answer (the policy's), not the model's failure.
      if (decoder.state() == stream_state::failed
          && !decoder.summary().policy_cut) {
        r = failure(upstream_failure::protocol,
                    "the stream failed before its first token: "
                      + decoder.summary().error);
        co_return false;
      }
      held += out;
      if (decoder.has_content() || decoder.state() != stream_state::open)
        break;
      if (ec) {
        if (sink_.client_gone())
          r = client_gone_result();
        else if (ec != beast::error::timeout)
          r = failure(upstream_failure::protocol,
                      "the stream broke off before its first token: "
                        + ec.message());
        else if (clock_type::now() >= std::min(content_by, end_by))
          r = failure(upstream_failure::timeout,
                      "no content within the first-byte timeout");
        else
          r = failure(upstream_failure::timeout,
                      "the stream stalled before its first token (idle "
                      "timeout)");
        co_return false;
      }
    }
    co_return true;
  }

  /// Relays a 2xx event stream: the client gets 200 only once it carries
  /// content (await_content), then each translated piece, with
  /// `req.idle_timeout` between reads, until `end_by`.
  net::awaitable<void> relay(upstream_result& r,
                             clock_type::time_point content_by,
                             clock_type::time_point end_by, bool& reusable) {
    auto& decoder = *req_.stream;
    piece_size_ = first_piece_bytes;
    piece_ = std::make_unique_for_overwrite<char[]>(piece_size_);
    std::string out;
    if (!co_await await_content(r, content_by, end_by, out))
      co_return;
    if (!co_await sink_.begin(req_.request_id, req_.response_headers)) {
      r = client_gone_result();
      co_return;
    }
    r.streamed = true;
    if (!out.empty() && !co_await sink_.write(out)) {
      // The client left: summarised below.
    }
    while (!parser_->is_done()) {
      arm_read(end_by);
      auto [ec, n] = co_await read_piece(piece_.get(), piece_size_);
      take_piece(n, out);
      if (ec && decoder.state() == stream_state::open) {
        if (sink_.client_gone())
          break;
        read_failed(ec, end_by, r, out);
      }
      if (!out.empty() && !co_await sink_.write(out))
        break;
      if (ec || decoder.state() != stream_state::open)
        break;
    }
    if (parser_->is_done() && decoder.state() == stream_state::open
        && !sink_.client_gone()) {
      out.clear();
      decoder.finish(out);
      if (!out.empty())
        co_await sink_.write(out);
    }
    bool clean = decoder.state() == stream_state::done && parser_->is_done();
    if (!sink_.client_gone())
      co_await sink_.end();
    summarise(r);
    // Reused only after a clean end with nothing left unread.
    reusable = clean && parser_->get().keep_alive() && buffer_.size() == 0;
  }

  /// How the relayed stream ended, for the SESSION.
  void summarise(upstream_result& r) {
    r.summary = req_.stream->summary();
    if (sink_.client_gone()) {
      r.client_gone = true;
      r.failure = upstream_failure::cancelled;
      r.detail = "the client closed the connection";
    } else if (!r.summary.complete && !r.summary.policy_cut) {
      r.failure = internal_    ? upstream_failure::internal
                  : timed_out_ ? upstream_failure::timeout
                               : upstream_failure::protocol;
      r.detail = r.summary.error;
    }
  }

  Stream& stream_;
  beast::tcp_stream& lowest_;
  beast::flat_buffer& buffer_;
  const upstream_request& req_;
  downstream_sink& sink_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_;
  /// What a relayed stream reads into, `piece_size_` bytes (made by relay()).
  std::unique_ptr<char[]> piece_;
  size_t piece_size_ = 0;
  /// The translator threw (the stream ends as the gateway's failure).
  bool internal_ = false;
  /// The stream ran into a time limit.
  bool timed_out_ = false;
};

/// The streaming variant of exchange(): writes the request, waits for the
/// response headers until `deadline`; a 2xx answer is relayed to `sink`
/// piece by piece through `req.stream` (the translator), with
/// `req.idle_timeout` between reads, until `end_by` (the attempt's or the
/// request's time limit, whichever comes first); anything else is read
/// whole into `r` like exchange() does.
template <class Stream>
net::awaitable<void>
stream_exchange(Stream& stream, beast::tcp_stream& lowest,
                beast::flat_buffer& buffer, const upstream_request& req,
                clock_type::time_point deadline, clock_type::time_point end_by,
                downstream_sink& sink, bool& reusable, bool& retryable,
                upstream_result& r) {
  return stream_exchange_op<Stream>::run(stream, lowest, buffer, req, sink,
                                         deadline, end_by, reusable, retryable,
                                         r);
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
    auto idle = now - c->idle_since;
    if (idle >= max_idle_time || !c->lowest().socket().is_open())
      continue;
    // A server closes an idle connection after its keep-alive timeout,
    // seconds at the least: one used a moment ago is taken without a look
    // (a system call per request under load). If it was closed all the
    // same, call() retries on a new connection.
    if (idle < look_after_idle || c->alive())
      return c;
  }
  return nullptr;
}

void upstream_pool::give_back(const std::string& key,
                              std::unique_ptr<connection> c) {
  // A client that left cut its exchange by closing the socket, perhaps
  // after the whole answer had arrived but before the exchange saw it: the
  // exchange ends well, and the closed socket must not be reused.
  if (!c->lowest().socket().is_open())
    return;
  auto& list = idle_[key];
  if (list.size() >= max_idle_per_origin)
    return;
  c->lowest().expires_never();
  c->idle_since = clock_type::now();
  list.push_back(std::move(c));
}

namespace {

/// Lets the client's sink cut the attempt in flight: a client that leaves
/// closes the upstream socket, which ends whatever connect, write or read
/// is pending on it.
struct client_cut {
  downstream_sink* sink;
  upstream_pool::connection* current = nullptr;

  explicit client_cut(downstream_sink* s) : sink(s) {
    if (sink != nullptr)
      sink->cut_with([this] {
        if (current != nullptr && current->has_socket()) {
          boost::system::error_code ec;
          current->lowest().socket().close(ec);
        }
      });
  }

  ~client_cut() {
    if (sink != nullptr)
      sink->cut_with({});
  }

  client_cut(const client_cut&) = delete;
  client_cut& operator=(const client_cut&) = delete;

  [[nodiscard]] bool client_gone() const {
    return sink != nullptr && sink->client_gone();
  }
};

/// True, with the reason in `out`, if an attempt must not start (or go
/// on): shutdown, or a client that left. (Written into `out`: a value the
/// caller kept would stay in its coroutine frame for a stream's life.)
bool must_stop(bool stopping, const client_cut& cut, upstream_result& out) {
  if (stopping)
    out = failure(upstream_failure::cancelled, "the gateway is shutting down");
  else if (cut.client_gone())
    out = client_gone_result();
  else
    return false;
  return true;
}

/// What a call's result truly is, once it ended: a failure under shutdown
/// or after the client left (which closed the socket under the exchange)
/// was their doing, not the provider's; a timeout at the request's
/// deadline was the deadline's doing. Sets the call's elapsed time.
void conclude(upstream_result& result, bool stopping, const client_cut& cut,
              const upstream_request& req, clock_type::time_point start) {
  // (A stream says itself that its client left.)
  if (result.failure != upstream_failure::none && !result.streamed)
    must_stop(stopping, cut, result);
  auto end = clock_type::now();
  if (result.failure == upstream_failure::timeout
      && end >= req.request_deadline)
    result.past_deadline = true;
  result.elapsed
    = std::chrono::duration_cast<std::chrono::microseconds>(end - start);
  result.answer_note = req.answer_note;
}

/// Tracks a connection while an exchange uses it, so cancel_all() can
/// close it.
struct active_entry {
  std::unordered_set<upstream_pool::connection*>& set;
  upstream_pool::connection* c = nullptr;

  void track(upstream_pool::connection* x) {
    c = x;
    set.insert(x);
  }

  ~active_entry() {
    if (c != nullptr)
      set.erase(c);
  }
};

/// A relayed stream's headers leave before the SESSION sees anything: its
/// overhead header carries the time spent in the gateway before `start`.
void add_stream_overhead(upstream_request& req, clock_type::time_point start) {
  if (!req.stream || req.received == clock_type::time_point{})
    return;
  auto before = std::chrono::duration_cast<std::chrono::microseconds>(
                  start - req.received)
                - req.upstream_before;
  req.response_headers.push_back(
    {std::string{overhead_header},
     std::to_string(std::max<int64_t>(0, before.count()))});
}

} // namespace

net::awaitable<std::optional<upstream_result>>
upstream_pool::resolve(const upstream_request& req, clock_type::time_point by,
                       std::vector<tcp::endpoint>& out) {
  const auto& host = req.target.host;
  boost::system::error_code aec;
  auto address = net::ip::make_address(host, aec);
  if (!aec) {
    out.emplace_back(address, req.target.port);
    co_return std::nullopt;
  }
  // Name resolution counts against the connect timeout, and cancel_all()
  // can cut it: the resolver is shared with a timer that cancels it at
  // the deadline.
  auto lookup = std::make_shared<resolving>(ioc_, by);
  lookup->timer.async_wait([lookup](boost::system::error_code ec) {
    if (!ec) {
      lookup->timed_out = true;
      lookup->resolver.cancel();
    }
  });
  resolving_.insert(lookup.get());
  auto [ec, results] = co_await lookup->resolver.async_resolve(
    host, std::to_string(req.target.port), nothrow);
  resolving_.erase(lookup.get());
  lookup->timer.cancel();
  if (ec) {
    if (lookup->timed_out)
      co_return failure(upstream_failure::timeout,
                        "resolving the host name timed out");
    co_return failure(upstream_failure::connect,
                      "cannot resolve the host name: " + ec.message());
  }
  for (const auto& found : results)
    out.push_back(found.endpoint());
  co_return std::nullopt;
}

net::awaitable<std::optional<upstream_result>>
upstream_pool::handshake(connection& conn, const std::string& host) {
  // SNI names the host (not for IP literals, RFC 6066); the peer's
  // certificate must match it.
  if (!is_ip_literal(host)
      && !SSL_set_tlsext_host_name(conn.tls->native_handle(), host.c_str()))
    co_return failure(upstream_failure::tls, "cannot set SNI");
  conn.tls->set_verify_callback(ssl::host_name_verification(host));
  auto [ec]
    = co_await conn.tls->async_handshake(ssl::stream_base::client, nothrow);
  if (!ec)
    co_return std::nullopt;
  if (ec == beast::error::timeout)
    co_return failure(upstream_failure::timeout, "the TLS handshake timed out");
  co_return failure(upstream_failure::tls,
                    "the TLS handshake failed: " + ec.message());
}

net::awaitable<bool> upstream_pool::dial(const upstream_request& req,
                                         clock_type::time_point by,
                                         connection& conn,
                                         upstream_result& failed) {
  auto why = co_await open(req, by, conn);
  if (!why)
    co_return true;
  failed = std::move(*why);
  co_return false;
}

net::awaitable<std::optional<upstream_result>>
upstream_pool::open(const upstream_request& req, clock_type::time_point by,
                    connection& conn) {
  std::vector<tcp::endpoint> endpoints;
  if (auto failed = co_await resolve(req, by, endpoints))
    co_return failed;
  if (stopping_)
    co_return failure(upstream_failure::cancelled,
                      "the gateway is shutting down");
  if (req.target.tls) {
    std::string why;
    auto* ctx = tls_->get(req.ca_file, why);
    if (ctx == nullptr)
      co_return failure(upstream_failure::tls, why);
    conn.tls
      = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, *ctx);
  } else {
    conn.plain = std::make_unique<beast::tcp_stream>(ioc_);
  }
  active_.insert(&conn);
  auto& low = conn.lowest();
  low.expires_at(by);
  auto [ec, ep] = co_await low.async_connect(endpoints, nothrow);
  if (ec) {
    if (ec == beast::error::timeout)
      co_return failure(upstream_failure::timeout, "connecting timed out");
    co_return failure(upstream_failure::connect,
                      "connecting failed: " + ec.message());
  }
  boost::system::error_code nec;
  low.socket().set_option(tcp::no_delay(true), nec);
  if (conn.tls)
    co_return co_await handshake(conn, req.target.host);
  co_return std::nullopt;
}

// Not a coroutine itself: it hands back the exchange's own, so an open
// stream keeps one coroutine frame less (every frame of the chain stays
// allocated for the stream's life). The caller awaits it at once, while
// everything passed by reference lives.
net::awaitable<void> upstream_pool::exchange_on(
  connection& conn, const upstream_request& req, downstream_sink* sink,
  clock_type::time_point first_byte, clock_type::time_point deadline,
  bool& reusable, bool& retryable, upstream_result& result) {
  if (req.stream && sink != nullptr) {
    // A stream's headers must come within min(timeout, first byte); its
    // last byte within the attempt's timeout and the request's deadline.
    auto headers_by = std::min(deadline, first_byte);
    auto end_by = std::min(deadline, req.request_deadline);
    if (conn.tls)
      return stream_exchange(*conn.tls, conn.lowest(), conn.buffer, req,
                             headers_by, end_by, *sink, reusable, retryable,
                             result);
    return stream_exchange(*conn.plain, conn.lowest(), conn.buffer, req,
                           headers_by, end_by, *sink, reusable, retryable,
                           result);
  }
  if (conn.tls)
    return exchange(*conn.tls, conn.lowest(), conn.buffer, req, first_byte,
                    deadline, reusable, retryable, result);
  return exchange(*conn.plain, conn.lowest(), conn.buffer, req, first_byte,
                  deadline, reusable, retryable, result);
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
  add_stream_overhead(req, start);
  auto key = req.target.origin() + "|" + req.ca_file;
  upstream_result result;
  client_cut cut{sink.get()};
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (must_stop(stopping_, cut, result))
      break;
    // The retry after a stale pooled connection always dials afresh.
    auto conn = attempt == 0 ? take_idle(key) : nullptr;
    bool reused = conn != nullptr;
    // Declared after `conn`, so they let go first.
    active_entry entry{active_};
    struct current_attempt {
      client_cut& cut;
      ~current_attempt() { cut.current = nullptr; }
    } attempt_guard{cut};
    if (conn) {
      entry.track(conn.get());
      cut.current = conn.get();
    } else {
      conn = std::make_unique<connection>();
      cut.current = conn.get();
      entry.c = conn.get(); // dial() tracks it once it has a socket
      auto by = std::min(deadline, clock_type::now() + req.connect_timeout);
      if (!co_await dial(req, by, *conn, result))
        break;
    }
    if (must_stop(stopping_, cut, result))
      break; // while the connection opened
    bool reusable = false;
    bool retryable = false;
    co_await exchange_on(*conn, req, sink.get(), first_byte, deadline, reusable,
                         retryable, result);
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
  conclude(result, stopping_, cut, req, start);
  co_return result;
}

} // namespace pw::http
