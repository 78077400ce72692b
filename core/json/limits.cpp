#include "core/json/limits.hpp"

#include "core/errc.hpp"

namespace pw::json {

std::string problem::what(const limits& lim) const {
  std::string out;
  switch (kind) {
  case fault::syntax:
    out = "is not valid JSON";
    break;
  case fault::utf8:
    out = "is not valid UTF-8";
    break;
  case fault::number:
    out = "has a number that is not finite or does not fit in 64 bits";
    break;
  case fault::too_deep:
    out = "nests deeper than " + std::to_string(lim.max_depth) + " levels";
    break;
  case fault::too_many_members:
    out = "has an object with more than " + std::to_string(lim.max_members)
          + " members";
    break;
  case fault::too_many_elements:
    out = "has an array with more than " + std::to_string(lim.max_elements)
          + " elements";
    break;
  case fault::string_too_long:
    out
      = "has a string longer than " + std::to_string(lim.max_string) + " bytes";
    break;
  case fault::duplicate_key:
    out = "has the key '" + key + "' twice in one object";
    break;
  }
  if (!path.empty())
    out += " (at '" + path + "')";
  return out;
}

std::string problem::param() const {
  if (kind != fault::duplicate_key || key.empty())
    return path;
  return path.empty() ? key : path + "." + key;
}

caf::error client_error(const problem& p, const limits& lim,
                        std::string_view subject) {
  return make_error(errc::invalid_request,
                    std::string{subject} + " " + p.what(lim) + ".", p.param());
}

} // namespace pw::json
