#include "core/json_error.hpp"

#include "core/json/reader.hpp"

#include <nlohmann/json.hpp>

namespace pw {

namespace {

constexpr error_row table[] = {
  {errc::none, 500, "internal_error", "internal_error"},
  {errc::invalid_request, 400, "invalid_request_error", "invalid_request"},
  {errc::missing_api_key, 401, "authentication_error", "missing_api_key"},
  {errc::invalid_api_key, 401, "authentication_error", "invalid_api_key"},
  {errc::model_not_allowed, 403, "permission_error", "model_not_allowed"},
  {errc::no_allowed_model, 403, "permission_error", "no_allowed_model"},
  {errc::model_not_found, 404, "not_found_error", "model_not_found"},
  {errc::endpoint_unsupported, 400, "invalid_request_error",
   "endpoint_unsupported"},
  {errc::not_found, 404, "not_found_error", "not_found"},
  {errc::method_not_allowed, 405, "invalid_request_error",
   "method_not_allowed"},
  {errc::payload_too_large, 413, "invalid_request_error", "payload_too_large"},
  {errc::headers_too_large, 431, "invalid_request_error", "headers_too_large"},
  {errc::uri_too_long, 414, "invalid_request_error", "uri_too_long"},
  {errc::http_version_not_supported, 505, "invalid_request_error",
   "http_version_not_supported"},
  {errc::not_implemented, 501, "invalid_request_error", "not_implemented"},
  {errc::rate_limited, 429, "rate_limit_error", "rate_limit_exceeded"},
  {errc::quota_exceeded, 429, "insufficient_quota", "insufficient_quota"},
  {errc::usage_unavailable, 503, "service_unavailable", "usage_unavailable"},
  {errc::upstream_rate_limited, 429, "rate_limit_error",
   "upstream_rate_limited"},
  {errc::upstream_rejected, 0, "invalid_request_error", "upstream_rejected"},
  {errc::upstream_failed, 502, "upstream_error", "upstream_failed"},
  {errc::upstream_invalid, 502, "upstream_error", "upstream_invalid"},
  {errc::upstream_overloaded, 503, "service_unavailable",
   "upstream_overloaded"},
  {errc::no_model_available, 503, "service_unavailable", "no_model_available"},
  {errc::overloaded, 503, "service_unavailable", "overloaded"},
  {errc::deadline_exceeded, 504, "timeout_error", "deadline_exceeded"},
  {errc::client_closed, 499, "client_closed", "client_closed"},
  {errc::policy_blocked, 0, "policy_error", "policy_blocked"},
  {errc::policy_forbidden, 403, "policy_error", "policy_forbidden"},
  {errc::plugin_failed, 503, "policy_error", "plugin_unavailable"},
  {errc::internal, 500, "internal_error", "internal_error"},
  {errc::invalid_config, 500, "internal_error", "invalid_config"},
};

static_assert(std::size(table) == errc_count, "one row per errc");

} // namespace

std::span<const error_row> error_table() {
  return table;
}

const error_row& row_of(errc code) {
  auto i = static_cast<size_t>(code);
  return i < std::size(table) ? table[i]
                              : table[static_cast<size_t>(errc::internal)];
}

std::string_view anthropic_error_type(unsigned status) {
  switch (status) {
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
  case 529:
    return "overloaded_error";
  case 504:
    return "timeout_error";
  default:
    return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

rendered_error render_error(const api_error& err, error_dialect dialect) {
  const auto& row = row_of(err.code);
  unsigned status = row.status;
  if (status == 0 && err.code == errc::policy_blocked)
    // A plugin's own status: any 4xx or 5xx it was configured with.
    status = err.status >= 400 && err.status < 600 ? err.status : 403;
  else if (status == 0)
    status = err.status >= 400 && err.status < 500 ? err.status : 400;
  if (dialect == error_dialect::anthropic) {
    auto message
      = err.message.empty() ? std::string{to_string(err.code)} : err.message;
    // Anthropic's envelope has no `param`: the field goes in the message.
    if (!err.param.empty() && message.find(err.param) == std::string::npos)
      message = err.param + ": " + message;
    nlohmann::ordered_json body
      = {{"type", "error"},
         {"error",
          {{"type", anthropic_error_type(status)}, {"message", message}}}};
    return {status, json::dump(body)};
  }
  nlohmann::ordered_json e = {
    {"message",
     err.message.empty() ? std::string{to_string(err.code)} : err.message},
    {"type", err.type.empty() ? std::string{row.type} : err.type},
    {"param", err.param.empty() ? nlohmann::ordered_json(nullptr)
                                : nlohmann::ordered_json(err.param)},
    {"code",
     err.code_text.empty() ? std::string{row.code_text} : err.code_text},
  };
  nlohmann::ordered_json body = {{"error", std::move(e)}};
  return {status, json::dump(body)};
}

} // namespace pw
