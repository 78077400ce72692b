#include "actors/router.hpp"

#include "core/boundary.hpp"
#include "core/errc.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cmath>
#include <sstream>

namespace pw::actors {

namespace {

using router_ptr = router_actor::stateful_pointer<router_state>;
using decision_promise = caf::typed_response_promise<route_decision>;

/// Asks candidates[i], then the next ones, until one admits.
void admit_from(router_ptr self, decision_promise rp,
                std::shared_ptr<const std::vector<std::string>> candidates,
                size_t i, int64_t ttl_ms, int64_t soonest_ms,
                std::string reason) {
  if (i == candidates->size()) {
    // Nobody admitted: tell the client when the first breaker reopens.
    auto secs = soonest_ms > 0 ? (soonest_ms + 999) / 1000 : 1;
    rp.deliver(make_retry_error(errc::no_model_available,
                                "No model of the route is available now "
                                "(circuit open or at capacity)",
                                static_cast<uint32_t>(secs)));
    return;
  }
  const auto& alias = (*candidates)[i];
  auto it = self->state.models.find(alias);
  if (it == self->state.models.end()) {
    admit_from(self, std::move(rp), std::move(candidates), i + 1, ttl_ms,
               soonest_ms, std::move(reason));
    return;
  }
  auto handle = it->second;
  // No timeout: a MODEL always answers, and a dead one fails the
  // request at once. (A timer per request would wake CAF's clock thread.)
  self->request(handle, caf::infinite, atom::admit_v, admit_request{ttl_ms})
    .then(
      [=](admission& a) mutable {
        if (!a.admitted) {
          auto soonest = soonest_ms;
          if (a.retry_after_ms > 0
              && (soonest == 0 || a.retry_after_ms < soonest))
            soonest = a.retry_after_ms;
          admit_from(self, rp, candidates, i + 1, ttl_ms, soonest, reason);
          return;
        }
        auto d = decision_for(alias, handle, std::move(a));
        d.reason = reason;
        for (size_t j = i + 1; j < candidates->size(); ++j) {
          auto m = self->state.models.find((*candidates)[j]);
          if (m != self->state.models.end())
            d.remaining.push_back(candidate{m->first, m->second});
        }
        rp.deliver(std::move(d));
      },
      [=](caf::error&) mutable {
        // A MODEL that does not answer is skipped like a refusing one.
        admit_from(self, rp, candidates, i + 1, ttl_ms, soonest_ms, reason);
      });
}

/// The limiter of `client` under the current config.
sliding_window_limiter& limiter_of(router_ptr self, const std::string& client) {
  auto& st = self->state;
  auto window
    = std::chrono::duration_cast<sliding_window_limiter::clock::duration>(
      st.config->rate_limit.window);
  return st.limiters
    .try_emplace(client, st.config->rate_limit.max_requests, window)
    .first->second;
}

/// Resolves one request: its client's rate limit, the route table, the
/// key's allowlist, then the MODELs' admission (answered later).
caf::result<route_decision> resolve(router_ptr self,
                                    const resolve_request& req) {
  auto& st = self->state;
  const auto& cfg = *st.config;
  if (req.key_index >= cfg.server.api_keys.size())
    return make_error(errc::invalid_api_key, "Invalid API key");
  const auto& key = cfg.server.api_keys[req.key_index];
  if (cfg.rate_limit.enabled) {
    if (auto wait
        = limiter_of(self, req.client).try_acquire(self->clock().now())) {
      auto secs = std::chrono::duration<double>(*wait).count();
      auto retry = static_cast<uint32_t>(std::max(1.0, std::ceil(secs)));
      std::ostringstream msg;
      msg << "Rate limit exceeded for this API key: "
          << cfg.rate_limit.max_requests << " requests per "
          << cfg.rate_limit.window.count() << " s";
      return make_retry_error(errc::rate_limited, msg.str(), retry);
    }
  }
  auto found = st.table->resolve(req.model, req.tags, key.allowed_models);
  if (!found)
    return std::move(found.error());
  auto rp = self->make_response_promise<route_decision>();
  admit_from(
    self, rp,
    std::make_shared<const std::vector<std::string>>(std::move(found->models)),
    0, req.ttl_ms, 0, std::move(found->reason));
  return rp;
}

} // namespace

router_actor::behavior_type
router(router_actor::stateful_pointer<router_state> self,
       gateway_config_ptr config,
       std::vector<std::pair<std::string, model_actor>> models,
       router_actor predecessor) {
  auto& st = self->state;
  st.table = std::make_unique<route_table>(*config);
  st.config = std::move(config);
  for (auto& [alias, handle] : models)
    st.models.emplace(alias, std::move(handle));
  if (predecessor && st.config->rate_limit.enabled)
    // The windows of the ROUTER this one replaces, under the new limits.
    // Awaited: no request is resolved before they are in.
    self->request(predecessor, std::chrono::seconds{5}, atom::get_v)
      .await(
        [self](rate_windows& w) {
          for (auto& [client, times] : w.clients)
            limiter_of(self, client).adopt(times);
        },
        [](caf::error&) {
          // It is gone already: the windows start empty, as at start-up.
        });
  return {
    [=](atom::resolve, resolve_request& req) -> caf::result<route_decision> {
      // The route follows from what the client sent (model, tags): a
      // failure here fails that request, never the ROUTER every request
      // needs.
      try {
        inject_fault(boundary::route);
        return resolve(self, req);
      } catch (...) {
        report_failure(boundary::route, req.request_id,
                       current_exception_text());
        return make_error(errc::internal,
                          std::string{internal_failure_message});
      }
    },
    [=](atom::update, const std::string& alias, model_actor& handle) {
      self->state.models[alias] = std::move(handle);
    },
    [=](atom::get) {
      rate_windows out;
      for (const auto& [client, limiter] : self->state.limiters)
        out.clients.emplace_back(client, limiter.times());
      return out;
    },
  };
}

} // namespace pw::actors
