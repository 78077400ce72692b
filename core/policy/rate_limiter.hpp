#pragma once

// Per-client request rate limiting with pw-router's semantics: at most
// `max_requests` in any window of `window` length.

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace pw {

/// An exact sliding-window log. It keeps the admission times of the last
/// min(max_requests, requests within one window) requests in a ring buffer,
/// so memory follows the real request rate, not the configured maximum.
class sliding_window_limiter {
public:
  using clock = std::chrono::steady_clock;

  sliding_window_limiter(uint64_t max_requests, clock::duration window);

  /// Admits one request at `now` (returns nullopt), or returns how long
  /// until the oldest request in the window leaves it.
  std::optional<clock::duration> try_acquire(clock::time_point now);

  /// Requests currently inside the window ending at `now`.
  [[nodiscard]] uint64_t in_window(clock::time_point now) const;

  /// The admission times it holds, oldest first.
  [[nodiscard]] std::vector<clock::time_point> times() const;

  /// Takes over the admission times of an older limiter of the same
  /// client (a reload replaced it): the window counts both, and keeps the
  /// newest `max_requests` of them.
  void adopt(const std::vector<clock::time_point>& older);

private:
  void drop_expired(clock::time_point now);

  uint64_t max_;
  clock::duration window_;
  std::vector<clock::time_point> ring_;
  size_t head_ = 0;
  size_t size_ = 0;
};

} // namespace pw
