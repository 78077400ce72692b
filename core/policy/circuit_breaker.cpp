#include "core/policy/circuit_breaker.hpp"

namespace pw {

std::string_view to_string(circuit_state x) {
  switch (x) {
  case circuit_state::closed:
    return "closed";
  case circuit_state::open:
    return "open";
  case circuit_state::half_open:
    return "half_open";
  }
  return "unknown";
}

void circuit_breaker::set(circuit_state next) {
  changed_ = next != state_;
  state_ = next;
}

void circuit_breaker::open(clock::time_point now) {
  set(circuit_state::open);
  opened_at_ = now;
  successes_ = 0;
  probe_out_ = false;
}

bool circuit_breaker::try_admit(clock::time_point now, bool& probe) {
  changed_ = false;
  probe = false;
  switch (state_) {
  case circuit_state::closed:
    return true;
  case circuit_state::open:
    if (now < retry_at())
      return false;
    set(circuit_state::half_open);
    successes_ = 0;
    [[fallthrough]];
  case circuit_state::half_open:
    if (probe_out_)
      return false;
    probe_out_ = true;
    probe = true;
    return true;
  }
  return false;
}

void circuit_breaker::record_success(bool probe) {
  changed_ = false;
  failures_ = 0;
  if (state_ != circuit_state::half_open)
    return; // closed stays closed; an open breaker waits for its probe
  if (probe)
    probe_out_ = false;
  if (++successes_ >= settings_.healthy_threshold) {
    set(circuit_state::closed);
    successes_ = 0;
    probe_out_ = false;
  }
}

void circuit_breaker::record_failure(clock::time_point now, bool probe) {
  changed_ = false;
  switch (state_) {
  case circuit_state::closed:
    if (++failures_ >= settings_.unhealthy_threshold)
      open(now);
    break;
  case circuit_state::half_open:
    // The probe (or a late request) failed: back to open, fresh cooldown.
    ++failures_;
    open(now);
    break;
  case circuit_state::open:
    // A request admitted before the breaker opened: already counted.
    (void)probe;
    break;
  }
}

void circuit_breaker::record_cancelled(bool probe) {
  changed_ = false;
  if (probe && state_ == circuit_state::half_open)
    probe_out_ = false; // no verdict: the next request may probe
}

void circuit_breaker::health_success() {
  changed_ = false;
  failures_ = 0;
  successes_ = 0;
  probe_out_ = false;
  set(circuit_state::closed);
}

void circuit_breaker::health_failure(clock::time_point now) {
  bool unused = false;
  record_failure(now, unused);
}

circuit_state circuit_breaker::state(clock::time_point now) const {
  if (state_ == circuit_state::open && now >= retry_at())
    return circuit_state::half_open;
  return state_;
}

} // namespace pw
