#pragma once

// Shared pieces of the integration tests: keys, config builders, bodies,
// the audit log and the request counter, raw responses and their
// server-sent events; in `messages_api`, requests, errors and streams of the
// Messages API.

#include "tests/support/exposition.hpp"
#include "tests/support/fake_upstream.hpp"
#include "tests/support/gateway_process.hpp"
#include "tests/support/http_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

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
/// An operator's key (`admin: true`): GET /health's details.
inline const std::string admin_key = "sk-test-admin-key-c3e8f0";
/// The provider key the fake upstreams expect.
inline const std::string upstream_key = "sk-upstream-secret-9e3a51";

/// A config with both client keys and the admin key, `models_yaml` under
/// `models:` (indented two spaces), `default_model`, and extra top-level or
/// server YAML.
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
           "    - key: \""
         + admin_key
         + "\"\n"
           "      name: \"ops\"\n"
           "      admin: true\n"
           "      allowed_models: [\"*\"]\n"
         + server_extra + "models:\n" + models_yaml + "routing:\n"
         + "  default_model: \"" + default_model + "\"\n"
         + extra
         // Health checks would reach the fakes; tests that want them say so.
         + (extra.find("health:") == std::string::npos
              ? "health:\n  check_interval_seconds: 0\n"
              : "");
}

/// A `models:` entry for an Anthropic model at `base_url`.
inline std::string anthropic_model(const std::string& alias,
                                   const std::string& base_url) {
  return "  " + alias + ":\n    provider: anthropic\n    model: \"c\"\n"
         + "    api_key: \"" + upstream_key + "\"\n    base_url: \"" + base_url
         + "\"\n";
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

/// GET /health as `key` sees it (the admin key: every actor's details).
inline nlohmann::json health_of(uint16_t port,
                                const std::string& key = admin_key) {
  return http_request(port, "GET", "/health", "",
                      {{"Authorization", "Bearer " + key}})
    .json();
}

/// GET /metrics as `key` sees it, parsed (requires 200).
inline prom_text metrics_of(const gateway_process& gw,
                            const std::string& key = full_key) {
  auto r = http_request(gw.port(), "GET", "/metrics", "",
                        {{"Authorization", "Bearer " + key}});
  REQUIRE(r.status == 200);
  return parse_exposition(r.body);
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

// -- audit log and metrics ---------------------------------------------------

/// A `post_response` stage (for a `middleware:` block) with one audit_log
/// entry writing to `file`; `options` ("fsync: every") join its config.
inline std::string audit_log_stage(const std::filesystem::path& file,
                                   const std::string& options = "") {
  return "  post_response:\n"
         "    - plugin: audit_log\n"
         "      config: {path: \""
         + file.string() + "\"" + (options.empty() ? "" : ", " + options)
         + "}\n";
}

/// A `middleware:` block with only `audit_log_stage(file, options)`, for
/// make_config's `extra`.
inline std::string audit_log_middleware(const std::filesystem::path& file,
                                        const std::string& options = "") {
  return "middleware:\n" + audit_log_stage(file, options);
}

/// `headers` (by default the full key's) with `X-Request-Id: id` appended
/// last.
inline header_list with_request_id(const std::string& id,
                                   header_list headers = auth_json(full_key)) {
  headers.emplace_back("X-Request-Id", id);
  return headers;
}

/// The lines of the file `p`, without their newlines.
inline std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::vector<std::string> out;
  std::ifstream in{p};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

/// The lines of the audit log `file` that carry a `request_id`, parsed and
/// keyed by it.
inline std::map<std::string, nlohmann::json>
audit_records_by_id(const std::filesystem::path& file) {
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& line : lines_of(file)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("request_id"))
      by_id[j["request_id"].get<std::string>()] = j;
  }
  return by_id;
}

/// The `pw_router_requests_total` series of `endpoint` and `status` for
/// `model` and `client`.
inline double requests_total(const prom_text& p, const std::string& endpoint,
                             const std::string& status,
                             const std::string& model = "echo",
                             const std::string& client = "full") {
  return p.value("pw_router_requests_total", {{"endpoint", endpoint},
                                              {"model", model},
                                              {"client", client},
                                              {"status", status}});
}

// -- raw streams -------------------------------------------------------------

/// One server-sent event: its `event:` name and its `data:`.
struct sse_event {
  std::string name;
  std::string data;

  [[nodiscard]] nlohmann::json json() const {
    auto j = nlohmann::json::parse(data, nullptr, false);
    CHECK_FALSE(j.is_discarded());
    return j;
  }
};

/// The events in an SSE body, in order.
inline std::vector<sse_event> events_in(const std::string& body) {
  std::vector<sse_event> out;
  size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\n\n", pos);
    auto block = body.substr(pos, end == std::string::npos ? std::string::npos
                                                           : end - pos);
    pos = end == std::string::npos ? body.size() : end + 2;
    sse_event e;
    bool any = false;
    size_t line_start = 0;
    while (line_start < block.size()) {
      auto eol = block.find('\n', line_start);
      auto line
        = block.substr(line_start, eol == std::string::npos ? std::string::npos
                                                            : eol - line_start);
      line_start = eol == std::string::npos ? block.size() : eol + 1;
      auto value = [&](size_t skip) {
        auto v = line.substr(skip);
        if (v.starts_with(" "))
          v.erase(0, 1);
        return v;
      };
      if (line.starts_with("event:")) {
        e.name = value(6);
        any = true;
      } else if (line.starts_with("data:")) {
        e.data += (e.data.empty() ? "" : "\n") + value(5);
        any = true;
      }
    }
    if (any)
      out.push_back(e);
  }
  return out;
}

/// The names of `events`, in order.
inline std::vector<std::string> names_of(const std::vector<sse_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    out.push_back(e.name);
  return out;
}

/// A raw HTTP response, with a chunked body decoded.
struct raw_response {
  std::string head;
  std::string body;
  bool closed = false;

  [[nodiscard]] bool has(const std::string& text) const {
    return body.find(text) != std::string::npos;
  }

  [[nodiscard]] size_t count(const std::string& text) const {
    size_t n = 0;
    for (auto pos = body.find(text); pos != std::string::npos;
         pos = body.find(text, pos + 1))
      ++n;
    return n;
  }

  /// The server-sent events in the body, in order.
  [[nodiscard]] std::vector<sse_event> events() const {
    return events_in(body);
  }
};

/// The assistant text of a chat stream, assembled from the content deltas.
inline std::string chat_text(const raw_response& r) {
  std::string out;
  for (const auto& e : r.events()) {
    auto j = nlohmann::json::parse(e.data, nullptr, false);
    if (!j.is_object() || !j.contains("choices") || j["choices"].empty())
      continue;
    auto delta = j["choices"][0].value("delta", nlohmann::json::object());
    if (delta.contains("content") && delta["content"].is_string())
      out += delta["content"].get<std::string>();
  }
  return out;
}

/// A chat request for `body` on the wire, with the full key.
inline std::string raw_chat_request(const nlohmann::json& body,
                                    const std::string& connection = "close") {
  auto text = body.dump();
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
         "Bearer "
         + full_key + "\r\nContent-Type: application/json\r\nConnection: "
         + connection + "\r\nContent-Length: " + std::to_string(text.size())
         + "\r\n\r\n" + text;
}

/// A chunked body (`Transfer-Encoding: chunked`) decoded.
inline std::string dechunk(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  while (pos < raw.size()) {
    auto eol = raw.find("\r\n", pos);
    if (eol == std::string::npos)
      break;
    auto size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
    if (size == 0)
      break;
    out += raw.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return out;
}

/// A raw HTTP/1.1 response split into its head and its (decoded) body.
inline raw_response split(const std::string& raw, bool closed) {
  raw_response r;
  r.closed = closed;
  auto end = raw.find("\r\n\r\n");
  r.head = raw.substr(0, end);
  auto body = end == std::string::npos ? std::string{} : raw.substr(end + 4);
  r.body = r.head.find("chunked") != std::string::npos ? dechunk(body) : body;
  return r;
}

/// Sends the raw request `request` on a new connection and reads until it
/// closes (or `timeout` passes: then `closed` is false).
inline raw_response send_once(uint16_t port, const std::string& request,
                              std::chrono::milliseconds timeout
                              = std::chrono::seconds{20}) {
  raw_connection conn{port};
  REQUIRE(conn.send(request));
  bool closed = false;
  auto raw = conn.read_until_close(timeout, closed);
  return split(raw, closed);
}

/// Anthropic's Messages API inbound (messages_test.cpp,
/// messages_chat_test.cpp): requests with the key in x-api-key, Anthropic's
/// error envelope, streams read event by event. A namespace of its own, so that
/// the files that do not use it keep their own helpers of the same names.
namespace messages_api {

/// Whether a request body asks for a stream.
inline bool asks_stream(const nlohmann::json& body) {
  return body.is_object() && body.contains("stream")
         && body["stream"].is_boolean() && body["stream"].get<bool>();
}

// -- fake upstreams ----------------------------------------------------------

/// A fake that answers every request with `status` and `body`.
inline fake_handler
answer_with(unsigned status, std::string body,
            std::vector<std::pair<std::string, std::string>> headers = {}) {
  return [=](const fake_request&) {
    fake_response r;
    r.status = status;
    r.body = body;
    r.headers = headers;
    return r;
  };
}

/// A fake that answers every request with an event stream of `chunks`:
/// `finish` false breaks it off, `stall` keeps it open afterwards.
inline fake_handler
stream_with(std::vector<fake_chunk> chunks, bool finish = true,
            std::chrono::milliseconds stall = std::chrono::milliseconds{0}) {
  return [=](const fake_request&) {
    fake_response r;
    r.content_type = "text/event-stream";
    r.chunks = chunks;
    r.finish = finish;
    r.stall = stall;
    return r;
  };
}

/// POSTs `u` received (health checks are GETs).
inline std::vector<fake_request> posts_of(const fake_upstream& u) {
  std::vector<fake_request> posts;
  for (const auto& r : u.requests())
    if (r.method == "POST")
      posts.push_back(r);
  return posts;
}

/// The only POST `u` received.
inline fake_request only_post(const fake_upstream& u) {
  auto posts = posts_of(u);
  REQUIRE(posts.size() == 1);
  return posts[0];
}

/// Whether any header value or the body of `req` holds `secret`.
inline bool carries(const fake_request& req, const std::string& secret) {
  for (const auto& [name, value] : req.headers)
    if (value.find(secret) != std::string::npos)
      return true;
  return req.body.find(secret) != std::string::npos;
}

// -- requests ----------------------------------------------------------------

inline const std::string messages_path = "/v1/messages";
inline const std::string count_path = "/v1/messages/count_tokens";

/// Headers as Anthropic's clients send them: the key in x-api-key.
inline header_list key_headers(const std::string& key) {
  return {{"x-api-key", key}, {"Content-Type", "application/json"}};
}

inline header_list with_header(header_list headers, const std::string& name,
                               const std::string& value) {
  headers.emplace_back(name, value);
  return headers;
}

inline http_response post_to(const gateway_process& gw, const std::string& path,
                             const std::string& body,
                             const header_list& headers
                             = key_headers(full_key)) {
  return http_request(gw.port(), "POST", path, body, headers);
}

inline http_response ask(const gateway_process& gw, const nlohmann::json& body,
                         const header_list& headers = key_headers(full_key)) {
  return post_to(gw, messages_path, body.dump(), headers);
}

inline http_response count(const gateway_process& gw,
                           const nlohmann::json& body,
                           const header_list& headers = key_headers(full_key)) {
  return post_to(gw, count_path, body.dump(), headers);
}

/// A minimal Messages body for `model` ("" = no model field).
inline nlohmann::json msg_body(const std::string& model,
                               const std::string& text = "hello") {
  nlohmann::json b
    = {{"max_tokens", 64},
       {"messages",
        nlohmann::json::array({{{"role", "user"}, {"content", text}}})}};
  if (!model.empty())
    b["model"] = model;
  return b;
}

/// A minimal count_tokens body for `model` (no max_tokens).
inline nlohmann::json count_body(const std::string& model,
                                 const std::string& text = "hello") {
  auto b = msg_body(model, text);
  b.erase("max_tokens");
  return b;
}

/// The `error` object of an Anthropic error answer, checking the envelope:
/// {"type":"error","error":{"type":T,"message":M}}, no OpenAI fields.
inline nlohmann::json anthropic_error_of(const http_response& res) {
  INFO(res.body);
  CHECK(res.header("content-type") == "application/json");
  auto j = nlohmann::json::parse(res.body, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["type"] == "error");
  REQUIRE(j["error"].is_object());
  auto e = j["error"];
  CHECK(e["type"].is_string());
  CHECK(e["message"].is_string());
  CHECK_FALSE(e.contains("param"));
  CHECK_FALSE(e.contains("code"));
  return e;
}

/// Anthropic's error type for `status`.
inline std::string type_for(unsigned status) {
  switch (status) {
  case 400:
    return "invalid_request_error";
  case 401:
    return "authentication_error";
  case 403:
    return "permission_error";
  case 404:
    return "not_found_error";
  case 413:
    return "request_too_large";
  case 429:
    return "rate_limit_error";
  case 503:
    return "overloaded_error";
  case 504:
    return "timeout_error";
  default:
    return "api_error";
  }
}

/// Checks `res` is an Anthropic error with `status` and its type.
inline nlohmann::json expect_error(const http_response& res, unsigned status) {
  INFO(res.body);
  CHECK(res.status == status);
  auto e = anthropic_error_of(res);
  CHECK(e["type"] == type_for(status));
  return e;
}

/// Whether the `message` of `error` holds `text`.
inline bool mentions(const nlohmann::json& error, const std::string& text) {
  auto message = error.is_object() ? error.find("message") : error.end();
  return message != error.end() && message->is_string()
         && message->get<std::string>().find(text) != std::string::npos;
}

// -- raw streams -------------------------------------------------------------

/// The text of the text_delta events of a Messages stream.
/// Checks that `e` is Anthropic's error event, of type `type`.
inline void check_error_event(const sse_event& e, std::string_view type) {
  CHECK(e.name == "error");
  auto j = e.json();
  CHECK(j["type"] == "error");
  REQUIRE(j["error"].is_object());
  CHECK(j["error"]["type"] == type);
  CHECK(j["error"]["message"].is_string());
}

inline std::string message_text(const raw_response& r) {
  std::string out;
  for (const auto& e : r.events()) {
    if (e.name != "content_block_delta")
      continue;
    auto j = e.json();
    if (j.contains("delta") && j["delta"].value("type", "") == "text_delta")
      out += j["delta"]["text"].get<std::string>();
  }
  return out;
}

/// A Messages request on the wire, the key in x-api-key.
inline std::string raw_request(const nlohmann::json& body,
                               const std::string& path = messages_path) {
  auto text = body.dump();
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nx-api-key: " + full_key
         + "\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Content-Length: "
         + std::to_string(text.size()) + "\r\n\r\n" + text;
}

inline nlohmann::json stream_body(const std::string& model,
                                  const std::string& text = "Say hello") {
  auto b = msg_body(model, text);
  b["stream"] = true;
  return b;
}

/// Sends `body` on a new connection and reads until it closes (or
/// `timeout` passes: then `closed` is false).
inline raw_response stream_once(uint16_t port, const nlohmann::json& body,
                                std::chrono::milliseconds timeout
                                = std::chrono::seconds{20}) {
  return send_once(port, raw_request(body), timeout);
}

// -- config ------------------------------------------------------------------

/// A pre stage that redacts PII.
inline const std::string pii_redact = "middleware:\n"
                                      "  pre_request:\n"
                                      "    - plugin: pii\n"
                                      "      config: {action: redact}\n";

/// Keeps the breaker closed through many failures.
inline const std::string patient_health
  = "health:\n  check_interval_seconds: 0\n  unhealthy_threshold: 100\n";

} // namespace messages_api

} // namespace pw::test
