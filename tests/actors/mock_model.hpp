#pragma once

// A mock MODEL: implements the whole model_actor interface and records what
// it receives, so tests can check the messages a ROUTER or SESSION sends.

#include "actors/contracts.hpp"

#include <memory>
#include <vector>

namespace pw::test {

struct mock_model_log {
  bool admit = true;
  /// Refusals say a breaker reopens in this many ms.
  int64_t retry_after_ms = 0;
  size_t admits = 0;
  /// The time left each admission request said its request had.
  std::vector<int64_t> ttls;
  std::vector<actors::call_outcome> outcomes;
};

inline actors::model_actor::behavior_type
mock_model(actors::model_actor::pointer, model_config_ptr settings,
           std::shared_ptr<mock_model_log> log) {
  return {
    [=](atom::admit, const actors::admit_request& req) {
      ++log->admits;
      log->ttls.push_back(req.ttl_ms);
      // The lease of admission n is 100 + n, so tests can tell them apart.
      return actors::admission{log->admit, log->admit ? "" : "refused",
                               settings,   log->admit ? 0 : log->retry_after_ms,
                               false,      log->admit ? 100 + log->admits : 0};
    },
    [=](atom::outcome, const actors::call_outcome& x) {
      log->outcomes.push_back(x);
    },
    [=](atom::status) {
      actors::model_status s;
      s.alias = settings->alias;
      return s;
    },
    [=](atom::probe) {
      // nop
    },
    [=](atom::checked, const upstream_result&) {
      // nop
    },
    [=](atom::renew) {
      // nop
    },
    [=](atom::renewed, const upstream_result&) {
      // nop
    },
  };
}

} // namespace pw::test
