#include "actors/model.hpp"

#include <caf/all.hpp>

namespace pw::actors {

std::string to_string(call_result x) {
  switch (x) {
  case call_result::success:
    return "success";
  case call_result::failure:
    return "failure";
  case call_result::rejected:
    return "rejected";
  case call_result::cancelled:
    return "cancelled";
  }
  return "unknown";
}

void model_state::record(const call_outcome& x) {
  if (in_flight > 0)
    --in_flight;
  if (x.status != 0)
    last_status = x.status;
  switch (x.result) {
  case call_result::success:
    ++successes;
    break;
  case call_result::failure:
    ++failures;
    last_error = x.error;
    break;
  case call_result::rejected:
    ++rejected;
    break;
  case call_result::cancelled:
    ++cancelled;
    return; // no latency for calls that never finished
  }
  last_latency_us = x.latency_us;
  total_latency_us += x.latency_us;
}

model_status model_state::status() const {
  model_status out;
  out.alias = settings->alias;
  out.provider = std::string{to_string(settings->provider)};
  out.model = settings->model;
  out.circuit = "closed";
  out.in_flight = in_flight;
  out.requests = requests;
  out.successes = successes;
  out.failures = failures;
  out.rejected = rejected;
  out.cancelled = cancelled;
  out.last_status = last_status;
  out.last_error = last_error;
  out.last_latency_us = last_latency_us;
  auto finished = successes + failures + rejected;
  out.mean_latency_us
    = finished == 0 ? 0 : total_latency_us / static_cast<int64_t>(finished);
  return out;
}

model_actor::behavior_type
model(model_actor::stateful_pointer<model_state> self,
      model_config_ptr settings) {
  self->state.settings = std::move(settings);
  return {
    [=](atom::admit, const admit_request&) -> admission {
      // The breaker (resilience work) will refuse here; for now every call
      // is admitted and counted.
      auto& st = self->state;
      ++st.in_flight;
      ++st.requests;
      return admission{true, {}, st.settings};
    },
    [=](atom::outcome, const call_outcome& x) { self->state.record(x); },
    [=](atom::status) { return self->state.status(); },
  };
}

} // namespace pw::actors
