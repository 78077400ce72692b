#include "tests/support/fake_upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <thread>

namespace pw::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);

} // namespace

struct fake_upstream::impl {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::optional<ssl::context> tls;
  std::thread thread;
  mutable std::mutex mtx;
  mutable std::condition_variable cv;
  fake_handler handler;
  std::vector<fake_request> received;
  size_t connections = 0;
  size_t cuts = 0;

  fake_handler current_handler() {
    std::lock_guard<std::mutex> guard{mtx};
    return handler;
  }

  void record(const fake_request& req) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      received.push_back(req);
    }
    cv.notify_all();
  }

  /// Waits `delay`; true if the peer closed the connection meanwhile.
  template <class Stream>
  net::awaitable<bool> wait_or_cut(Stream& stream,
                                   std::chrono::milliseconds delay) {
    auto& sock = beast::get_lowest_layer(stream).socket();
    net::steady_timer timer{ioc, delay};
    bool cut = false;
    // Watch for the peer's close while waiting: a read-side wait that
    // never consumes data.
    sock.async_wait(
      net::socket_base::wait_read,
      [&cut, &timer, &sock](boost::system::error_code ec) {
        if (ec)
          return;
        char byte = 0;
        if (::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT)
            == 0) {
          cut = true;
          timer.cancel();
        }
      });
    co_await timer.async_wait(nothrow);
    boost::system::error_code ec;
    sock.cancel(ec);
    // Let the cancelled wait's handler run before its captures go.
    co_await net::post(ioc, net::use_awaitable);
    co_return cut;
  }

  void record_cut() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      ++cuts;
    }
    cv.notify_all();
  }

  /// Sends a chunked answer piece by piece; false once the peer is gone.
  template <class Stream>
  net::awaitable<bool> stream_chunks(Stream& stream, unsigned version,
                                     const fake_response& response) {
    bhttp::response<bhttp::empty_body> res{
      static_cast<bhttp::status>(response.status), version};
    res.set(bhttp::field::content_type, response.content_type);
    for (const auto& [k, v] : response.headers)
      res.set(k, v);
    res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    auto [hec, hn] = co_await bhttp::async_write_header(stream, sr, nothrow);
    if (hec)
      co_return false;
    for (const auto& chunk : response.chunks) {
      if (chunk.delay.count() > 0
          && co_await wait_or_cut(stream, chunk.delay)) {
        record_cut();
        co_return false;
      }
      auto [wec, wn] = co_await net::async_write(
        stream, bhttp::make_chunk(net::buffer(chunk.data)), nothrow);
      if (wec) {
        record_cut();
        co_return false;
      }
    }
    if (response.stall.count() > 0) {
      if (co_await wait_or_cut(stream, response.stall)) {
        record_cut();
        co_return false;
      }
    }
    if (!response.finish)
      co_return true;
    auto [lec, ln]
      = co_await net::async_write(stream, bhttp::make_chunk_last(), nothrow);
    co_return !lec;
  }

  template <class Stream>
  net::awaitable<void> serve_on(Stream& stream, size_t conn_id,
                                std::string sni) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      auto [ec, n]
        = co_await bhttp::async_read(stream, buffer, parser, nothrow);
      if (ec)
        co_return;
      req = parser.release();
      fake_request rec;
      rec.method = std::string{req.method_string()};
      rec.target = std::string{req.target()};
      for (const auto& field : req) {
        std::string name{field.name_string()};
        for (auto& c : name)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        // A repeated header reads as HTTP combines it: "first, second".
        auto [at, fresh]
          = rec.headers.emplace(name, std::string{field.value()});
        if (!fresh)
          at->second += ", " + std::string{field.value()};
      }
      rec.body = req.body();
      rec.sni = sni;
      rec.connection = conn_id;
      record(rec);
      auto response = current_handler()(rec);
      if (response.delay.count() > 0
          && co_await wait_or_cut(stream, response.delay)) {
        record_cut();
        co_return;
      }
      if (response.drop)
        co_return;
      if (response.raw) {
        co_await net::async_write(stream, net::buffer(*response.raw), nothrow);
        co_return;
      }
      if (!response.chunks.empty()) {
        if (!co_await stream_chunks(stream, req.version(), response))
          co_return;
        if (!response.finish)
          co_return;
        continue;
      }
      if (!response.interim.empty()) {
        auto [iec, in] = co_await net::async_write(
          stream, net::buffer(response.interim), nothrow);
        if (iec)
          co_return;
      }
      bhttp::response<bhttp::string_body> res{
        static_cast<bhttp::status>(response.status), req.version()};
      res.set(bhttp::field::content_type, response.content_type);
      for (const auto& [k, v] : response.headers)
        res.set(k, v);
      res.body() = response.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await bhttp::async_write(stream, res, nothrow);
      if (wec || !res.keep_alive())
        co_return;
    }
  }

  net::awaitable<void> serve(tcp::socket sock, size_t conn_id) {
    if (!tls) {
      beast::tcp_stream stream{std::move(sock)};
      co_await serve_on(stream, conn_id, {});
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream{std::move(sock), *tls};
    auto [hec]
      = co_await stream.async_handshake(ssl::stream_base::server, nothrow);
    if (hec)
      co_return;
    const char* name
      = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    co_await serve_on(stream, conn_id, name ? name : "");
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(nothrow);
      if (ec)
        co_return;
      size_t id = 0;
      {
        std::lock_guard<std::mutex> guard{mtx};
        id = connections++;
      }
      net::co_spawn(ioc, serve(std::move(sock), id), net::detached);
    }
  }
};

fake_upstream::fake_upstream(fake_handler handler, std::optional<tls_files> tls)
    : impl_(std::make_unique<impl>()) {
  impl_->handler = std::move(handler);
  if (tls) {
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(tls->cert_chain);
    impl_->tls->use_private_key_file(tls->private_key, ssl::context::pem);
  }
  tcp::endpoint ep{net::ip::make_address("127.0.0.1"), 0};
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached);
  impl_->thread = std::thread{[p = impl_.get()] { p->ioc.run(); }};
}

fake_upstream::~fake_upstream() {
  impl_->ioc.stop();
  impl_->thread.join();
}

uint16_t fake_upstream::port() const {
  return impl_->acceptor.local_endpoint().port();
}

std::string fake_upstream::base_url(const std::string& host) const {
  return std::string{impl_->tls ? "https://" : "http://"} + host + ":"
         + std::to_string(port());
}

std::vector<fake_request> fake_upstream::requests() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->received;
}

bool fake_upstream::wait_for_requests(size_t n,
                                      std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> guard{impl_->mtx};
  return impl_->cv.wait_for(guard, timeout,
                            [&] { return impl_->received.size() >= n; });
}

size_t fake_upstream::connections_opened() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->connections;
}

bool fake_upstream::wait_for_cut(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> guard{impl_->mtx};
  return impl_->cv.wait_for(guard, timeout, [&] { return impl_->cuts > 0; });
}

void fake_upstream::set_handler(fake_handler handler) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  impl_->handler = std::move(handler);
}

std::string sse(const std::string& data, const std::string& event) {
  std::string out;
  if (!event.empty())
    out += "event: " + event + "\n";
  return out + "data: " + data + "\n\n";
}

std::vector<fake_chunk> openai_stream(const std::vector<std::string>& pieces,
                                      std::chrono::milliseconds gap) {
  std::vector<fake_chunk> out;
  auto chunk = [](nlohmann::json delta, nlohmann::json finish) {
    nlohmann::ordered_json c
      = {{"id", "chatcmpl-fake-stream"},
         {"object", "chat.completion.chunk"},
         {"created", 1700000000},
         {"model", "upstream-model"},
         {"choices",
          nlohmann::json::array({{{"index", 0},
                                  {"delta", std::move(delta)},
                                  {"finish_reason", std::move(finish)}}})}};
    return sse(c.dump());
  };
  out.push_back(
    {gap, chunk({{"role", "assistant"}, {"content", ""}}, nullptr)});
  for (const auto& p : pieces)
    out.push_back({gap, chunk({{"content", p}}, nullptr)});
  out.push_back({gap, chunk(nlohmann::json::object(), "stop")});
  out.push_back({gap, sse("[DONE]")});
  return out;
}

std::vector<fake_chunk> anthropic_stream(const std::vector<std::string>& pieces,
                                         std::chrono::milliseconds gap) {
  std::vector<fake_chunk> out;
  auto ev = [](const std::string& type, nlohmann::json data) {
    data["type"] = type;
    return sse(data.dump(), type);
  };
  out.push_back(
    {gap, ev("message_start",
             {{"message",
               {{"id", "msg_fake"},
                {"type", "message"},
                {"role", "assistant"},
                {"content", nlohmann::json::array()},
                {"usage", {{"input_tokens", 11}, {"output_tokens", 1}}}}}})});
  out.push_back(
    {gap,
     ev("content_block_start",
        {{"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}})});
  for (const auto& p : pieces)
    out.push_back(
      {gap,
       ev("content_block_delta",
          {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", p}}}})});
  out.push_back({gap, ev("content_block_stop", {{"index", 0}})});
  out.push_back(
    {gap, ev("message_delta", {{"delta", {{"stop_reason", "end_turn"}}},
                               {"usage", {{"output_tokens", 7}}}})});
  out.push_back({gap, ev("message_stop", nlohmann::json::object())});
  return out;
}

std::string openai_completion(const std::string& model,
                              const std::string& content) {
  nlohmann::ordered_json body = {
    {"id", "chatcmpl-fake-1"},
    {"object", "chat.completion"},
    {"created", 1700000000},
    {"model", model},
    {"choices", nlohmann::ordered_json::array(
                  {{{"index", 0},
                    {"message", {{"role", "assistant"}, {"content", content}}},
                    {"finish_reason", "stop"}}})},
    {"usage",
     {{"prompt_tokens", 12}, {"completion_tokens", 5}, {"total_tokens", 17}}},
  };
  return body.dump();
}

} // namespace pw::test
