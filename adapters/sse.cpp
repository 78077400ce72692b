#include "adapters/sse.hpp"

namespace pw::adapters {

namespace {

constexpr std::string_view bom = "\xef\xbb\xbf";

} // namespace

void sse_parser::take_line(std::vector<sse_event>& out) {
  std::string_view line = line_;
  if (!started_) {
    // A UTF-8 byte order mark may open the stream.
    started_ = true;
    if (line.starts_with(bom))
      line.remove_prefix(bom.size());
  }
  if (line.empty()) {
    // A blank line dispatches the event; one without data is dropped.
    if (has_data_)
      out.push_back(std::move(current_));
    current_ = sse_event{};
    has_data_ = false;
    has_fields_ = false;
    return;
  }
  has_fields_ = true;
  if (line.front() == ':')
    return; // a comment (keep-alive)
  auto colon = line.find(':');
  auto field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_)
      current_.data.push_back('\n');
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event.assign(value);
  }
  // `id` and `retry` mean nothing to a gateway; other fields are ignored.
}

bool sse_parser::feed(std::string_view bytes, std::vector<sse_event>& out) {
  if (failed_)
    return false;
  size_t i = 0;
  while (i < bytes.size()) {
    if (last_was_cr_ && bytes[i] == '\n') {
      // The LF of a CRLF whose CR ended the previous line.
      last_was_cr_ = false;
      ++i;
      continue;
    }
    last_was_cr_ = false;
    auto end = bytes.find_first_of("\r\n", i);
    auto run = bytes.substr(i, end == std::string_view::npos ? end : end - i);
    line_.append(run);
    if (line_.size() + current_.data.size() > max_) {
      failed_ = true;
      return false;
    }
    if (end == std::string_view::npos)
      break;
    last_was_cr_ = bytes[end] == '\r';
    take_line(out);
    line_.clear();
    i = end + 1;
  }
  return true;
}

} // namespace pw::adapters
