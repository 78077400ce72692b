#include "actors/supervisor.hpp"

#include "actors/generation.hpp"
#include "actors/model.hpp"
#include "actors/router.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace pw::actors {

namespace {

using supervisor_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

/// How long /health waits for one MODEL.
constexpr auto status_timeout = std::chrono::seconds{2};

model_actor spawn_model(supervisor_ptr self, const model_config_ptr& cfg) {
  auto m
    = self->spawn(model, cfg, self->state.config->health, self->state.check);
  self->monitor(m);
  return m;
}

router_actor spawn_router(supervisor_ptr self) {
  auto r = self->spawn(router, self->state.config, self->state.models);
  self->monitor(r);
  return r;
}

void publish(supervisor_ptr self) {
  if (!self->state.publish)
    return;
  auto gen = std::make_shared<generation>();
  gen->system = &self->system();
  gen->config = self->state.config;
  gen->router = self->state.router;
  gen->supervisor = caf::actor_cast<supervisor_actor>(self);
  self->state.publish(std::move(gen));
}

/// Counts one restart; false when the crash-loop budget is spent.
bool may_restart(supervisor_ptr self) {
  auto& st = self->state;
  auto now = std::chrono::steady_clock::now();
  if (now - st.window_start > std::chrono::minutes{1}) {
    st.window_start = now;
    st.restarts = 0;
  }
  return ++st.restarts <= max_restarts_per_minute;
}

void on_down(supervisor_ptr self, caf::down_msg& dm) {
  auto& st = self->state;
  // Actors of a replaced generation end on purpose.
  auto retired = std::find_if(
    st.retiring.begin(), st.retiring.end(),
    [&](const caf::actor& a) { return a.address() == dm.source; });
  if (retired != st.retiring.end()) {
    st.retiring.erase(retired);
    return;
  }
  auto reason = caf::to_string(dm.reason);
  if (dm.source == st.router.address()) {
    log::write(log_level::error, "actor_down",
               {{"actor", "router"}, {"reason", reason}});
    if (!may_restart(self))
      return;
    st.router = spawn_router(self);
    publish(self);
    return;
  }
  for (size_t i = 0; i < st.models.size(); ++i) {
    auto& [alias, handle] = st.models[i];
    if (dm.source != handle.address())
      continue;
    log::write(log_level::error, "actor_down",
               {{"actor", "model"}, {"model", alias}, {"reason", reason}});
    if (!may_restart(self))
      return;
    handle = spawn_model(self, st.config->models[i]);
    self->send(st.router, atom::update_v, alias, handle);
    return;
  }
}

/// Serves `next`: keeps MODELs whose upstream and health settings did not
/// change, spawns the others and a new ROUTER, publishes the generation,
/// and retires what was replaced once its requests had time to finish.
void reload(supervisor_ptr self, gateway_config_ptr next) {
  auto& st = self->state;
  auto old_config = st.config;
  bool health_same = same_health(old_config->health, next->health);
  std::vector<std::pair<std::string, model_actor>> models;
  std::vector<caf::actor> replaced;
  std::vector<std::string> kept;
  st.config = next; // spawn_model reads the new health settings
  for (const auto& m : next->models) {
    auto old = std::find_if(st.models.begin(), st.models.end(),
                            [&](const auto& p) { return p.first == m->alias; });
    const auto* old_cfg = old_config->find_model(m->alias);
    if (old != st.models.end() && old_cfg != nullptr && health_same
        && same_upstream(**old_cfg, *m)) {
      models.emplace_back(m->alias, old->second);
      kept.push_back(m->alias);
      old->second = model_actor{};
    } else {
      models.emplace_back(m->alias, spawn_model(self, m));
    }
  }
  for (auto& [alias, handle] : st.models)
    if (handle)
      replaced.push_back(caf::actor_cast<caf::actor>(handle));
  replaced.push_back(caf::actor_cast<caf::actor>(st.router));
  for (const auto& a : replaced)
    st.retiring.push_back(a);
  st.models = std::move(models);
  st.router = spawn_router(self);
  st.loaded_at = log::timestamp();
  publish(self);
  log::write(log_level::info, "config_reloaded",
             {{"config_sha256", next->source_sha256},
              {"models", next->models.size()},
              {"models_kept", kept},
              {"api_keys", next->server.api_keys.size()}});
  // Sessions that started on the old generation still hold its ROUTER and
  // MODELs; they end within the request deadline.
  auto grace
    = to_ms(old_config->server.request_deadline) + std::chrono::seconds{1};
  self->delayed_send(self, grace, atom::retire_v, std::move(replaced));
}

} // namespace

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           gateway_config_ptr config, publish_fn publish_to_io,
           upstream_fn check) {
  auto& st = self->state;
  st.config = std::move(config);
  st.publish = std::move(publish_to_io);
  st.check = std::move(check);
  st.window_start = std::chrono::steady_clock::now();
  for (const auto& m : st.config->models)
    st.models.emplace_back(m->alias, spawn_model(self, m));
  st.router = spawn_router(self);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  st.loaded_at = log::timestamp();
  // Children end with the SUPERVISOR: it exits only at shutdown.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& [alias, handle] : self->state.models)
      self->send_exit(handle, msg.reason);
    self->send_exit(self->state.router, msg.reason);
    for (auto& old : self->state.retiring)
      self->send_exit(old, msg.reason);
    self->quit(msg.reason);
  });
  return {
    [self](atom::get) { return self->state.router; },
    [self](atom::health) -> caf::result<health_report> {
      auto& models = self->state.models;
      auto rp = self->make_response_promise<health_report>();
      auto report = std::make_shared<health_report>();
      report->models.resize(models.size());
      report->config_sha256 = self->state.config->source_sha256;
      report->config_loaded_at = self->state.loaded_at;
      if (models.empty()) {
        rp.deliver(*report);
        return rp;
      }
      auto pending = std::make_shared<size_t>(models.size());
      for (size_t i = 0; i < models.size(); ++i) {
        auto alias = models[i].first;
        auto settings = self->state.config->models[i];
        auto done = [rp, report, pending]() mutable {
          if (--*pending == 0)
            rp.deliver(std::move(*report));
        };
        self->request(models[i].second, status_timeout, atom::status_v)
          .then(
            [report, i, done](model_status& s) mutable {
              report->models[i] = std::move(s);
              done();
            },
            [report, i, alias, settings, done](caf::error&) mutable {
              // A MODEL that does not answer shows up as unavailable.
              auto& s = report->models[i];
              s.alias = alias;
              s.provider = std::string{to_string(settings->provider)};
              s.model = settings->model;
              s.circuit = "unknown";
              s.last_error = "model actor not responding";
              done();
            });
      }
      return rp;
    },
    [self](atom::reload, gateway_config_ptr& next) { reload(self, next); },
    [self](atom::retire, std::vector<caf::actor>& old) {
      for (auto& a : old)
        self->send_exit(a, caf::exit_reason::user_shutdown);
    },
  };
}

} // namespace pw::actors
