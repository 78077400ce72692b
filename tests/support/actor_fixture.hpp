#pragma once

// Actor tests on CAF's deterministic `testing` scheduler: no threads, no
// sleeps. `run()` drains every mailbox; time moves only through
// `advance_time()` / `trigger_timeouts()`.

#include "core/config/config.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <memory>
#include <string>
#include <vector>

namespace pw::test {

class actor_fixture {
public:
  actor_fixture()
      : sys(configure(cfg)), self(sys, true),
        sched(
          dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // nop
  }

  /// Kills every actor spawned through spawn(): ~actor_system waits for all
  /// actors, and long-lived ones never end on their own.
  virtual ~actor_fixture() {
    for (auto& a : spawned_)
      self->send_exit(a, caf::exit_reason::kill);
    sched.run();
  }

  /// Runs until no actor has a message left.
  void run() { sched.run(); }

  /// Spawns an actor that the fixture kills at the end of the test.
  template <class... Ts>
  auto spawn(Ts&&... xs) {
    auto handle = sys.spawn(std::forward<Ts>(xs)...);
    spawned_.push_back(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::scheduler::test_coordinator& sched;

private:
  std::vector<caf::actor> spawned_;

  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("logger.verbosity", caf::atom("quiet"));
    return c;
  }
};

/// A model_config for tests.
inline model_config_ptr test_model(const std::string& alias,
                                   std::string provider = "openai") {
  auto m = std::make_shared<model_config>();
  m->alias = alias;
  m->provider = provider;
  m->model = "upstream-" + alias;
  std::string why;
  m->target = *parse_base_url("http://127.0.0.1:9/v1", why);
  m->timeout = seconds_d{30};
  return m;
}

} // namespace pw::test
