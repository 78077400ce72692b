// Hostile HTTP at the edge, over raw sockets against the real binary: every
// request that could smuggle another is refused with 400 and a closed
// connection, and nothing of it reaches the upstream; limits answer with
// their own statuses; slow and idle clients are cut by deadlines.

#include "tests/integration/common.hpp"

#include <atomic>
#include <set>
#include <thread>
#include <tuple>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

const std::string body = chat_body("gpt", "smuggled?");

std::string head(const std::string& request_line, const std::string& fields) {
  return request_line + "\r\n" + fields + "Authorization: Bearer " + full_key
         + "\r\nContent-Type: application/json\r\n\r\n";
}

std::string post(const std::string& fields) {
  return head("POST /v1/chat/completions HTTP/1.1", "Host: x\r\n" + fields);
}

std::string chunked(const std::string& data) {
  std::ostringstream out;
  out << std::hex << data.size() << "\r\n" << data << "\r\n0\r\n\r\n";
  return out.str();
}

/// A second, complete request: if the gateway ever lost the framing, the
/// upstream would see it.
const std::string follow_up
  = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    + full_key + "\r\nContent-Type: application/json\r\nContent-Length: "
    + std::to_string(body.size()) + "\r\n\r\n" + body;

struct answer {
  std::string text;
  bool closed = false;
};

answer send_raw(const gateway_process& gw, const std::string& bytes) {
  raw_connection conn{gw.port()};
  REQUIRE(conn.send(bytes));
  answer a;
  a.text = conn.read_until_close(10s, a.closed);
  return a;
}

std::string length(size_t n) {
  return "Content-Length: " + std::to_string(n) + "\r\n";
}

} // namespace

TEST_CASE("requests that could smuggle another are refused, and nothing "
          "reaches the upstream") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  struct hostile {
    const char* what;
    std::string bytes;
  };
  const std::vector<hostile> cases{
    {"Content-Length then Transfer-Encoding",
     post(length(body.size()) + "Transfer-Encoding: chunked\r\n")
       + chunked(body) + follow_up},
    {"Transfer-Encoding then Content-Length",
     post("Transfer-Encoding: chunked\r\n" + length(body.size()))
       + chunked(body) + follow_up},
    {"two equal Content-Length",
     post(length(body.size()) + length(body.size())) + body + follow_up},
    {"two different Content-Length",
     post(length(body.size()) + length(body.size() + 1)) + body + follow_up},
    {"a Content-Length list",
     post("Content-Length: " + std::to_string(body.size()) + ", "
          + std::to_string(body.size()) + "\r\n")
       + body + follow_up},
    {"Transfer-Encoding gzip", post("Transfer-Encoding: gzip\r\n") + follow_up},
    {"Transfer-Encoding gzip with a length",
     post("Transfer-Encoding: gzip\r\n" + length(body.size())) + body
       + follow_up},
    {"Transfer-Encoding chunked, gzip",
     post("Transfer-Encoding: chunked, gzip\r\n") + chunked(body) + follow_up},
    {"Transfer-Encoding twice",
     post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")
       + chunked(body) + follow_up},
    {"a malformed chunk size", post("Transfer-Encoding: chunked\r\n") + "zz\r\n"
                                 + body + "\r\n0\r\n\r\n" + follow_up},
    {"a chunk size with junk", post("Transfer-Encoding: chunked\r\n")
                                 + "5;\x01\r\nhello\r\n0\r\n\r\n" + follow_up},
    {"chunked on HTTP/1.0", head("POST /v1/chat/completions HTTP/1.0",
                                 "Transfer-Encoding: chunked\r\n")
                              + chunked(body) + follow_up},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto a = send_raw(gw, c.bytes);
    CHECK(a.text.starts_with("HTTP/1.1 400"));
    CHECK(a.text.find("\"invalid_request_error\"") != std::string::npos);
    CHECK(a.closed);
  }
  CHECK(gw.running());
  CHECK(upstream.requests().empty());
  // The gateway still serves the honest request.
  auto ok = http_request(gw.port(), "POST", "/v1/chat/completions", body,
                         auth_json(full_key));
  CHECK(ok.status == 200);
  CHECK(upstream.requests().size() == 1);
}

TEST_CASE("limits and protocol errors answer with their own statuses") {
  fake_upstream upstream{answer_ok()};
  gateway_process gw{
    make_config(openai_model("gpt", upstream.base_url()), "gpt")};
  auto status_of = [&](const std::string& bytes) {
    auto a = send_raw(gw, bytes);
    CHECK(a.closed);
    return a.text.substr(0, 12);
  };
  // HTTP/1.1 without Host.
  CHECK(
    status_of(head("POST /v1/chat/completions HTTP/1.1", length(body.size()))
              + body)
    == "HTTP/1.1 400");
  // Another HTTP version.
  CHECK(status_of("GET /health HTTP/2.0\r\nHost: x\r\n\r\n") == "HTTP/1.1 505");
  CHECK(status_of("GET /health HTTP/1.2\r\nHost: x\r\n\r\n") == "HTTP/1.1 505");
  // A method HTTP does not define.
  CHECK(status_of("BREW /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n")
        == "HTTP/1.1 501");
  // A long target: over the limit but within the header size, and one
  // longer than the whole header limit.
  CHECK(
    status_of("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n")
    == "HTTP/1.1 414");
  CHECK(status_of("GET /" + std::string(20000, 'a')
                  + " HTTP/1.1\r\nHost: x\r\n\r\n")
        == "HTTP/1.1 414");
  // Too many header fields, each small.
  std::string many;
  for (int i = 0; i < 150; ++i)
    many += "X-F" + std::to_string(i) + ": 1\r\n";
  CHECK(status_of("GET /health HTTP/1.1\r\nHost: x\r\n" + many + "\r\n")
        == "HTTP/1.1 431");
  CHECK(gw.running());
  CHECK(upstream.requests().empty());
}

TEST_CASE("a client that trickles its headers is cut at the header deadline") {
  gateway_process gw{
    make_config(echo_model, "echo", "  header_timeout_seconds: 1\n")};
  raw_connection conn{gw.port()};
  const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
                              + std::string(200, 'a') + "\r\n\r\n";
  // One byte every 50 ms would take 11 s: each byte is progress, but the
  // deadline is for the whole head.
  bool cut = false;
  for (size_t i = 0; i < request.size() && !cut; ++i) {
    cut = !conn.send(request.substr(i, 1));
    std::this_thread::sleep_for(50ms); // pacing the client, not waiting
  }
  bool closed = false;
  auto rest = conn.read_until_close(5s, closed);
  CHECK((cut || closed));
  CHECK(rest.find("200 OK") == std::string::npos);
  CHECK(gw.running());
}

TEST_CASE("an idle keep-alive connection is closed after its timeout") {
  gateway_process gw{
    make_config(echo_model, "echo", "  keepalive_timeout_seconds: 1\n")};
  raw_connection conn{gw.port()};
  REQUIRE(conn.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  bool closed = false;
  auto text = conn.read_until_close(10s, closed);
  CHECK(text.starts_with("HTTP/1.1 200"));
  CHECK(closed); // the server closed it: nothing else ended the read
}

TEST_CASE("under a slowloris of 300 connections a normal request is served") {
  gateway_process gw{make_config(echo_model, "echo")};
  std::vector<std::unique_ptr<raw_connection>> loris;
  for (int i = 0; i < 300; ++i) {
    loris.push_back(std::make_unique<raw_connection>(gw.port()));
    REQUIRE(
      loris.back()->send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"));
  }
  for (int i = 0; i < 5; ++i) {
    auto r = http_request(gw.port(), "POST", "/v1/chat/completions",
                          chat_body("echo"), auth_json(full_key));
    CHECK(r.status == 200);
  }
  CHECK(gw.running());
}

namespace {

/// The `content` of the first message of each chat request an upstream saw.
std::multiset<std::string> contents(const fake_upstream& u) {
  std::multiset<std::string> out;
  for (const auto& r : u.requests()) {
    if (r.method != "POST")
      continue;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_object())
      out.insert(j["messages"][0]["content"].get<std::string>());
  }
  return out;
}

} // namespace

TEST_CASE("200 keep-alive clients: every request answered once, seen once "
          "upstream, with failures, one answer each") {
  constexpr int clients = 200;
  constexpr int per_client = 20;
  fake_upstream primary{answer_ok("primary")};
  fake_upstream secondary{answer_ok("secondary")};
  gateway_process gw{make_config(
    openai_model("primary", primary.base_url())
      + openai_model("secondary", secondary.base_url()),
    "primary", "",
    "  fallback_chains:\n    main: [\"primary\", \"secondary\"]\n"
    "health:\n  check_interval_seconds: 0\n  unhealthy_threshold: 1000\n")};

  auto run_load = [&](const std::string& phase) {
    std::atomic<int> ok{0};
    std::atomic<int> enveloped{0};
    std::atomic<int> broken{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        try {
          http_client client{gw.port(), 30s};
          for (int i = 0; i < per_client; ++i) {
            auto id = phase + "-" + std::to_string(c) + "-" + std::to_string(i);
            auto r
              = client.request("POST", "/v1/chat/completions",
                               chat_body("primary", id), auth_json(full_key));
            auto j = nlohmann::json::parse(r.body, nullptr, false);
            if (r.status == 200 && j.contains("choices"))
              ++ok;
            else if (j.contains("error"))
              ++enveloped;
            else
              ++broken;
          }
        } catch (const std::exception&) {
          ++broken;
        }
      });
    for (auto& t : threads)
      t.join();
    return std::tuple{ok.load(), enveloped.load(), broken.load()};
  };

  // A healthy upstream: exactly the requests sent, each once.
  auto [ok, enveloped, broken] = run_load("a");
  CHECK(ok == clients * per_client);
  CHECK(enveloped == 0);
  CHECK(broken == 0);
  std::multiset<std::string> sent;
  for (int c = 0; c < clients; ++c)
    for (int i = 0; i < per_client; ++i)
      sent.insert("a-" + std::to_string(c) + "-" + std::to_string(i));
  CHECK(contents(primary) == sent);
  CHECK(contents(secondary).empty());

  // One primary answer in four fails: the fallback serves those, nothing
  // is served twice, nobody is left without an answer.
  std::atomic<int> n{0};
  primary.set_handler([&n](const fake_request& req) {
    if (n++ % 4 == 0) {
      fake_response f;
      f.status = 503;
      return f;
    }
    return answer_ok("primary")(req);
  });
  auto [ok2, enveloped2, broken2] = run_load("b");
  CHECK(ok2 == clients * per_client);
  CHECK(enveloped2 == 0);
  CHECK(broken2 == 0);
  std::multiset<std::string> served;
  for (const auto& s : contents(primary))
    if (s.starts_with("b-"))
      served.insert(s);
  // Each request reached the primary once; the failed ones reached the
  // secondary once; no request reached an upstream twice in one place.
  std::set<std::string> unique_primary(served.begin(), served.end());
  CHECK(unique_primary.size() == served.size());
  CHECK(served.size() == static_cast<size_t>(clients * per_client));
  auto second = contents(secondary);
  std::set<std::string> unique_second(second.begin(), second.end());
  CHECK(unique_second.size() == second.size());
  CHECK(second.size() > 0);
  CHECK(gw.running());
}
