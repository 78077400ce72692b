#pragma once

// One model's circuit breaker, as pure code (the MODEL actor owns one):
//
//   closed --(unhealthy_threshold consecutive failures)--> open
//   open --(cooldown passed, next admission is the probe)--> half_open
//   half_open --(healthy_threshold consecutive successes)--> closed
//   half_open --(a failure)--> open, with a fresh cooldown
//   any state --(a health check succeeds)--> closed
//
// Half-open admits exactly one request at a time (the probe).

#include <chrono>
#include <cstdint>
#include <string_view>

namespace pw {

enum class circuit_state : uint8_t { closed, open, half_open };

std::string_view to_string(circuit_state x);

struct breaker_settings {
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 1;
  std::chrono::steady_clock::duration cooldown = std::chrono::seconds{30};
};

class circuit_breaker {
public:
  using clock = std::chrono::steady_clock;

  explicit circuit_breaker(breaker_settings settings) : settings_(settings) {
    // nop
  }

  /// Asks to send one request at `now`. Closed: yes. Open: no, until the
  /// cooldown passed; then the breaker turns half-open and this request is
  /// the probe. Half-open: yes only while no probe is out. A yes in
  /// half-open sets `probe`.
  bool try_admit(clock::time_point now, bool& probe);

  /// A request's upstream answered (any non-failure, 4xx included: the
  /// upstream is alive). `probe` says whether it was the probe.
  void record_success(bool probe);

  /// A request failed in a way that counts against the model.
  void record_failure(clock::time_point now, bool probe);

  /// A request ended without a verdict (client gone, deadline, shutdown).
  void record_cancelled(bool probe);

  /// A health check succeeded: the upstream is back, close at once.
  void health_success();

  /// A health check failed: counts like a request failure.
  void health_failure(clock::time_point now);

  /// The state, as seen at `now` (open turns half-open for display once
  /// its cooldown has passed).
  [[nodiscard]] circuit_state state(clock::time_point now) const;

  /// When an open breaker will admit its probe.
  [[nodiscard]] clock::time_point retry_at() const {
    return opened_at_ + settings_.cooldown;
  }

  [[nodiscard]] uint32_t consecutive_failures() const { return failures_; }

  /// True if the last call changed the state (for transition logs).
  [[nodiscard]] bool changed() const { return changed_; }

private:
  void set(circuit_state next);
  void open(clock::time_point now);

  breaker_settings settings_;
  circuit_state state_ = circuit_state::closed;
  uint32_t failures_ = 0;
  uint32_t successes_ = 0;
  bool probe_out_ = false;
  bool changed_ = false;
  clock::time_point opened_at_{};
};

} // namespace pw
