#include "adapters/json_scan.hpp"

namespace pw::adapters {

bool json_scan::run(std::string_view text, size_t max_depth) {
  path_.clear();
  frames_.clear();
  max_depth_ = max_depth;
  return nlohmann::ordered_json::sax_parse(text, this);
}

bool json_scan::at(std::initializer_list<std::string_view> expected) const {
  if (expected.size() != path_.size())
    return false;
  size_t i = 0;
  for (auto segment : expected)
    if (path_[i++] != segment)
      return false;
  return true;
}

void json_scan::next_value() {
  // Inside an array, each value gets its index as the last path segment.
  if (!frames_.empty() && frames_.back().is_array)
    path_.push_back("[" + std::to_string(frames_.back().count++) + "]");
}

void json_scan::after_value() {
  // Pops the key (objects) or index (arrays) segment of the finished value.
  if (!frames_.empty() && !path_.empty())
    path_.pop_back();
}

bool json_scan::null() {
  next_value();
  on_other();
  after_value();
  return true;
}

bool json_scan::boolean(bool) {
  return null();
}

bool json_scan::number_integer(number_integer_t) {
  return null();
}

bool json_scan::number_unsigned(number_unsigned_t val) {
  next_value();
  on_unsigned(val);
  after_value();
  return true;
}

bool json_scan::number_float(number_float_t, const string_t&) {
  return null();
}

bool json_scan::string(string_t& val) {
  next_value();
  on_string(val);
  after_value();
  return true;
}

bool json_scan::binary(binary_t&) {
  return null();
}

bool json_scan::start_object(std::size_t) {
  if (frames_.size() >= max_depth_)
    return false;
  next_value();
  on_object_start();
  frames_.push_back({false, 0});
  return true;
}

bool json_scan::key(string_t& val) {
  path_.push_back(val);
  return true;
}

bool json_scan::end_object() {
  frames_.pop_back();
  after_value();
  return true;
}

bool json_scan::start_array(std::size_t) {
  if (frames_.size() >= max_depth_)
    return false;
  next_value();
  on_array_start();
  frames_.push_back({true, 0});
  return true;
}

bool json_scan::end_array() {
  frames_.pop_back();
  after_value();
  return true;
}

bool json_scan::parse_error(std::size_t, const std::string&,
                            const nlohmann::detail::exception&) {
  return false;
}

} // namespace pw::adapters
