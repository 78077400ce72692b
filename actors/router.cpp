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

/// Resolves one request: its client's rate limit, the route table and the
/// key's allowlist give the ordered candidates.
caf::expected<route_plan> resolve(router_ptr self, const resolve_request& req) {
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
  auto found
    = st.table->resolve(req.model, req.tags, key.allowed_models, req.endpoint);
  if (!found)
    return std::move(found.error());
  route_plan plan;
  plan.reason = std::move(found->reason);
  for (const auto& alias : found->models)
    if (auto it = st.models.find(alias); it != st.models.end())
      plan.candidates.push_back(candidate{it->first, it->second});
  return plan;
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
    [=](atom::resolve, resolve_request& req) -> caf::result<route_plan> {
      // The route follows from what the client sent (model, tags): a
      // failure here fails that request, never the ROUTER every request
      // needs.
      try {
        inject_fault(boundary::route);
        auto plan = resolve(self, req);
        if (!plan) {
          ++self->state.refused;
          return std::move(plan.error());
        }
        ++self->state.resolved;
        return std::move(*plan);
      } catch (...) {
        ++self->state.refused;
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
    [=](atom::status) {
      const auto& st = self->state;
      return router_status{st.resolved, st.refused, self->mailbox().size()};
    },
  };
}

} // namespace pw::actors
