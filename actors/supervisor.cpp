#include "actors/supervisor.hpp"

#include "actors/generation.hpp"
#include "actors/ledger.hpp"
#include "actors/model.hpp"
#include "actors/router.hpp"
#include "actors/tracer.hpp"
#include "core/observe/log.hpp"

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

router_actor spawn_router(supervisor_ptr self,
                          router_actor predecessor = router_actor{}) {
  auto r = self->spawn(router, self->state.config, self->state.models,
                       std::move(predecessor));
  self->monitor(r);
  return r;
}

ledger_actor spawn_ledger(supervisor_ptr self) {
  // With Redis the LEDGER's connection is driven by an io thread's event
  // loop; the LEDGER never waits on the network.
  auto l = self->spawn(ledger, self->state.config, self->state.redis_links);
  self->monitor(l);
  return l;
}

/// Spawns and monitors the TRACER, if `tracing` is on.
tracer_actor spawn_tracer_of(supervisor_ptr self) {
  const auto& cfg = self->state.config->tracing;
  if (!cfg.enabled())
    return {};
  auto t = spawn_tracer(self->system(), cfg, self->state.check);
  self->monitor(t);
  return t;
}

/// Spawns the PLUGIN of one middleware entry (checked at load) and
/// monitors it. A null handle means it could not start: the SESSION then
/// applies the entry's `on_error`.
plugin_actor spawn_plugin(supervisor_ptr self, const plugin_entry& entry) {
  plugin_actor out;
  if (self->state.spawn_plugin)
    out = self->state.spawn_plugin(self->system(), entry, self->state.check);
  if (!out) {
    log::write(log_level::error, "plugin_not_started",
               {{"plugin", entry.plugin}, {"entry", entry.path}});
    return out;
  }
  self->monitor(out);
  return out;
}

/// The slot of `entry`; its counters are new unless a kept slot hands
/// over its own (with its restarts).
plugin_slot slot_of(const plugin_entry& entry, plugin_actor actor,
                    const plugin_slot* kept = nullptr) {
  plugin_slot out;
  out.name = entry.plugin;
  out.path = entry.path;
  out.actor = std::move(actor);
  out.timeout = entry.timeout;
  out.fail_open = entry.fail_open;
  out.stream = entry.stream_in_force;
  if (kept != nullptr) {
    out.stats = kept->stats;
    out.restarts = kept->restarts;
  } else {
    out.stats = std::make_shared<actor_stats::plugin_counters>();
  }
  return out;
}

/// The post plugins that hold streams, and the first that refuses them.
void settle_streams(const gateway_config& cfg, plugin_set& set) {
  auto held = std::make_shared<held_stages>();
  const auto& post = cfg.middleware.post_response;
  for (size_t i = 0; i < post.size(); ++i) {
    const auto& e = post[i];
    if (e.stream_in_force == stream_mode::hold && e.rule)
      held->push_back({e.rule, e.stream_window_in_force, i});
    if (e.stream_in_force == stream_mode::refuse && !set.refuses_streams)
      set.refuses_streams = i;
  }
  if (!held->empty())
    set.held = std::move(held);
}

/// The PLUGINs of `cfg`. A reload passes the running set: an entry that
/// did not change keeps its PLUGIN (an audit log keeps its one writer);
/// what is not kept is left in `unused`.
std::shared_ptr<plugin_set> spawn_plugins(supervisor_ptr self,
                                          const gateway_config& cfg,
                                          const gateway_config* old_cfg,
                                          plugin_set* old,
                                          std::vector<caf::actor>& unused) {
  auto out = std::make_shared<plugin_set>();
  auto fill = [&](const std::vector<plugin_entry>& entries,
                  const std::vector<plugin_entry>* old_entries,
                  std::vector<plugin_slot>* old_slots,
                  std::vector<plugin_slot>& slots) {
    for (const auto& e : entries) {
      plugin_actor kept;
      const plugin_slot* kept_slot = nullptr;
      if (old_entries != nullptr && old_slots != nullptr)
        for (size_t i = 0; i < old_entries->size() && i < old_slots->size();
             ++i)
          if ((*old_slots)[i].actor
              && (*old_entries)[i].fingerprint == e.fingerprint) {
            kept = std::move((*old_slots)[i].actor);
            (*old_slots)[i].actor = plugin_actor{};
            kept_slot = &(*old_slots)[i];
            break;
          }
      if (kept)
        slots.push_back(slot_of(e, std::move(kept), kept_slot));
      else
        slots.push_back(slot_of(e, spawn_plugin(self, e)));
    }
  };
  fill(cfg.middleware.pre_request,
       old_cfg ? &old_cfg->middleware.pre_request : nullptr,
       old ? &old->pre : nullptr, out->pre);
  fill(cfg.middleware.post_response,
       old_cfg ? &old_cfg->middleware.post_response : nullptr,
       old ? &old->post : nullptr, out->post);
  settle_streams(cfg, *out);
  if (old != nullptr) {
    for (auto* slots : {&old->pre, &old->post})
      for (auto& slot : *slots)
        if (slot.actor)
          unused.push_back(caf::actor_cast<caf::actor>(slot.actor));
  }
  return out;
}

generation_ptr current_generation(supervisor_ptr self) {
  auto gen = std::make_shared<generation>();
  gen->system = &self->system();
  gen->config = self->state.config;
  gen->router = self->state.router;
  gen->ledger = self->state.ledger;
  gen->supervisor = caf::actor_cast<supervisor_actor>(self);
  gen->plugins = self->state.plugins;
  gen->tracer = self->state.tracer;
  return gen;
}

void publish(supervisor_ptr self) {
  if (!self->state.publish)
    return;
  self->state.publish(current_generation(self));
}

/// Every PLUGIN of the running set.
std::vector<caf::actor> plugin_actors(const plugin_set_ptr& set) {
  std::vector<caf::actor> out;
  if (set)
    for (const auto* slots : {&set->pre, &set->post})
      for (const auto& slot : *slots)
        if (slot.actor)
          out.push_back(caf::actor_cast<caf::actor>(slot.actor));
  return out;
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

/// Restarts counted in the current window (0 once it is over).
uint32_t restarts_this_minute(const supervisor_state& st) {
  if (std::chrono::steady_clock::now() - st.window_start
      > std::chrono::minutes{1})
    return 0;
  return std::min(st.restarts, max_restarts_per_minute);
}

/// "pre" for stage 0, "post" for stage 1.
std::string_view stage_name(uint64_t stage) {
  return stage == 0 ? "pre" : "post";
}

/// The slots of `stage` (0 pre, 1 post) in `set`.
template <class Set>
auto& slots_of(Set& set, uint64_t stage) {
  return stage == 0 ? set.pre : set.post;
}

/// The config entries of `stage`.
const std::vector<plugin_entry>& entries_of(const gateway_config& cfg,
                                            uint64_t stage) {
  return stage == 0 ? cfg.middleware.pre_request : cfg.middleware.post_response;
}

/// The restart records of `stage`.
std::vector<supervisor_state::plugin_downs>& downs_of(supervisor_state& st,
                                                      uint64_t stage) {
  return stage == 0 ? st.pre_downs : st.post_downs;
}

/// "pre[0]" or "post[2]".
std::string slot_label(uint64_t stage, size_t index) {
  return std::string{stage_name(stage)} + "[" + std::to_string(index) + "]";
}

/// A PLUGIN runs again, `after_ms` after it went down (0: at once).
void restarted(plugin_slot& slot, int64_t after_ms) {
  ++slot.restarts;
  slot.down_since.clear();
  log::write(log_level::info, "plugin_restarted",
             {{"plugin", slot.name},
              {"entry", slot.path},
              {"restarts", slot.restarts},
              {"after_ms", after_ms}});
}

/// The PLUGIN of entry `index` of `stage` (0 pre, 1 post) went down:
/// restarts it at once, after a backoff when it went down again within a
/// minute, or leaves it down when the budget is spent. Publishes the set.
void plugin_down(supervisor_ptr self, uint64_t stage, size_t index) {
  auto& st = self->state;
  auto set = std::make_shared<plugin_set>(*st.plugins);
  auto& slot = slots_of(*set, stage)[index];
  const auto& entry = entries_of(*st.config, stage)[index];
  auto& downs = downs_of(st, stage);
  downs.resize(std::max(downs.size(), index + 1));
  auto& down = downs[index];
  auto now = std::chrono::steady_clock::now();
  slot.actor = plugin_actor{};
  slot.down_since = log::timestamp();
  slot.restart_at.clear();
  if (may_restart(self)) {
    auto since_last = down.last == std::chrono::steady_clock::time_point{}
                        ? std::chrono::steady_clock::duration::max()
                        : now - down.last;
    down.backoff = next_plugin_backoff(since_last, down.backoff);
    down.last = now;
    if (down.backoff.count() == 0) {
      slot.actor = spawn_plugin(self, entry);
      if (slot.actor)
        restarted(slot, 0);
    } else {
      slot.restart_at
        = log::timestamp(std::chrono::system_clock::now() + down.backoff);
      log::write(log_level::warning, "plugin_restart_delayed",
                 {{"plugin", slot.name},
                  {"entry", slot.path},
                  {"backoff_ms", down.backoff.count()}});
      self->delayed_send(self, down.backoff, atom::restart_v, st.generation,
                         stage, uint64_t{index});
    }
  } else {
    log::write(
      log_level::error, "plugin_given_up",
      {{"plugin", slot.name}, {"entry", slot.path}, {"until", "a reload"}});
  }
  st.plugins = std::move(set);
  publish(self);
}

/// A PLUGIN's backoff is over: starts it again (unless a reload came
/// first).
void plugin_restart(supervisor_ptr self, uint64_t generation, uint64_t stage,
                    uint64_t index) {
  auto& st = self->state;
  if (generation != st.generation || !st.plugins)
    return;
  const auto& slots = slots_of(*st.plugins, stage);
  const auto& entries = entries_of(*st.config, stage);
  if (index >= slots.size() || index >= entries.size() || slots[index].actor)
    return;
  auto set = std::make_shared<plugin_set>(*st.plugins);
  auto& slot = slots_of(*set, stage)[index];
  slot.restart_at.clear();
  slot.actor = spawn_plugin(self, entries[index]);
  const auto& downs = downs_of(st, stage);
  if (slot.actor)
    restarted(slot, index < downs.size() ? downs[index].backoff.count() : 0);
  st.plugins = std::move(set);
  publish(self);
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
    if (!may_restart(self)) {
      st.router_given_up = true;
      return;
    }
    st.router = spawn_router(self);
    publish(self);
    return;
  }
  if (st.tracer && dm.source == st.tracer.address()) {
    // Spans waiting in it are lost; requests go on, traced or not.
    log::write(log_level::error, "actor_down",
               {{"actor", "tracer"}, {"reason", reason}});
    st.tracer = tracer_actor{};
    if (may_restart(self))
      st.tracer = spawn_tracer_of(self);
    publish(self);
    return;
  }
  if (dm.source == st.ledger.address()) {
    // Holds in flight are lost with it; the journal keeps the day and
    // month totals.
    log::write(log_level::error, "actor_down",
               {{"actor", "ledger"}, {"reason", reason}});
    if (!may_restart(self)) {
      st.ledger_given_up = true;
      return;
    }
    st.ledger = spawn_ledger(self);
    publish(self);
    return;
  }
  if (st.plugins) {
    for (uint64_t stage : {0, 1}) {
      const auto& slots = slots_of(*st.plugins, stage);
      for (size_t i = 0; i < slots.size(); ++i) {
        const auto& slot = slots[i];
        if (!slot.actor || dm.source != slot.actor.address())
          continue;
        // Requests waiting on it got an error and their `on_error`.
        log::write(log_level::error, "actor_down",
                   {{"actor", "plugin"},
                    {"plugin", slot.name},
                    {"entry", slot.path},
                    {"reason", reason}});
        plugin_down(self, stage, i);
        return;
      }
    }
  }
  for (size_t i = 0; i < st.models.size(); ++i) {
    auto& [alias, handle] = st.models[i];
    if (dm.source != handle.address())
      continue;
    log::write(log_level::error, "actor_down",
               {{"actor", "model"}, {"model", alias}, {"reason", reason}});
    if (!may_restart(self)) {
      st.given_up_models.push_back(alias);
      return;
    }
    handle = spawn_model(self, st.config->models[i]);
    self->send(st.router, atom::update_v, alias, handle);
    return;
  }
}

/// Serves `next`: keeps MODELs whose upstream and health settings did not
/// change (and that are alive), spawns the others and a new ROUTER (and
/// the LEDGER, if it was left dead), publishes the generation, and
/// retires what was replaced once its requests had time to finish.
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
    bool dead = std::find(st.given_up_models.begin(), st.given_up_models.end(),
                          m->alias)
                != st.given_up_models.end();
    if (old != st.models.end() && old_cfg != nullptr && health_same && !dead
        && same_upstream(**old_cfg, *m)) {
      models.emplace_back(m->alias, old->second);
      kept.push_back(m->alias);
      old->second = model_actor{};
    } else {
      models.emplace_back(m->alias, spawn_model(self, m));
    }
  }
  st.given_up_models.clear();
  st.router_given_up = false;
  ++st.generation;
  st.pre_downs.clear();
  st.post_downs.clear();
  for (auto& [alias, handle] : st.models)
    if (handle)
      replaced.push_back(caf::actor_cast<caf::actor>(handle));
  replaced.push_back(caf::actor_cast<caf::actor>(st.router));
  auto old_plugins = st.plugins ? std::make_shared<plugin_set>(*st.plugins)
                                : std::make_shared<plugin_set>();
  st.plugins
    = spawn_plugins(self, *next, old_config.get(), old_plugins.get(), replaced);
  for (const auto& a : replaced)
    st.retiring.push_back(a);
  st.models = std::move(models);
  st.router = spawn_router(self, st.router);
  // The LEDGER keeps its counters: only limits and prices change. One
  // left dead starts again from its journal (Redis, or none).
  if (st.ledger_given_up) {
    st.ledger = spawn_ledger(self);
    st.ledger_given_up = false;
  } else {
    self->send(st.ledger, atom::update_v, next);
  }
  // A TRACER left dead starts again, on the settings it started with
  // (they change only with a restart).
  if (old_config->tracing.enabled() && !st.tracer) {
    st.tracer = spawn_tracer(self->system(), old_config->tracing, st.check);
    self->monitor(st.tracer);
  }
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

/// The SUPERVISOR's own part of /health: generation, restart budget,
/// children given up on, and each PLUGIN entry.
void describe_self(const supervisor_state& st, health_report& out) {
  out.config_sha256 = st.config->source_sha256;
  out.config_loaded_at = st.loaded_at;
  out.generation = st.generation;
  out.restarts_last_minute = restarts_this_minute(st);
  out.restart_budget_left = max_restarts_per_minute - out.restarts_last_minute;
  for (const auto& alias : st.given_up_models)
    out.given_up.push_back("model " + alias);
  if (st.router_given_up)
    out.given_up.push_back("router");
  if (st.ledger_given_up)
    out.given_up.push_back("ledger");
  if (st.config->tracing.enabled() && !st.tracer)
    out.given_up.push_back("tracer");
  if (!st.plugins)
    return;
  for (uint64_t stage : {0, 1}) {
    const auto& slots = slots_of(*st.plugins, stage);
    for (size_t i = 0; i < slots.size(); ++i) {
      const auto& slot = slots[i];
      plugin_health p;
      p.stage = std::string{stage_name(stage)};
      p.index = i;
      p.name = slot.name;
      p.entry = slot.path;
      p.running = static_cast<bool>(slot.actor);
      p.restarts = slot.restarts;
      p.down_since = slot.down_since;
      p.restart_at = slot.restart_at;
      if (slot.stats)
        p.calls = slot.stats->read();
      if (!p.running && p.restart_at.empty())
        out.given_up.push_back("plugin " + slot_label(stage, i) + " ("
                               + slot.name + ")");
      out.plugins.push_back(std::move(p));
    }
  }
}

/// Answers /health: asks every MODEL and the ROUTER (each within
/// `status_timeout`; one that does not answer is named in `partial`) and
/// adds what the SUPERVISOR knows itself.
caf::result<health_report> collect_health(supervisor_ptr self) {
  auto& st = self->state;
  auto rp = self->make_response_promise<health_report>();
  auto report = std::make_shared<health_report>();
  report->models.resize(st.models.size());
  describe_self(st, *report);
  report->sessions = actor_stats::read_sessions();
  auto pending = std::make_shared<size_t>(st.models.size() + 1);
  auto done = [rp, report, pending]() mutable {
    if (--*pending == 0)
      rp.deliver(std::move(*report));
  };
  auto waited = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                 status_timeout)
                                 .count())
                + " s";
  self->request(st.router, status_timeout, atom::status_v)
    .then(
      [report, done](router_status& r) mutable {
        report->router = r;
        done();
      },
      [report, done, waited](caf::error&) mutable {
        report->router_answered = false;
        report->partial.push_back("router: did not answer within " + waited);
        done();
      });
  for (size_t i = 0; i < st.models.size(); ++i) {
    auto alias = st.models[i].first;
    auto settings = st.config->models[i];
    self->request(st.models[i].second, status_timeout, atom::status_v)
      .then(
        [report, i, done](model_status& s) mutable {
          report->models[i] = std::move(s);
          done();
        },
        [report, i, alias, settings, done, waited](caf::error&) mutable {
          // A MODEL that does not answer shows up as unavailable.
          auto& s = report->models[i];
          s.alias = alias;
          s.provider = settings->provider;
          s.model = settings->model;
          s.circuit = "unknown";
          s.last_error = "model actor not responding";
          report->partial.push_back("model " + alias
                                    + ": did not answer within " + waited);
          done();
        });
  }
  return rp;
}

} // namespace

std::chrono::milliseconds
next_plugin_backoff(std::chrono::steady_clock::duration since_last,
                    std::chrono::milliseconds previous) {
  if (since_last >= std::chrono::minutes{1})
    return std::chrono::milliseconds{0};
  if (previous.count() == 0)
    return first_plugin_backoff;
  return std::min(previous * 2, max_plugin_backoff);
}

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           gateway_config_ptr config, publish_fn publish_to_io,
           upstream_fn check, plugin_spawner spawner,
           redis_link_factory redis_links) {
  auto& st = self->state;
  st.config = std::move(config);
  st.publish = std::move(publish_to_io);
  st.check = std::move(check);
  st.spawn_plugin = std::move(spawner);
  st.redis_links = std::move(redis_links);
  st.window_start = std::chrono::steady_clock::now();
  for (const auto& m : st.config->models)
    st.models.emplace_back(m->alias, spawn_model(self, m));
  st.router = spawn_router(self);
  st.ledger = spawn_ledger(self);
  st.tracer = spawn_tracer_of(self);
  std::vector<caf::actor> none;
  st.plugins = spawn_plugins(self, *st.config, nullptr, nullptr, none);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  st.loaded_at = log::timestamp();
  // Children end with the SUPERVISOR: it exits only at shutdown.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& [alias, handle] : self->state.models)
      self->send_exit(handle, msg.reason);
    self->send_exit(self->state.router, msg.reason);
    self->send_exit(self->state.ledger, msg.reason);
    if (self->state.tracer)
      self->send_exit(self->state.tracer, msg.reason);
    for (auto& p : plugin_actors(self->state.plugins))
      self->send_exit(p, msg.reason);
    for (auto& old : self->state.retiring)
      self->send_exit(old, msg.reason);
    self->quit(msg.reason);
  });
  return {
    [self](atom::get) { return current_generation(self); },
    [self](atom::health) { return collect_health(self); },
    [self](atom::reload, gateway_config_ptr& next) { reload(self, next); },
    [self](atom::restart, uint64_t generation, uint64_t stage, uint64_t index) {
      plugin_restart(self, generation, stage, index);
    },
    [self](atom::retire, std::vector<caf::actor>& old) {
      // Forgotten here: one already dead (given up on) sends no more
      // down message to take it off the list, and the others' are
      // ignored (they are no child of the running generation).
      auto& retiring = self->state.retiring;
      for (auto& a : old) {
        self->send_exit(a, caf::exit_reason::user_shutdown);
        retiring.erase(std::remove(retiring.begin(), retiring.end(), a),
                       retiring.end());
      }
    },
  };
}

} // namespace pw::actors
