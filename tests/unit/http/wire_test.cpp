// The wire form of a message (http/wire.hpp) against Beast's own
// serializer: the same bytes for every shape the gateway sends (answers
// with a length, HEAD answers, chunked answers, upstream requests with and
// without a body), so replacing the serializer changed nothing on the wire.

#include "http/wire.hpp"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/write.hpp>
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

using namespace pw::http;
namespace bhttp = boost::beast::http;

namespace {

/// What Beast's serializer writes for `msg`.
template <bool isRequest, class Body>
std::string by_beast(const bhttp::message<isRequest, Body>& msg) {
  std::ostringstream out;
  out << msg;
  return out.str();
}

std::string joined(const wire_message& w) {
  std::string out;
  for (const auto& b : w.buffers())
    out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}

bhttp::response<bhttp::string_body> answer(unsigned status, unsigned version,
                                           std::string body) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status),
                                          version};
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Request-Id", "req-1");
  res.set("X-Content-Type-Options", "nosniff");
  res.set(bhttp::field::retry_after, "3");
  res.body() = std::move(body);
  return res;
}

} // namespace

TEST_CASE("an answer with a length is written as Beast writes it") {
  for (unsigned version : {10u, 11u}) {
    for (unsigned status : {200u, 400u, 404u, 429u, 502u, 504u}) {
      for (bool keep_alive : {true, false}) {
        INFO(version << " " << status << " " << keep_alive);
        auto res = answer(status, version, R"({"id":"x","ok":true})");
        res.keep_alive(keep_alive);
        res.prepare_payload();
        CHECK(joined(to_wire(res)) == by_beast(res));
      }
    }
  }
}

TEST_CASE("a HEAD answer carries the length and no body") {
  auto res = answer(200, 11, "");
  res.content_length(1234);
  CHECK(joined(to_wire(res)) == by_beast(res));
  CHECK(joined(to_wire(res)).ends_with("Content-Length: 1234\r\n\r\n"));
}

TEST_CASE("a chunked answer is one chunk and the last chunk") {
  for (size_t size :
       {size_t{1}, size_t{15}, size_t{16}, size_t{4096}, size_t{70'000}}) {
    INFO(size);
    auto res = answer(200, 11, std::string(size, 'd'));
    res.set(bhttp::field::content_type, "text/event-stream");
    res.chunked(true);
    CHECK(joined(to_wire(res)) == by_beast(res));
  }
}

TEST_CASE("an empty chunked answer is the last chunk alone") {
  // Beast 1.81 writes an empty chunk first ("0\r\n\r\n"), which a client
  // reads as the end: the last chunk after it would be left on a kept-alive
  // connection as the start of the next answer.
  auto res = answer(200, 11, "");
  res.chunked(true);
  auto beast = by_beast(res);
  auto ours = joined(to_wire(res));
  CHECK(beast.ends_with("\r\n\r\n0\r\n\r\n0\r\n\r\n"));
  CHECK(ours == beast.substr(0, beast.size() - 5));
  CHECK(ours.ends_with("chunked\r\n\r\n0\r\n\r\n"));
}

TEST_CASE("an upstream request is written as prepare_payload and Beast "
          "would, without copying its body") {
  for (auto method : {bhttp::verb::post, bhttp::verb::get, bhttp::verb::put,
                      bhttp::verb::options, bhttp::verb::delete_}) {
    for (std::string body : {std::string{}, std::string{R"({"model":"m"})"}}) {
      INFO(bhttp::to_string(method) << " body " << body.size());
      bhttp::request<bhttp::string_body> beast{method, "/v1/chat/completions",
                                               11};
      beast.set(bhttp::field::host, "127.0.0.1:8080");
      beast.set(bhttp::field::user_agent, "pw-router/test");
      beast.set("Authorization", "Bearer sk-up");
      beast.body() = body;
      beast.prepare_payload();

      bhttp::request<bhttp::empty_body> ours{method, "/v1/chat/completions",
                                             11};
      ours.set(bhttp::field::host, "127.0.0.1:8080");
      ours.set(bhttp::field::user_agent, "pw-router/test");
      ours.set("Authorization", "Bearer sk-up");
      set_payload_length(ours, body.size());
      auto wire = to_wire(ours.base(), body, false);
      CHECK(joined(wire) == by_beast(beast));
      // The body is the caller's, not a copy.
      CHECK((body.empty() || wire.body.data() == body.data()));
    }
  }
}
