#pragma once

// A streaming JSON reader that knows where it is: each value arrives with
// its path ("choices", "[0]", "delta", "content"), so adapters can pick the
// few fields they need from provider answers without building a document.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace pw::adapters {

class json_scan : public nlohmann::json_sax<nlohmann::ordered_json> {
public:
  /// Parses `text` and reports its values; false if it is not valid JSON
  /// (or nests deeper than `max_depth`).
  bool run(std::string_view text, size_t max_depth = 128);

protected:
  using path_t = std::vector<std::string>;

  /// True if the current path is exactly `expected` (use "[0]" for index 0).
  [[nodiscard]] bool at(std::initializer_list<std::string_view> expected) const;

  /// The current path (of the value being reported).
  [[nodiscard]] const path_t& path() const { return path_; }

  // -- hooks, all optional ---------------------------------------------------

  virtual void on_string(const std::string&) {
    // nop
  }

  virtual void on_unsigned(uint64_t) {
    // nop
  }

  /// A signed integer, a float, a boolean or null.
  virtual void on_other() {
    // nop
  }

  virtual void on_object_start() {
    // nop
  }

  virtual void on_array_start() {
    // nop
  }

public:
  // -- nlohmann::json_sax ----------------------------------------------------

  bool null() override;
  bool boolean(bool) override;
  bool number_integer(number_integer_t) override;
  bool number_unsigned(number_unsigned_t val) override;
  bool number_float(number_float_t, const string_t&) override;
  bool string(string_t& val) override;
  bool binary(binary_t&) override;
  bool start_object(std::size_t) override;
  bool key(string_t& val) override;
  bool end_object() override;
  bool start_array(std::size_t) override;
  bool end_array() override;
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override;

private:
  /// Moves the path to the next value: the next index inside an array.
  void next_value();
  /// Leaves a finished value: pops its key or index segment.
  void after_value();

  struct frame {
    bool is_array;
    size_t count;
  };

  path_t path_;
  std::vector<frame> frames_;
  size_t max_depth_ = 128;
};

} // namespace pw::adapters
