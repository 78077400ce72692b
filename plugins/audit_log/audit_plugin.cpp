#include "plugins/audit_log/audit_plugin.hpp"

#include "core/config/config_reader.hpp"
#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "core/observe/log.hpp"
#include "core/sha256.hpp"
#include "plugins/audit_log/audit_chain.hpp"

#include <caf/all.hpp>

#include <filesystem>

namespace pw::plugins {

namespace {

using namespace audit;

struct audit_settings {
  writer_options writer;
  std::chrono::milliseconds interval{1000};
  bool include_bodies = false;
};

std::optional<audit_settings> read_settings(const plugin_entry& entry,
                                            std::vector<std::string>& errors) {
  config_reader cfg{entry, errors};
  if (!cfg.check_keys(
        cfg.root(), cfg.path(),
        {"path", "fsync", "interval_ms", "max_bytes", "include_bodies"}))
    return std::nullopt;
  audit_settings s;
  if (auto path = cfg.string(cfg.root(), "path", cfg.path(), true)) {
    s.writer.path = *path;
    auto dir = std::filesystem::path{*path}.parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      cfg.fail(config_reader::join(cfg.path(), "path"),
               "the directory '" + dir.string() + "' does not exist");
  }
  if (auto fsync = cfg.string(cfg.root(), "fsync", cfg.path())) {
    if (*fsync == "every")
      s.writer.sync = fsync_policy::every;
    else if (*fsync == "interval")
      s.writer.sync = fsync_policy::interval;
    else
      cfg.fail(config_reader::join(cfg.path(), "fsync"),
               "expected every or interval (got '" + *fsync + "')");
  }
  if (auto ms
      = cfg.integer(cfg.root(), "interval_ms", cfg.path(), 1, 3'600'000))
    s.interval = std::chrono::milliseconds{*ms};
  if (auto bytes
      = cfg.integer(cfg.root(), "max_bytes", cfg.path(), 0, int64_t{1} << 50)) {
    if (*bytes != 0 && *bytes < 4096)
      cfg.fail(config_reader::join(cfg.path(), "max_bytes"),
               "must be 0 (never rotate) or at least 4096");
    else
      s.writer.max_bytes = static_cast<uint64_t>(*bytes);
  }
  s.include_bodies
    = cfg.boolean(cfg.root(), "include_bodies", cfg.path()).value_or(false);
  if (!cfg.ok())
    return std::nullopt;
  return s;
}

struct audit_state {
  static inline const char* name = "audit_log";
  audit_settings settings;
  std::optional<audit_writer> writer;
  /// Why the file cannot be written (open failed), for each request.
  std::string broken;
  /// `fsync: every`: requests whose lines are written but not yet synced.
  /// One fsync answers all of them (group commit): lines that arrive while
  /// the disk syncs wait for the next one, and none is answered before
  /// its line is durable.
  std::vector<caf::typed_response_promise<actors::plugin_verdict>> waiting;
  /// Lines written since the last fsync.
  bool dirty = false;
  /// A flush message is on its way (to this actor's own mailbox).
  bool flush_armed = false;
};

using audit_actor = actors::plugin_actor::extend<caf::reacts_to<atom::flush>>;

/// Syncs the file and answers every request whose line it holds.
void flush(audit_actor::stateful_pointer<audit_state> self) {
  auto& st = self->state;
  st.flush_armed = false;
  if (!st.writer || !st.dirty)
    return;
  st.dirty = false;
  // Group commit (`every`): the requests waiting for this sync fail if it
  // does, so their lines are cut back too; no line stands for a request
  // whose client got a 503. (`interval` answered its clients already.)
  auto synced = st.writer->sync(st.settings.writer.sync == fsync_policy::every);
  if (!synced)
    log::write(log_level::error, "audit_sync_failed",
               {{"path", st.settings.writer.path},
                {"error", message_of(synced.error())},
                {"requests", st.waiting.size()}});
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& rp : waiting) {
    if (synced)
      rp.deliver(actors::plugin_verdict{});
    else
      rp.deliver(make_error(errc::plugin_failed,
                            "the audit log could not be synced to disk"));
  }
}

/// Appends the line of one finished request; answers at once (interval)
/// or when the group fsync that covers it is done (every).
caf::result<actors::plugin_verdict>
record(audit_actor::stateful_pointer<audit_state> self,
       const actors::plugin_outcome& out) {
  auto& st = self->state;
  // The path and the OS error are in the log, not in the answer.
  if (!st.writer)
    return make_error(errc::plugin_failed, "the audit log cannot be opened");
  auto written
    = st.writer->append(audit_record(out, st.settings.include_bodies));
  if (!written) {
    log::write(log_level::error, "audit_write_failed",
               {{"path", st.settings.writer.path},
                {"request_id", out.request.request_id},
                {"error", message_of(written.error())}});
    return make_error(errc::plugin_failed,
                      "the audit log could not record the request");
  }
  st.dirty = true;
  if (st.settings.writer.sync == fsync_policy::interval) {
    if (!st.flush_armed) {
      st.flush_armed = true;
      self->delayed_send(self, st.settings.interval, atom::flush_v);
    }
    return actors::plugin_verdict{};
  }
  // Every line durable before its request is answered: the flush queues
  // behind the lines already in the mailbox, so one fsync covers them all.
  auto rp = self->make_response_promise<actors::plugin_verdict>();
  st.waiting.push_back(rp);
  if (!st.flush_armed) {
    st.flush_armed = true;
    self->send(self, atom::flush_v);
  }
  return rp;
}

audit_actor::behavior_type
audit_log(audit_actor::stateful_pointer<audit_state> self,
          audit_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  // The writer never syncs by itself: this actor decides when (group
  // commit for `every`, a timer for `interval`).
  auto options = st.settings.writer;
  options.sync = fsync_policy::interval;
  auto opened = audit_writer::open(options);
  if (opened) {
    st.writer.emplace(std::move(*opened));
    if (const auto& recovered = st.writer->recovery())
      log::write(log_level::warning, "audit_recovered",
                 {{"path", st.settings.writer.path},
                  {"torn_file", (*recovered)["torn_file"]},
                  {"torn_bytes", (*recovered)["torn_bytes"]}});
  } else {
    st.broken = message_of(opened.error());
    log::write(log_level::error, "audit_log_unavailable",
               {{"path", st.settings.writer.path}, {"error", st.broken}});
  }
  return {
    [](atom::pre, const actors::plugin_request&) {
      return actors::plugin_verdict{};
    },
    [self](atom::post, const actors::plugin_outcome& out) {
      return guarded(out.request.request_id, [&] { return record(self, out); });
    },
    [self](atom::flush) { flush(self); },
  };
}

} // namespace

std::vector<std::string> check_audit_log(const plugin_entry& entry) {
  std::vector<std::string> errors;
  (void)read_settings(entry, errors);
  return errors;
}

actors::plugin_actor spawn_audit_log(caf::actor_system& sys,
                                     const plugin_entry& entry) {
  std::vector<std::string> errors;
  auto settings = read_settings(entry, errors);
  if (!settings)
    return {};
  // `fsync: every` syncs all the time, and an fsync must not block the
  // scheduler's threads: the writer gets a thread of its own. With
  // `interval` it writes to the page cache and syncs once per interval, so
  // it runs on the scheduler like any actor (no thread to wake per line).
  if (settings->writer.sync == fsync_policy::every)
    return caf::actor_cast<actors::plugin_actor>(
      sys.spawn<caf::detached>(audit_log, std::move(*settings)));
  return caf::actor_cast<actors::plugin_actor>(
    sys.spawn(audit_log, std::move(*settings)));
}

nlohmann::ordered_json audit_record(const actors::plugin_outcome& out,
                                    bool include_bodies) {
  using json = nlohmann::ordered_json;
  json line = json::object();
  line["time"] = log::timestamp();
  line["request_id"] = out.request.request_id;
  line["client"] = out.request.client;
  line["endpoint"] = to_string(out.request.endpoint);
  line["status"] = out.status;
  line["model"] = out.model.empty() ? json(nullptr) : json(out.model);
  line["route_reason"]
    = out.route_reason.empty() ? json(nullptr) : json(out.route_reason);
  auto attempts = json::array();
  for (const auto& a : out.attempts)
    attempts.push_back({{"model", a.model}, {"outcome", a.outcome}});
  line["attempts"] = std::move(attempts);
  line["tags"] = out.request.tags;
  if (!out.blocked_by.empty())
    line["blocked_by"] = out.blocked_by;
  if (!out.error_code.empty())
    line["error"] = {{"code", out.error_code}, {"message", out.error_message}};
  line["stream"] = out.stream_requested || out.streamed;
  if (out.streamed)
    line["stream_complete"] = out.stream_complete;
  line["usage"] = {{"prompt_tokens", out.prompt_tokens},
                   {"completion_tokens", out.completion_tokens}};
  line["latency_ms"]
    = static_cast<double>(out.latency.count() / 10) / 100.0; // 0.01 ms
  if (!out.request.metadata.empty())
    line["metadata"] = out.request.metadata;
  line["request_sha256"] = out.request_sha256;
  const std::string* response = out.response_body ? out.response_body.get()
                                : out.streamed    ? &out.stream_text
                                                  : nullptr;
  line["response_sha256"]
    = response != nullptr ? json(to_hex(sha256(*response))) : json(nullptr);
  // A stream longer than the text the gateway keeps: the hash covers the
  // kept part only, and the line says so.
  if (out.streamed && out.stream_text_truncated)
    line["response_truncated"] = true;
  if (include_bodies) {
    // What went upstream (after pre plugins), and what came back.
    line["request"] = out.request.body ? *out.request.body : json(nullptr);
    if (out.response_body) {
      auto doc = pw::json::parse(*out.response_body, pw::json::upstream_limits);
      line["response"] = doc ? std::move(*doc) : json(*out.response_body);
    } else if (out.streamed) {
      line["response"] = out.stream_text;
    }
  }
  return line;
}

} // namespace pw::plugins
