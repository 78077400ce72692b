// pw-router: flags, config, actor system, io threads, signals.
//
// Start-up: parse flags -> load and validate the config (exit 2 with every
// problem listed) -> bind the listeners -> start the actor system and the
// SUPERVISOR -> start the io threads -> print the "listening" line.
// Shutdown (SIGTERM/SIGINT): drain the connections, stop the actors while
// the io threads still run (their last posts land), stop the io threads and
// destroy their contexts, then the actor system.

#include "actors/contracts.hpp"
#include "actors/generation.hpp"
#include "actors/supervisor.hpp"
#include "adapters/provider.hpp"
#include "app/sd_notify.hpp"
#include "core/config/config.hpp"
#include "core/observe/build_info.hpp"
#include "core/observe/log.hpp"
#include "core/sha256.hpp"
#include "http/io_scheduler.hpp"
#include "http/server.hpp"
#include "plugins/audit_log/audit_verify.hpp"
#include "plugins/audit_log/checkpoint.hpp"
#include "plugins/plugin.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view usage
  = R"(usage: pw-router [--config FILE] [--host HOST] [--port PORT]
       pw-router --check-config [FILE]
       pw-router verify-audit [--pubkey FILE [--witness FILE]] FILE...
       pw-router audit-key [--generate] FILE
       pw-router hash-key < KEY
       pw-router --version

  --config FILE     configuration file (default: $CONFIG_PATH, else config.yaml)
  --host HOST       listen address (overrides server.host)
  --port PORT       listen port (overrides server.port; 0 picks a free port)
  --check-config    validate the configuration and exit: 0 valid, 2 invalid
  verify-audit      re-compute an audit log's hash chain (rotated files
                    oldest first, the live file last): prints "ok N lines"
                    and exits 0, or names the first broken line and exits 1;
                    --pubkey also checks its signed checkpoints, --witness
                    holds them to a witness's copy
  audit-key         print the public key of the Ed25519 private key FILE
                    that signs audit checkpoints; --generate creates FILE
                    (mode 0600) and FILE.pub first
  hash-key          read a client key on stdin (one line) and print the
                    config line that stores only its SHA-256:
                    key_sha256: "<64 hex digits>"
  --version         print the version and exit
)";

struct options {
  std::string config;
  std::optional<std::string> host;
  std::optional<uint16_t> port;
  bool check_only = false;
};

/// Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
constexpr int exit_runtime = 1;
constexpr int exit_config = 2;

std::optional<options> parse_flags(int argc, char** argv, int& exit_code) {
  options opts;
  std::optional<std::string> config;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string> {
      if (i + 1 >= argc) {
        std::cerr << "pw-router: " << flag << " needs a value\n" << usage;
        return std::nullopt;
      }
      return std::string{argv[++i]};
    };
    if (arg == "--version") {
      std::cout << "pw-router " << PW_VERSION << " (" << pw::git_revision()
                << ")\n"
                << pw::dependency_versions();
      exit_code = 0;
      return std::nullopt;
    }
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      exit_code = 0;
      return std::nullopt;
    }
    if (arg == "--config") {
      config = value(arg);
      if (!config) {
        exit_code = exit_config;
        return std::nullopt;
      }
    } else if (arg == "--host") {
      opts.host = value(arg);
      if (!opts.host) {
        exit_code = exit_config;
        return std::nullopt;
      }
    } else if (arg == "--port") {
      auto text = value(arg);
      char* end = nullptr;
      auto port = text ? std::strtol(text->c_str(), &end, 10) : -1;
      if (!text || text->empty() || *end != '\0' || port < 0 || port > 65535) {
        std::cerr << "pw-router: --port needs a number from 0 to 65535\n";
        exit_code = exit_config;
        return std::nullopt;
      }
      opts.port = static_cast<uint16_t>(port);
    } else if (arg == "--check-config") {
      opts.check_only = true;
      if (i + 1 < argc && !std::string_view{argv[i + 1]}.starts_with("--"))
        config = std::string{argv[++i]};
    } else {
      std::cerr << "pw-router: unknown argument '" << arg << "'\n" << usage;
      exit_code = exit_config;
      return std::nullopt;
    }
  }
  if (config)
    opts.config = *config;
  else if (const char* env = std::getenv("CONFIG_PATH"); env && *env)
    opts.config = env;
  else
    opts.config = "config.yaml";
  return opts;
}

/// Loads the config, checks the middleware against the plugin registry and
/// loads the TLS certificate (into `tls`, when `server.tls` is set); fills
/// `errors` (one line per problem) on failure.
std::optional<pw::gateway_config>
load_checked(const std::string& path, std::vector<std::string>& errors,
             std::shared_ptr<pw::http::tls_context>& tls) {
  auto cfg = pw::load_config(path, pw::adapters::catalog());
  if (!cfg) {
    std::string text = pw::message_of(cfg.error());
    size_t pos = 0;
    while (pos <= text.size()) {
      auto nl = text.find('\n', pos);
      errors.push_back(text.substr(pos, nl - pos));
      if (nl == std::string::npos)
        break;
      pos = nl + 1;
    }
    return std::nullopt;
  }
  errors = pw::plugins::check_middleware(*cfg);
  if (!errors.empty())
    return std::nullopt;
  tls = nullptr;
  if (cfg->server.tls.enabled()) {
    auto loaded = pw::http::load_tls(cfg->server.tls);
    if (!loaded) {
      errors.push_back(pw::message_of(loaded.error()));
      return std::nullopt;
    }
    tls = std::move(*loaded);
  }
  return std::move(*cfg);
}

/// Loads the config at start-up; prints every problem to stderr.
std::optional<pw::gateway_config>
load(const std::string& path, std::shared_ptr<pw::http::tls_context>& tls) {
  std::vector<std::string> errors;
  auto cfg = load_checked(path, errors, tls);
  if (!cfg) {
    std::cerr << "pw-router: invalid configuration " << path << ":\n";
    for (const auto& e : errors)
      std::cerr << "  " << e << "\n";
  }
  return cfg;
}

/// One `config_warning` line per valid but extreme value.
void log_config_warnings(const pw::gateway_config& cfg) {
  for (const auto& w : cfg.warnings)
    pw::log::write(pw::log_level::warning, "config_warning", {{"warning", w}});
}

/// The fingerprints of the `audit_log` entries of `middleware.post_response`.
std::vector<std::string> audit_entries(const pw::gateway_config& cfg) {
  std::vector<std::string> out;
  for (const auto& e : cfg.middleware.post_response)
    if (e.plugin == "audit_log")
      out.push_back(e.fingerprint);
  return out;
}

/// The listener and thread settings that differ between `a` and `b`: a
/// reload cannot change them.
std::vector<std::string> restart_only_changes(const pw::server_config& a,
                                              const pw::server_config& b) {
  std::vector<std::string> out;
  if (a.host != b.host || a.port != b.port)
    out.emplace_back("server.host/server.port");
  if (a.io_threads != b.io_threads || a.actor_threads != b.actor_threads)
    out.emplace_back("server.io_threads/server.actor_threads");
  if (a.max_connections != b.max_connections)
    out.emplace_back("server.max_connections");
  if (a.sched_batch != b.sched_batch)
    out.emplace_back("server.sched_batch");
  return out;
}

/// SIGHUP: reads the config file again and hands a valid one to the
/// SUPERVISOR; an invalid one is rejected with its errors logged, and the
/// running one keeps serving. Listener and thread settings need a restart.
/// Returns the configuration now being served.
pw::gateway_config_ptr reload(const options& opts,
                              const pw::gateway_config_ptr& running,
                              const pw::actors::supervisor_actor& sup,
                              pw::http::server& server) {
  using namespace pw;
  std::vector<std::string> errors;
  std::shared_ptr<http::tls_context> tls;
  auto next = load_checked(opts.config, errors, tls);
  if (!next) {
    log::write(log_level::error, "reload_rejected",
               {{"config", opts.config}, {"errors", errors}});
    return running;
  }
  // An audit log has one writer: its settings change only with a restart,
  // so that no two writers ever append to one chain.
  if (audit_entries(*running) != audit_entries(*next)) {
    log::write(
      log_level::error, "reload_rejected",
      {{"config", opts.config},
       {"errors", std::vector<std::string>{
                    "middleware.post_response: audit_log entries changed; "
                    "restart pw-router to apply them (one writer per audit "
                    "chain)"}}});
    return running;
  }
  const auto& a = running->server;
  auto restart_only = restart_only_changes(a, next->server);
  // Certificates rotate on SIGHUP; switching a listener between plain and
  // TLS would surprise every client, so that takes a restart.
  if (a.tls.enabled() != next->server.tls.enabled()) {
    restart_only.emplace_back("server.tls (on/off)");
    next->server.tls = a.tls;
  } else if (tls) {
    server.set_tls(tls);
    log::write(log_level::info, "tls_reloaded",
               {{"subject", http::tls_subject(*tls)},
                {"not_after", http::tls_not_after(*tls)}});
  }
  // One TRACER per process: its collector and batching take a restart.
  if (!(running->tracing == next->tracing)) {
    restart_only.emplace_back("tracing");
    next->tracing = running->tracing;
  }
  // The LEDGER keeps its backend (embedded counters, or its Redis).
  const auto& was = running->state;
  auto& now = next->state;
  if (was.backend != now.backend || was.redis.host != now.redis.host
      || was.redis.port != now.redis.port || was.redis.db != now.redis.db
      || was.redis.key_prefix != now.redis.key_prefix
      || was.redis.password != now.redis.password
      || was.redis.timeout != now.redis.timeout) {
    restart_only.emplace_back("state.backend, state.redis");
    now.backend = was.backend;
    now.redis = was.redis;
  }
  if (!restart_only.empty())
    log::write(log_level::warning, "reload_needs_restart",
               {{"keys", restart_only},
                {"message", "these settings keep their running values "
                            "until a restart"}});
  log::set_level(next->logging.level);
  log_config_warnings(*next);
  auto served = std::make_shared<const gateway_config>(std::move(*next));
  caf::anon_send(sup, atom::reload_v, served);
  return served;
}

/// Asks the SUPERVISOR for the first generation (ROUTER, PLUGINs).
/// Start-up only: blocking here is fine, no request is being served yet.
pw::actors::generation_ptr
first_generation(caf::actor_system& sys,
                 const pw::actors::supervisor_actor& sup) {
  pw::actors::generation_ptr out;
  caf::scoped_actor self{sys};
  self->request(sup, std::chrono::seconds{10}, pw::atom::get_v)
    .receive([&](pw::actors::generation_ptr g) { out = std::move(g); },
             [&](caf::error& err) {
               std::cerr << "pw-router: the supervisor did not start: "
                         << caf::to_string(err) << "\n";
             });
  return out;
}

/// Blocks SIGINT, SIGTERM and SIGHUP (for sigwait()) and ignores SIGPIPE;
/// returns the signals to wait for.
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

/// Switches the process to SCHED_BATCH; logs a warning when refused.
void enter_sched_batch() {
  using namespace pw;
  sched_param param{};
  if (sched_setscheduler(0, SCHED_BATCH, &param) != 0)
    log::write(log_level::warning, "sched_batch_unavailable",
               {{"message", "could not switch to SCHED_BATCH; running "
                            "under the default policy"}});
}

/// The scheduler of the actor system: by default the io threads run the
/// actors (no lock shared between cores, http/io_scheduler.hpp). With
/// `server.actor_threads` set, a pool of CAF threads runs them: the
/// `sharing` policy, whose workers sleep on one condition variable and wake
/// when work arrives (the default work-stealing policy polls and then
/// sleeps in fixed steps of 50 us and 10 ms, which measured +110 us p50 at
/// one connection, docs/performance.md).
void configure_scheduler(caf::actor_system_config& sys_cfg,
                         const pw::gateway_config& cfg) {
  if (cfg.server.actor_threads == 0) {
    pw::http::use_io_scheduler(sys_cfg);
    return;
  }
  sys_cfg.set("scheduler.max-threads",
              static_cast<size_t>(cfg.server.actor_threads));
  sys_cfg.set("scheduler.policy", caf::atom("sharing"));
}

/// Asks the SUPERVISOR for the first generation and starts accepting with
/// it; false when the SUPERVISOR did not start.
bool start_serving(caf::actor_system& sys,
                   const pw::actors::supervisor_actor& sup,
                   pw::http::server& server) {
  auto gen = first_generation(sys, sup);
  if (!gen)
    return false;
  server.start(std::move(gen));
  return true;
}

/// Logs the "listening" line and tells systemd the gateway is ready.
void announce_listening(const pw::http::server& server,
                        const pw::gateway_config& cfg,
                        const std::shared_ptr<pw::http::tls_context>& tls) {
  using namespace pw;
  log::write(
    log_level::info, "listening",
    {{"address", server.address()},
     {"port", server.port()},
     {"version", PW_VERSION},
     {"io_threads", cfg.server.io_threads},
     {"actor_threads", cfg.server.actor_threads},
     {"tls",
      tls ? nlohmann::ordered_json{{"subject", http::tls_subject(*tls)},
                                   {"not_after", http::tls_not_after(*tls)}}
          : nlohmann::ordered_json(nullptr)},
     {"models", cfg.models.size()},
     {"api_keys", cfg.server.api_keys.size()},
     {"config_sha256", cfg.source_sha256}});
  // Under systemd (Type=notify): accepting connections from now on.
  app::sd_notify("READY=1\nSTATUS=serving on " + server.address() + ":"
                 + std::to_string(server.port()));
}

/// Waits for signals: SIGHUP reloads the configuration into `running`;
/// SIGINT or SIGTERM returns.
void wait_for_shutdown(const sigset_t& signals, const options& opts,
                       pw::gateway_config_ptr& running,
                       const pw::actors::supervisor_actor& sup,
                       pw::http::server& server) {
  using namespace pw;
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      app::sd_notify_reloading();
      running = reload(opts, running, sup, server);
      app::sd_notify("READY=1");
      continue;
    }
    log::write(log_level::info, "shutting_down",
               {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    app::sd_notify("STOPPING=1");
    return;
  }
}

int run(const options& opts, pw::gateway_config_ptr cfg,
        std::shared_ptr<pw::http::tls_context> tls) {
  using namespace pw;
  log::set_level(cfg->logging.level);
  auto host = opts.host.value_or(cfg->server.host);
  auto port = opts.port.value_or(cfg->server.port);
  // Signals are taken by sigwait() in this thread only: block them before
  // any other thread exists, so every thread inherits the mask.
  auto signals = block_signals();
  // From here on no thread that serves requests writes to stdout itself.
  // (Started after the mask, like every other thread.)
  log::start_writer();
  struct stop_log_writer {
    ~stop_log_writer() { log::stop_writer(); }
  } writer_guard;
  // Threads inherit the policy of the thread that creates them: set it
  // here, before the io and actor threads exist.
  if (cfg->server.sched_batch)
    enter_sched_batch();
  auto srv = http::server::bind(cfg, host, port, tls);
  if (!srv) {
    std::cerr << "pw-router: " << message_of(srv.error()) << "\n";
    return exit_runtime;
  }
  auto& server = **srv;
  int code = 0;
  {
    caf::actor_system_config sys_cfg;
    configure_scheduler(sys_cfg, *cfg);
    caf::actor_system sys{sys_cfg};
    auto sup = sys.spawn(
      actors::supervisor, cfg, server.publisher(), server.health_checker(),
      actors::plugin_spawner{plugins::spawn_builtin}, server.redis_links());
    // The configuration being served; SIGHUP replaces it.
    auto running = cfg;
    // Whatever happens from here on, the shutdown order holds: io threads
    // drained, actors stopped while the io threads still deliver their last
    // posts, then the io threads stopped and their contexts destroyed
    // before the actor system goes.
    auto shutdown = [&] {
      server.drain(to_ms(running->server.drain));
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      sup = nullptr;
      sys.await_all_actors_done();
      server.stop();
      srv->reset();
    };
    try {
      if (!start_serving(sys, sup, server)) {
        shutdown();
        return exit_runtime;
      }
      log_config_warnings(*cfg);
      announce_listening(server, *cfg, tls);
      wait_for_shutdown(signals, opts, running, sup, server);
    } catch (const std::exception& e) {
      std::cerr << "pw-router: fatal: " << e.what() << "\n";
      code = exit_runtime;
    }
    shutdown();
  }
  log::write(log_level::info, "stopped", nlohmann::ordered_json::object());
  return code;
}

/// `pw-router hash-key`: the key never reaches argv (shell history,
/// /proc) or any output; only its digest is printed.
int hash_key() {
  std::string key;
  std::getline(std::cin, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' '))
    key.pop_back();
  if (key.empty()) {
    std::cerr << "pw-router: hash-key reads the key from stdin, e.g. "
                 "pw-router hash-key < key.txt\n";
    return exit_config;
  }
  std::cout << "key_sha256: \"" << pw::to_hex(pw::sha256(key)) << "\"\n";
  return 0;
}

/// What GET /health shows to whom under this configuration
/// (`--check-config`).
void explain_health_details(const pw::gateway_config& cfg, std::ostream& out) {
  if (cfg.server.health_details_public) {
    out << "pw-router: GET /health shows every actor's counters and errors "
           "to anyone who can connect (server.health_details: public)\n";
    return;
  }
  out << "pw-router: GET /health shows the status and each model's circuit "
         "without a key; counters, errors and actor state need an admin key "
         "(server.health_details: admin, the default)\n";
  bool any_admin
    = std::any_of(cfg.server.api_keys.begin(), cfg.server.api_keys.end(),
                  [](const auto& k) { return k.admin; });
  if (!any_admin)
    out << "pw-router: no API key has `admin: true`: nobody can read those "
           "details until an operator's key has it\n";
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view{argv[1]} == "hash-key")
    return hash_key();
  if (argc >= 2 && std::string_view{argv[1]} == "verify-audit")
    return pw::plugins::audit::verify_audit_command(
      std::vector<std::string>(argv + 2, argv + argc), std::cout, std::cerr);
  if (argc >= 2 && std::string_view{argv[1]} == "audit-key")
    return pw::plugins::audit::audit_key_command(
      std::vector<std::string>(argv + 2, argv + argc), std::cout, std::cerr);
  int exit_code = 0;
  auto opts = parse_flags(argc, argv, exit_code);
  if (!opts)
    return exit_code;
  std::shared_ptr<pw::http::tls_context> tls;
  auto cfg = load(opts->config, tls);
  if (!cfg)
    return exit_config;
  if (opts->check_only) {
    for (const auto& w : cfg->warnings)
      std::cout << "pw-router: warning: " << w << "\n";
    std::cout << "pw-router: configuration " << opts->config << " is valid ("
              << cfg->models.size() << " models, "
              << cfg->server.api_keys.size() << " API keys, "
              << cfg->routing.fallback_chains.size() << " fallback chains)\n";
    explain_health_details(*cfg, std::cout);
    return 0;
  }
  try {
    return run(*opts,
               std::make_shared<const pw::gateway_config>(std::move(*cfg)),
               std::move(tls));
  } catch (const std::exception& e) {
    // Messages from our code never carry secrets; this is the last guard.
    std::cerr << "pw-router: fatal: " << e.what() << "\n";
    return exit_runtime;
  }
}
