#include "core/request/service_post.hpp"

namespace pw {

upstream_request service_post(const service_target& to, std::string body) {
  upstream_request req;
  req.target = to.target;
  req.ca_file = to.ca_file;
  req.method = "POST";
  req.path = to.path;
  req.headers.reserve(to.headers.size() + 1);
  req.headers.push_back({"Content-Type", "application/json"});
  for (const auto& h : to.headers)
    if (!iequals(h.name, "content-type"))
      req.headers.push_back(h);
  req.body = std::move(body);
  req.connect_timeout = to.timeout;
  req.first_byte_timeout = to.timeout;
  req.timeout = to.timeout;
  return req;
}

} // namespace pw
