#include "core/errc.hpp"

#include <caf/message.hpp>

namespace pw {

std::string_view to_string(errc x) {
  switch (x) {
  case errc::none:
    return "none";
  case errc::invalid_request:
    return "invalid_request";
  case errc::missing_api_key:
    return "missing_api_key";
  case errc::invalid_api_key:
    return "invalid_api_key";
  case errc::model_not_allowed:
    return "model_not_allowed";
  case errc::no_allowed_model:
    return "no_allowed_model";
  case errc::model_not_found:
    return "model_not_found";
  case errc::endpoint_unsupported:
    return "endpoint_unsupported";
  case errc::not_found:
    return "not_found";
  case errc::method_not_allowed:
    return "method_not_allowed";
  case errc::payload_too_large:
    return "payload_too_large";
  case errc::headers_too_large:
    return "headers_too_large";
  case errc::uri_too_long:
    return "uri_too_long";
  case errc::http_version_not_supported:
    return "http_version_not_supported";
  case errc::not_implemented:
    return "not_implemented";
  case errc::rate_limited:
    return "rate_limited";
  case errc::quota_exceeded:
    return "quota_exceeded";
  case errc::usage_unavailable:
    return "usage_unavailable";
  case errc::upstream_rate_limited:
    return "upstream_rate_limited";
  case errc::upstream_rejected:
    return "upstream_rejected";
  case errc::upstream_failed:
    return "upstream_failed";
  case errc::upstream_invalid:
    return "upstream_invalid";
  case errc::upstream_overloaded:
    return "upstream_overloaded";
  case errc::no_model_available:
    return "no_model_available";
  case errc::overloaded:
    return "overloaded";
  case errc::deadline_exceeded:
    return "deadline_exceeded";
  case errc::client_closed:
    return "client_closed";
  case errc::policy_blocked:
    return "policy_blocked";
  case errc::policy_forbidden:
    return "policy_forbidden";
  case errc::plugin_failed:
    return "plugin_failed";
  case errc::internal:
    return "internal";
  case errc::invalid_config:
    return "invalid_config";
  }
  return "unknown";
}

caf::error make_error(errc x) {
  return caf::error{static_cast<uint8_t>(x), caf::atom("pw")};
}

caf::error make_error(errc x, std::string message) {
  return caf::error{static_cast<uint8_t>(x), caf::atom("pw"),
                    caf::make_message(std::move(message))};
}

caf::error make_error(errc x, std::string message, std::string param) {
  return caf::error{static_cast<uint8_t>(x), caf::atom("pw"),
                    caf::make_message(std::move(message), std::move(param))};
}

caf::error make_retry_error(errc x, std::string message, uint32_t retry_after) {
  return caf::error{
    static_cast<uint8_t>(x), caf::atom("pw"),
    caf::make_message(std::move(message), std::string{}, retry_after)};
}

errc code_of(const caf::error& err) {
  if (err.category() != caf::atom("pw") || err.code() == 0
      || err.code() >= errc_count)
    return errc::internal;
  return static_cast<errc>(err.code());
}

std::string message_of(const caf::error& err) {
  if (err.category() == caf::atom("pw")) {
    const auto& ctx = err.context();
    if (ctx.size() >= 1 && ctx.match_element<std::string>(0))
      return ctx.get_as<std::string>(0);
    return std::string{to_string(code_of(err))};
  }
  return caf::to_string(err);
}

std::string param_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (err.category() == caf::atom("pw") && ctx.size() >= 2
      && ctx.match_element<std::string>(1))
    return ctx.get_as<std::string>(1);
  return {};
}

uint32_t retry_after_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (err.category() == caf::atom("pw") && ctx.size() >= 3
      && ctx.match_element<uint32_t>(2))
    return ctx.get_as<uint32_t>(2);
  return 0;
}

} // namespace pw
