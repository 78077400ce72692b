#include "core/request/exchange.hpp"

#include <algorithm>
#include <cctype>

namespace pw {

api_error to_api_error(const caf::error& err) {
  api_error out;
  out.code = code_of(err);
  out.message = message_of(err);
  out.param = param_of(err);
  out.retry_after = retry_after_of(err);
  return out;
}

bool iequals(std::string_view x, std::string_view y) {
  return x.size() == y.size()
         && std::equal(x.begin(), x.end(), y.begin(), [](char a, char b) {
              return std::tolower(static_cast<unsigned char>(a))
                     == std::tolower(static_cast<unsigned char>(b));
            });
}

std::string_view to_string(upstream_failure x) {
  switch (x) {
  case upstream_failure::none:
    return "none";
  case upstream_failure::connect:
    return "connect";
  case upstream_failure::tls:
    return "tls";
  case upstream_failure::timeout:
    return "timeout";
  case upstream_failure::protocol:
    return "protocol";
  case upstream_failure::cancelled:
    return "cancelled";
  case upstream_failure::internal:
    return "internal";
  case upstream_failure::credentials:
    return "credentials";
  }
  return "unknown";
}

} // namespace pw
