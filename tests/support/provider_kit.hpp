#pragma once

// Helpers for the unit tests of the providers (providers_test,
// vertex_test, bedrock_test): a config whose only model is the one under
// test, loaded or refused with its error text, the lines of that text, and
// the requests the providers build (their headers by name, form bodies,
// token requests) and the answers they are given.

#include "adapters/adapter.hpp"
#include "adapters/provider.hpp"
#include "core/config/config.hpp"
#include "core/errc.hpp"
#include "core/request/exchange.hpp"

#include <caf/expected.hpp>
#include <catch2/catch.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace pw::test {

// -- config -------------------------------------------------------------------

/// A config whose only model is `alias`, with `keys` (each indented four
/// spaces) as its entry.
inline std::string config_with(const std::string& alias,
                               const std::string& keys) {
  return "server:\n"
         "  api_keys:\n"
         "    - key: \"sk-unit-key\"\n"
         "      name: \"unit\"\n"
         "      allowed_models: [\"*\"]\n"
         "models:\n  "
         + alias + ":\n" + keys + "routing:\n  default_model: " + alias + "\n";
}

/// The config in the YAML text `yaml`, read with every provider's keys.
inline caf::expected<gateway_config> load_yaml(const std::string& yaml) {
  return load_config_text(yaml, adapters::catalog());
}

/// The error text of a config whose only model is `alias` with `keys`,
/// which must fail.
inline std::string model_errors(const std::string& alias,
                                const std::string& keys) {
  auto cfg = load_yaml(config_with(alias, keys));
  REQUIRE_FALSE(cfg);
  CHECK(code_of(cfg.error()) == errc::invalid_config);
  return message_of(cfg.error());
}

/// The model `alias` of a config (whose only model it is) that must load.
inline model_config_ptr loaded(const std::string& alias,
                               const std::string& keys) {
  auto cfg = load_yaml(config_with(alias, keys));
  if (!cfg)
    FAIL(message_of(cfg.error()));
  const auto* m = cfg->find_model(alias);
  REQUIRE(m != nullptr);
  return *m;
}

/// The first line of `text` that starts with `prefix`, or "".
inline std::string line_of(const std::string& text, const std::string& prefix) {
  size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    auto line = text.substr(pos, nl == std::string::npos ? nl : nl - pos);
    if (line.starts_with(prefix))
      return line;
    if (nl == std::string::npos)
      break;
    pos = nl + 1;
  }
  return {};
}

inline bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// -- requests -----------------------------------------------------------------

/// Whether two header names are the same, case aside.
inline bool same_name(std::string_view x, std::string_view y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(x[i]))
        != std::tolower(static_cast<unsigned char>(y[i])))
      return false;
  return true;
}

inline bool has_header(const upstream_request& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (same_name(h.name, name))
      return true;
  return false;
}

/// The value of the first header `name` of `r`, or "".
inline std::string header(const upstream_request& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (same_name(h.name, name))
      return h.value;
  return {};
}

/// The `name=value` fields of a form body.
inline std::set<std::string> form_fields(const std::string& body) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    auto amp = body.find('&', pos);
    out.insert(body.substr(pos, amp == std::string::npos ? amp : amp - pos));
    if (amp == std::string::npos)
      break;
    pos = amp + 1;
  }
  return out;
}

/// The token request of a model that fetches its credentials, which must
/// build.
inline upstream_request token_request(const model_config& m) {
  auto req = adapters::adapter_for(m).credential_request(m);
  REQUIRE(req.has_value());
  if (!*req)
    FAIL(message_of(req->error()));
  return **req;
}

/// An upstream answer of `status` with `body`.
inline upstream_result answer(unsigned status, std::string body,
                              std::string content_type = "application/json") {
  upstream_result r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

/// The system clock in seconds since the epoch.
inline int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace pw::test
