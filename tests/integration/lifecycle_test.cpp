// The gateway's life: SIGHUP reloads (valid and invalid), breaker state kept
// across a reload, SIGTERM letting a running stream finish, and systemd's
// readiness messages.

#include "tests/integration/common.hpp"

#include <csignal>
#include <cstring>
#include <memory>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace pw::test;
using namespace std::chrono_literals;

namespace {

const std::string other_key = "sk-test-reloaded-key-5e6f";

std::string with_key(std::string config, const std::string& key) {
  auto pos = config.find(full_key);
  config.replace(pos, full_key.size(), key);
  return config;
}

http_response ask(const gateway_process& gw, const std::string& model,
                  const std::string& key = full_key) {
  return http_request(gw.port(), "POST", "/v1/chat/completions",
                      chat_body(model), auth_json(key));
}

/// A Unix datagram socket standing in for systemd's $NOTIFY_SOCKET.
class notify_socket {
public:
  notify_socket() {
    char dir[] = "/tmp/pw-notify-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    dir_ = dir;
    path_ = dir_ + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }

  ~notify_socket() {
    ::close(fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

  /// The next message, or "" if none arrives within `timeout`.
  std::string next(std::chrono::milliseconds timeout = 10s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1)
      return {};
    char buf[512];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
  }

private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

} // namespace

TEST_CASE("under systemd the gateway says READY, RELOADING and STOPPING") {
  notify_socket systemd;
  gateway_process gw{make_config(echo_model, "echo"),
                     {{"NOTIFY_SOCKET", systemd.path()}}};
  auto ready = systemd.next();
  CHECK(ready.starts_with("READY=1\nSTATUS=serving on "));
  CHECK(ready.ends_with(":" + std::to_string(gw.port())));
  // Ready means serving: a request right after the message is answered.
  CHECK(ask(gw, "echo").status == 200);
  gw.signal(SIGHUP);
  auto reloading = systemd.next();
  CHECK(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(systemd.next() == "READY=1");
  gw.signal(SIGTERM);
  CHECK(systemd.next() == "STOPPING=1");
  CHECK(gw.stop() == 0);
}

TEST_CASE("SIGHUP swaps models and keys, a broken config keeps the old "
          "one serving") {
  fake_upstream first{answer_ok("first")};
  fake_upstream second{answer_ok("second")};
  gateway_process gw{make_config(openai_model("one", first.base_url()), "one")};
  REQUIRE(ask(gw, "one").status == 200);
  auto sha_before = health_of(gw.port())["config_sha256"].get<std::string>();
  SECTION("a valid config replaces routing, models and keys") {
    gw.rewrite_config(with_key(
      make_config(openai_model("two", second.base_url()), "two"), other_key));
    gw.signal(SIGHUP);
    REQUIRE(gw.wait_for_output("\"event\":\"config_reloaded\""));
    auto res = ask(gw, "two", other_key);
    REQUIRE(res.status == 200);
    CHECK(res.json()["choices"][0]["message"]["content"] == "second");
    CHECK(ask(gw, "two").status == 401);            // the old key is gone
    CHECK(ask(gw, "one", other_key).status == 404); // and the old model
    auto health = health_of(gw.port());
    CHECK(health["config_sha256"] != sha_before);
    CHECK(health["models"].contains("two"));
    CHECK_FALSE(health["models"].contains("one"));
  }
  SECTION("an invalid config is rejected with its errors") {
    gw.rewrite_config("server:\n  api_keys: []\n");
    gw.signal(SIGHUP);
    REQUIRE(gw.wait_for_output("\"event\":\"reload_rejected\""));
    CHECK(gw.output().find("server.api_keys: must contain at least one key")
          != std::string::npos);
    CHECK(ask(gw, "one").status == 200);
    CHECK(health_of(gw.port())["config_sha256"] == sha_before);
  }
  CHECK(gw.running());
}

TEST_CASE("a reload keeps the breaker of a model whose upstream did not "
          "change") {
  fake_upstream failing{[](const fake_request&) {
    fake_response r;
    r.status = 503;
    return r;
  }};
  auto health = "health:\n  unhealthy_threshold: 1\n  cooldown_seconds: 300\n"
                "  check_interval_seconds: 0\n";
  auto config = make_config(openai_model("m", failing.base_url())
                              + openai_model("n", failing.base_url()),
                            "m", "", health);
  gateway_process gw{config};
  CHECK(ask(gw, "m").status == 502);
  CHECK(ask(gw, "n").status == 502);
  REQUIRE(ask(gw, "m").status == 503); // open
  // Same settings for m, a longer timeout for n, and a new key.
  gw.rewrite_config(
    with_key(make_config(openai_model("m", failing.base_url())
                           + openai_model("n", failing.base_url(),
                                          "    timeout_seconds: 60\n"),
                         "m", "", health),
             other_key));
  gw.signal(SIGHUP);
  REQUIRE(gw.wait_for_output("\"models_kept\":[\"m\"]"));
  CHECK(ask(gw, "m", other_key).status == 503); // still open
  auto h = health_of(gw.port())["models"];
  CHECK(h["m"]["circuit"] == "open");
  CHECK(h["n"]["circuit"] == "closed"); // a new MODEL
  CHECK(ask(gw, "n", other_key).status == 502);
}

TEST_CASE("SIGTERM lets a running stream finish, then exits 0") {
  fake_upstream upstream{[](const fake_request&) {
    fake_response r;
    r.content_type = "text/event-stream";
    r.chunks = openai_stream({"one", "two", "three", "four", "five"}, 100ms);
    return r;
  }};
  auto config = make_config(openai_model("m", upstream.base_url()), "m");
  std::unique_ptr<gateway_process> gw;
  SECTION("with the drain of the config it started with") {
    gw = std::make_unique<gateway_process>(config);
  }
  SECTION("with the drain of a reloaded config") {
    // Started without any drain: only the reloaded 30 s save the stream.
    gw = std::make_unique<gateway_process>(make_config(
      openai_model("m", upstream.base_url()), "m", "  drain_seconds: 0\n"));
    gw->rewrite_config(config);
    gw->signal(SIGHUP);
    REQUIRE(gw->wait_for_output("\"event\":\"config_reloaded\""));
  }
  raw_connection conn{gw->port()};
  auto body = nlohmann::json::parse(chat_body("m"));
  body["stream"] = true;
  auto text = body.dump();
  REQUIRE(conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer "
                    + full_key + "\r\nContent-Length: "
                    + std::to_string(text.size()) + "\r\n\r\n" + text));
  REQUIRE(conn.read_until("\"one\"", 10s).find("\"one\"") != std::string::npos);
  gw->signal(SIGTERM);
  auto rest = conn.read_until("data: [DONE]", 10s);
  CHECK(rest.find("\"five\"") != std::string::npos);
  CHECK(rest.find("data: [DONE]") != std::string::npos);
  CHECK(gw->stop() == 0);
}

TEST_CASE("a client's rate-limit window holds across a SIGHUP reload") {
  auto config = [](const std::string& extra_model) {
    return make_config(echo_model + extra_model, "echo", "",
                       "rate_limit:\n  max_requests: 2\n"
                       "  window_seconds: 600\n");
  };
  gateway_process gw{config("")};
  auto chat = [&] {
    return http_request(gw.port(), "POST", "/v1/chat/completions",
                        chat_body("echo"), auth_json(full_key));
  };
  REQUIRE(chat().status == 200);
  REQUIRE(chat().status == 200);
  REQUIRE(chat().status == 429);
  // A reload that changes something else (a model added).
  gw.rewrite_config(config("  echo2:\n    provider: echo\n"));
  gw.signal(SIGHUP);
  REQUIRE(gw.wait_for_output("\"event\":\"config_reloaded\""));
  auto after = chat();
  CHECK(after.status == 429);
  CHECK(error_of(after)["code"] == "rate_limit_exceeded");
}
