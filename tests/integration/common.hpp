#pragma once

// Shared pieces of the integration tests: keys, config builders, bodies.

#include "tests/support/fake_upstream.hpp"
#include "tests/support/gateway_process.hpp"
#include "tests/support/http_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace pw::test {

/// A directory of its own under the system's temporary directory, removed
/// with everything in it when the test ends.
struct temp_dir {
  std::filesystem::path path;

  temp_dir() {
    std::string pattern
      = (std::filesystem::temp_directory_path() / "pw-test-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }

  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

/// A port nobody listens on (bound, then closed again).
inline uint16_t closed_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acc{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  auto port = acc.local_endpoint().port();
  acc.close();
  return port;
}

/// A client key allowed every model.
inline const std::string full_key = "sk-test-full-key-4f1c9a";
/// A client key allowed only `echo` and `safe-*`.
inline const std::string limited_key = "sk-test-limited-key-77d0b2";
/// The provider key the fake upstreams expect.
inline const std::string upstream_key = "sk-upstream-secret-9e3a51";

/// A config with both client keys, `models_yaml` under `models:` (indented
/// two spaces), `default_model`, and extra top-level or server YAML.
inline std::string make_config(const std::string& models_yaml,
                               const std::string& default_model,
                               const std::string& server_extra = "",
                               const std::string& extra = "") {
  return "server:\n"
         "  api_keys:\n"
         "    - key: \""
         + full_key
         + "\"\n"
           "      name: \"full\"\n"
           "      allowed_models: [\"*\"]\n"
           "    - key: \""
         + limited_key
         + "\"\n"
           "      name: \"limited\"\n"
           "      allowed_models: [\"echo\", \"safe-*\"]\n"
         + server_extra + "models:\n" + models_yaml + "routing:\n"
         + "  default_model: \"" + default_model + "\"\n"
         + extra
         // Health checks would reach the fakes; tests that want them say so.
         + (extra.find("health:") == std::string::npos
              ? "health:\n  check_interval_seconds: 0\n"
              : "");
}

/// A `models:` entry for an OpenAI-compatible model on `base_url`.
inline std::string openai_model(const std::string& alias,
                                const std::string& base_url,
                                const std::string& more = "",
                                const std::string& provider = "openai") {
  return "  " + alias + ":\n    provider: " + provider
         + "\n    model: \"upstream-" + alias + "\"\n    api_key: \""
         + upstream_key + "\"\n    base_url: \"" + base_url + "\"\n" + more;
}

inline const std::string echo_model = "  echo:\n    provider: echo\n";

/// Chat requests an upstream received (health checks are GETs).
inline size_t chats(const fake_upstream& u) {
  size_t n = 0;
  for (const auto& r : u.requests())
    n += r.method == "POST" ? 1 : 0;
  return n;
}

/// A minimal chat body for `model` ("" = no model field).
inline std::string chat_body(const std::string& model,
                             const std::string& text = "hello") {
  nlohmann::json body = {{"messages", {{{"role", "user"}, {"content", text}}}}};
  if (!model.empty())
    body["model"] = model;
  return body.dump();
}

/// A fake that answers every request with a completion.
inline fake_handler answer_ok(const std::string& content = "hi from upstream") {
  return [content](const fake_request& req) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    auto model = body.is_object() && body.contains("model")
                   ? body["model"].get<std::string>()
                   : std::string{"unknown"};
    fake_response r;
    r.body = openai_completion(model, content);
    return r;
  };
}

/// The `error` object of an error response (checks the envelope shape).
inline nlohmann::json error_of(const http_response& res) {
  auto j = res.json();
  REQUIRE(j.is_object());
  REQUIRE(j.contains("error"));
  auto e = j["error"];
  CHECK(e["message"].is_string());
  CHECK(e["type"].is_string());
  CHECK(e["code"].is_string());
  CHECK(e.contains("param"));
  CHECK(res.header("content-type") == "application/json");
  return e;
}

} // namespace pw::test
