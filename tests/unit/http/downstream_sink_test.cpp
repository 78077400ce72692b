// The stream sink's writes on a real loopback connection: a piece the
// socket takes at once and a piece larger than the socket's buffers (sent
// in part at once, the rest by the timed write as the client reads) both
// reach the client whole, in order and in their framing, for HTTP/1.1
// (chunks) and HTTP/1.0 (the bytes as they are).

#include "http/client_stream.hpp"
#include "http/downstream_sink.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// What the client read until the server closed, and what the sink said.
struct relayed {
  std::string bytes;
  bool began = false;
  std::vector<bool> written;
};

/// Serves one connection: the stream's head, then each piece through a
/// downstream_sink, then its end; a client thread with a small receive
/// buffer reads everything.
relayed relay(unsigned version, const std::vector<std::string>& parts) {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  auto port = acceptor.local_endpoint().port();
  relayed out;
  std::thread client{[&out, port] {
    net::io_context cio;
    tcp::socket s{cio};
    s.open(tcp::v4());
    s.set_option(net::socket_base::receive_buffer_size{4096});
    s.connect({net::ip::make_address("127.0.0.1"), port});
    std::array<char, 4096> buf{};
    boost::system::error_code ec;
    for (;;) {
      auto n = s.read_some(net::buffer(buf), ec);
      if (ec)
        break;
      out.bytes.append(buf.data(), n);
    }
  }};
  auto server = acceptor.accept();
  server.set_option(net::socket_base::send_buffer_size{4096});
  pw::http::client_stream stream{std::move(server), nullptr};
  auto deadline = std::make_shared<net::steady_timer>(ioc);
  auto sink = std::make_shared<pw::http::downstream_sink>(stream, version, 10s,
                                                          deadline);
  net::co_spawn(
    ioc,
    [&]() -> net::awaitable<void> {
      // (co_await outside Catch's macros, which may expand it twice.)
      out.began = co_await sink->begin("req-1", {});
      for (const auto& p : parts) {
        bool written = co_await sink->write(p);
        out.written.push_back(written);
      }
      co_await sink->end();
      sink->detach();
      boost::system::error_code ec;
      stream.lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      stream.lowest().socket().close(ec);
    },
    net::detached);
  ioc.run();
  client.join();
  return out;
}

std::string body_of(const std::string& bytes) {
  auto at = bytes.find("\r\n\r\n");
  REQUIRE(at != std::string::npos);
  return bytes.substr(at + 4);
}

/// Pieces whose bytes say where they are: a misplaced byte shows.
std::vector<std::string> pieces() {
  std::string big;
  for (int i = 0; big.size() < (1 << 20); ++i)
    big += "event " + std::to_string(i) + "\n";
  return {"data: first\n\n", big, "data: last\n\n"};
}

} // namespace

TEST_CASE("stream pieces reach the client whole and in order, also those "
          "larger than the socket takes at once") {
  auto p = pieces();
  SECTION("HTTP/1.1: one chunk per piece") {
    auto r = relay(11, p);
    CHECK(r.began);
    CHECK(r.written == std::vector<bool>{true, true, true});
    std::string expected;
    for (const auto& piece : p) {
      char size[20];
      expected += std::string{size, static_cast<size_t>(std::snprintf(
                                      size, sizeof size, "%zx", piece.size()))}
                  + "\r\n" + piece + "\r\n";
    }
    expected += "0\r\n\r\n";
    REQUIRE(r.bytes.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(body_of(r.bytes) == expected);
  }
  SECTION("HTTP/1.0: the bytes as they are") {
    auto r = relay(10, p);
    CHECK(r.began);
    CHECK(r.written == std::vector<bool>{true, true, true});
    REQUIRE(r.bytes.starts_with("HTTP/1.0 200 OK\r\n"));
    CHECK(body_of(r.bytes) == p[0] + p[1] + p[2]);
  }
}
