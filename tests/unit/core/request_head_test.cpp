#include "core/errc.hpp"
#include "core/request/request_head.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace pw;

namespace {

request_head
head_with(std::vector<std::pair<std::string_view, std::string_view>> fields,
          unsigned version = 11) {
  request_head h;
  h.version = version;
  h.target = "/v1/chat/completions";
  h.fields = {{"Host", "x"}};
  h.fields.insert(h.fields.end(), fields.begin(), fields.end());
  return h;
}

errc verdict(const request_head& h) {
  auto err = check_request_head(h);
  return err ? code_of(err) : errc::none;
}

} // namespace

TEST_CASE("an ordinary head passes") {
  CHECK(verdict(head_with({{"Content-Length", "42"}})) == errc::none);
  CHECK(verdict(head_with({{"transfer-encoding", " Chunked "}})) == errc::none);
  CHECK(verdict(head_with({})) == errc::none);
  request_head old;
  old.version = 10;
  old.target = "/health";
  CHECK(verdict(old) == errc::none); // HTTP/1.0 needs no Host
}

TEST_CASE("anything that could smuggle a request is a 400") {
  for (const auto& fields :
       std::vector<std::vector<std::pair<std::string_view, std::string_view>>>{
         {{"Content-Length", "5"}, {"Content-Length", "5"}},
         {{"Content-Length", "5, 5"}},
         {{"Content-Length", "5"}, {"content-length", "6"}},
         {{"Content-Length", "+5"}},
         {{"Content-Length", "0x10"}},
         {{"Content-Length", ""}},
         {{"Transfer-Encoding", "gzip"}},
         {{"Transfer-Encoding", "chunked, gzip"}},
         {{"Transfer-Encoding", "gzip, chunked"}},
         {{"Transfer-Encoding", "identity"}},
         {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
         {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}},
       }) {
    auto h = head_with(fields);
    INFO(fields.front().first << ": " << fields.front().second);
    CHECK(verdict(h) == errc::invalid_request);
  }
  CHECK(verdict(head_with({{"Transfer-Encoding", "chunked"}}, 10))
        == errc::invalid_request);
}

TEST_CASE("HTTP/1.1 needs exactly one Host") {
  request_head h;
  h.target = "/";
  CHECK(verdict(h) == errc::invalid_request);
  h.fields = {{"Host", "a"}, {"host", "b"}};
  CHECK(verdict(h) == errc::invalid_request);
  CHECK(message_of(check_request_head(h))
        == "An HTTP/1.1 request needs exactly one Host header");
}

TEST_CASE("limits with their own statuses: 414, 431, 501") {
  std::string long_target(max_target_bytes + 1, 'a');
  auto h = head_with({});
  h.target = long_target;
  CHECK(verdict(h) == errc::uri_too_long);
  auto many = head_with({});
  for (size_t i = 0; i < max_header_fields; ++i)
    many.fields.emplace_back("X-Filler", "1");
  CHECK(verdict(many) == errc::headers_too_large);
  auto odd = head_with({});
  odd.method_known = false;
  CHECK(verdict(odd) == errc::not_implemented);
}
