#pragma once

// Reading fields of documents that came from outside (clients, providers):
// a missing field or one of the wrong type gives the default, never an
// exception (nlohmann's `value()` throws on a type mismatch).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace pw {

/// `obj[key]` if `obj` is an object holding a string there, else `fallback`.
inline std::string string_or(const nlohmann::ordered_json& obj,
                             std::string_view key,
                             std::string_view fallback = {}) {
  if (obj.is_object())
    if (auto it = obj.find(key); it != obj.end() && it->is_string())
      return it->get<std::string>();
  return std::string{fallback};
}

/// `obj[key]` if it is a non-negative integer, else `fallback`.
inline uint64_t uint_or(const nlohmann::ordered_json& obj, std::string_view key,
                        uint64_t fallback = 0) {
  if (obj.is_object())
    if (auto it = obj.find(key); it != obj.end() && it->is_number_unsigned())
      return it->get<uint64_t>();
  return fallback;
}

/// `obj[key]` if it is an integer, else `fallback`.
inline int64_t int_or(const nlohmann::ordered_json& obj, std::string_view key,
                      int64_t fallback = 0) {
  if (obj.is_object())
    if (auto it = obj.find(key); it != obj.end() && it->is_number_integer())
      return it->get<int64_t>();
  return fallback;
}

/// `obj[key]` if it is an object, else an empty object.
inline nlohmann::ordered_json object_or_empty(const nlohmann::ordered_json& obj,
                                              std::string_view key) {
  if (obj.is_object())
    if (auto it = obj.find(key); it != obj.end() && it->is_object())
      return *it;
  return nlohmann::ordered_json::object();
}

} // namespace pw
