#include "core/boundary.hpp"

#include "core/observe/log.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <stdexcept>

namespace pw {

namespace {

constexpr std::array<std::string_view, boundary_count> names = {
  "request", "upstream_call", "upstream_done", "stream_piece",
  "session", "route",         "plugin",
};

/// Failures per boundary: one relaxed counter each, touched only when
/// something failed.
std::array<std::atomic<uint64_t>, boundary_count> failures{};

#ifdef PW_FAULT_INJECTION
/// Throws left per boundary, from PW_ROUTER_FAULTS.
struct armed_faults {
  std::array<std::atomic<int>, boundary_count> left{};
  /// `plugin_crash`: PLUGIN handler calls that end their actor.
  std::atomic<int> plugin_crashes{0};

  armed_faults() {
    const char* spec = std::getenv("PW_ROUTER_FAULTS");
    std::string_view rest = spec != nullptr ? spec : "";
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto entry = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{}
                                             : rest.substr(comma + 1);
      auto colon = entry.find(':');
      auto name = entry.substr(0, colon);
      int count = 1;
      if (colon != std::string_view::npos)
        count = std::atoi(std::string{entry.substr(colon + 1)}.c_str());
      for (size_t i = 0; i < boundary_count; ++i)
        if (names[i] == name)
          left[i].store(count, std::memory_order_relaxed);
      if (name == "plugin_crash")
        plugin_crashes.store(count, std::memory_order_relaxed);
    }
  }
};

armed_faults& armed() {
  static armed_faults instance;
  return instance;
}
#endif

} // namespace

std::string_view to_string(boundary where) {
  auto i = static_cast<size_t>(where);
  return i < boundary_count ? names[i] : "unknown";
}

void report_failure(boundary where, std::string_view request_id,
                    std::string_view what) noexcept {
  failures[static_cast<size_t>(where)].fetch_add(1, std::memory_order_relaxed);
  try {
    log::write(log_level::error, "internal_error",
               {{"request_id", request_id},
                {"boundary", to_string(where)},
                {"error", what}});
  } catch (...) {
    // nop: the counter has it; a log line must not throw out of here
  }
}

uint64_t failures_at(boundary where) {
  return failures[static_cast<size_t>(where)].load(std::memory_order_relaxed);
}

std::string current_exception_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

void inject_fault([[maybe_unused]] boundary where) {
#ifdef PW_FAULT_INJECTION
  auto& left = armed().left[static_cast<size_t>(where)];
  if (left.load(std::memory_order_relaxed) <= 0)
    return;
  if (left.fetch_sub(1, std::memory_order_relaxed) > 0)
    throw std::runtime_error("injected fault at "
                             + std::string{to_string(where)});
#endif
}

void inject_plugin_crash() {
#ifdef PW_FAULT_INJECTION
  auto& left = armed().plugin_crashes;
  if (left.load(std::memory_order_relaxed) <= 0)
    return;
  if (left.fetch_sub(1, std::memory_order_relaxed) > 0)
    throw std::runtime_error("injected crash of a PLUGIN");
#endif
}

} // namespace pw
