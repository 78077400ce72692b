#include "plugins/audit_log/audit_plugin.hpp"

#include "core/config/config_reader.hpp"
#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "core/json/text.hpp"
#include "core/observe/audit_stats.hpp"
#include "core/observe/log.hpp"
#include "core/sha256.hpp"
#include "plugins/audit_log/audit_chain.hpp"
#include "plugins/audit_log/checkpoint.hpp"
#include "plugins/audit_log/witness.hpp"

#include <caf/all.hpp>

#include <filesystem>

namespace pw::plugins {

namespace {

using namespace audit;

struct audit_settings {
  writer_options writer;
  std::chrono::milliseconds interval{1000};
  bool include_bodies = false;
  /// Where checkpoints go, if anywhere.
  std::optional<witness_settings> witness;
};

/// `checkpoint`: the signing key, the interval, and the witness.
void read_checkpoint_settings(config_reader& cfg, audit_settings& s) {
  auto node = cfg.root()["checkpoint"];
  auto path = config_reader::join(cfg.path(), "checkpoint");
  if (!node.IsDefined() || node.IsNull())
    return;
  if (!node.IsMap()) {
    cfg.fail(path, "expected a mapping with key_file");
    return;
  }
  if (!cfg.check_keys(node, path,
                      {"key_file", "every_lines", "every_seconds", "witness"}))
    return;
  auto& cp = s.writer.checkpoints;
  if (auto file = cfg.string(node, "key_file", path, true)) {
    auto key = ed25519_key::load_private(*file);
    if (key)
      cp.key = std::make_shared<const ed25519_key>(std::move(*key));
    else
      cfg.fail(config_reader::join(path, "key_file"), message_of(key.error()));
  }
  if (auto n = cfg.integer(node, "every_lines", path, 1, 10'000'000))
    cp.every_lines = static_cast<uint64_t>(*n);
  if (auto n = cfg.integer(node, "every_seconds", path, 1, 86'400))
    cp.every_seconds = static_cast<uint64_t>(*n);
  auto witness = node["witness"];
  if (witness.IsDefined() && !witness.IsNull())
    s.witness = read_witness_settings(cfg, witness,
                                      config_reader::join(path, "witness"));
}

std::optional<audit_settings> read_settings(const plugin_entry& entry,
                                            std::vector<std::string>& errors) {
  config_reader cfg{entry, errors};
  if (!cfg.check_keys(cfg.root(), cfg.path(),
                      {"path", "fsync", "interval_ms", "max_bytes",
                       "include_bodies", "checkpoint"}))
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
  read_checkpoint_settings(cfg, s);
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
  /// The timer of the next checkpoint runs.
  bool checkpoint_armed = false;
  /// Where synced checkpoints go (null: no witness).
  witness_actor witness;

  audit_state() = default;
  audit_state(const audit_state&) = delete;
  audit_state& operator=(const audit_state&) = delete;

  /// Shutdown (or a retirement): the records since the last checkpoint get
  /// one, synced; the witness gets it if it is still there, else when the
  /// log is next opened.
  ~audit_state();
};

/// Hands the synced checkpoints to the witness; `fresh` counts them as
/// written (not when open() offers the log's last one again).
void hand_over(audit_state& st, bool fresh) {
  for (auto& line : st.writer->take_checkpoints()) {
    if (fresh)
      audit_stats::checkpoint_written();
    if (st.witness)
      caf::anon_send(st.witness, atom::checkpoint_v, std::move(line));
  }
}

audit_state::~audit_state() {
  if (!writer)
    return;
  auto written = writer->checkpoint();
  caf::expected<void> synced{};
  if (written)
    synced = writer->sync();
  if (!written || !synced) {
    log::write(
      log_level::error, "audit_checkpoint_failed",
      {{"path", settings.writer.path},
       {"error", message_of(written ? synced.error() : written.error())}});
    return;
  }
  hand_over(*this, true);
}

using audit_actor
  = actors::plugin_actor::extend<caf::reacts_to<atom::flush>,
                                 caf::reacts_to<atom::checkpoint>>;

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
  if (synced)
    hand_over(st, true);
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

/// Starts the checkpoint timer when records wait for one: a checkpoint
/// follows the first of them within `every_seconds`.
void arm_checkpoint(audit_actor::stateful_pointer<audit_state> self) {
  auto& st = self->state;
  const auto& cp = st.settings.writer.checkpoints;
  if (!cp.key || st.checkpoint_armed || !st.writer
      || st.writer->uncovered() == 0)
    return;
  st.checkpoint_armed = true;
  self->delayed_send(self, std::chrono::seconds{cp.every_seconds},
                     atom::checkpoint_v);
}

/// The checkpoint timer: records since the last checkpoint get one now,
/// synced (with the lines it covers) before the witness gets it.
void timed_checkpoint(audit_actor::stateful_pointer<audit_state> self) {
  auto& st = self->state;
  st.checkpoint_armed = false;
  if (!st.writer)
    return;
  auto written = st.writer->checkpoint();
  if (!written) {
    log::write(log_level::error, "audit_checkpoint_failed",
               {{"path", st.settings.writer.path},
                {"error", message_of(written.error())}});
  } else if (*written) {
    st.dirty = true;
    flush(self);
  }
  arm_checkpoint(self);
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
  if (!out.config_sha256.empty())
    st.writer->set_config_sha256(out.config_sha256);
  auto written = st.writer->append_text(
    audit_record(out, st.settings.include_bodies, log::timestamp()));
  if (!written) {
    log::write(log_level::error, "audit_write_failed",
               {{"path", st.settings.writer.path},
                {"request_id", out.request.request_id},
                {"error", message_of(written.error())}});
    return make_error(errc::plugin_failed,
                      "the audit log could not record the request");
  }
  st.dirty = true;
  arm_checkpoint(self);
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
          audit_settings settings, upstream_fn call) {
  auto& st = self->state;
  st.settings = std::move(settings);
  if (st.settings.witness && call) {
    st.witness
      = spawn_witness(self->system(), *st.settings.witness, std::move(call));
    self->link_to(st.witness);
  }
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
    hand_over(st, false);
    // Records a crash left without a checkpoint get one with the first
    // record; until then the timer covers an idle log.
    arm_checkpoint(self);
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
    [self](atom::checkpoint) { timed_checkpoint(self); },
  };
}

} // namespace

std::vector<std::string> check_audit_log(const plugin_entry& entry) {
  std::vector<std::string> errors;
  (void)read_settings(entry, errors);
  return errors;
}

actors::plugin_actor spawn_audit_log(caf::actor_system& sys,
                                     const plugin_entry& entry,
                                     const plugin_env& env) {
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
      sys.spawn<caf::detached>(audit_log, std::move(*settings), env.call));
  return caf::actor_cast<actors::plugin_actor>(
    sys.spawn(audit_log, std::move(*settings), env.call));
}

std::string audit_record(const actors::plugin_outcome& out, bool include_bodies,
                         std::string_view time) {
  // Field by field, the bytes json::dump writes for the same record as a
  // document (tests/unit/plugins/audit_record_test.cpp compares the two):
  // one string grows, where a document took an allocation per field.
  std::string line;
  line.reserve(512 + out.request.request_id.size() + out.error_message.size());
  auto field = [&line](std::string_view name) {
    line += line.empty() ? '{' : ',';
    append_json_string(line, name);
    line += ':';
  };
  auto string_or_null = [&line](const std::string& text) {
    if (text.empty())
      line += "null";
    else
      append_json_string(line, text);
  };
  field("time");
  append_json_string(line, time);
  field("request_id");
  append_json_string(line, out.request.request_id);
  field("client");
  append_json_string(line, out.request.client);
  field("endpoint");
  append_json_string(line, to_string(out.request.endpoint));
  field("status");
  append_integer(line, out.status);
  field("model");
  string_or_null(out.model);
  field("route_reason");
  string_or_null(out.route_reason);
  field("attempts");
  line += '[';
  for (size_t i = 0; i < out.attempts.size(); ++i) {
    line += i == 0 ? "{\"model\":" : ",{\"model\":";
    append_json_string(line, out.attempts[i].model);
    line += ",\"outcome\":";
    append_json_string(line, out.attempts[i].outcome);
    line += '}';
  }
  line += ']';
  field("tags");
  line += '[';
  for (size_t i = 0; i < out.request.tags.size(); ++i) {
    if (i > 0)
      line += ',';
    append_json_string(line, out.request.tags[i]);
  }
  line += ']';
  if (!out.blocked_by.empty()) {
    field("blocked_by");
    append_json_string(line, out.blocked_by);
  }
  if (!out.error_code.empty()) {
    field("error");
    line += "{\"code\":";
    append_json_string(line, out.error_code);
    line += ",\"message\":";
    append_json_string(line, out.error_message);
    line += '}';
  }
  field("stream");
  line += out.stream_requested || out.streamed ? "true" : "false";
  if (out.streamed) {
    field("stream_complete");
    line += out.stream_complete ? "true" : "false";
  }
  field("usage");
  line += "{\"prompt_tokens\":";
  append_integer(line, out.prompt_tokens);
  line += ",\"completion_tokens\":";
  append_integer(line, out.completion_tokens);
  line += '}';
  field("latency_ms");
  // 0.01 ms, written as nlohmann writes a double.
  line += pw::json::dump(
    pw::json::document(static_cast<double>(out.latency.count() / 10) / 100.0));
  if (!out.request.metadata.empty()) {
    field("metadata");
    line += pw::json::dump(out.request.metadata);
  }
  field("request_sha256");
  append_json_string(line, out.request_sha256);
  const std::string* response = out.response_body ? out.response_body.get()
                                : out.streamed    ? &out.stream_text
                                                  : nullptr;
  field("response_sha256");
  if (response != nullptr)
    append_json_string(line, to_hex(sha256(*response)));
  else
    line += "null";
  // A stream longer than the text the gateway keeps: the hash covers the
  // kept part only, and the line says so.
  if (out.streamed && out.stream_text_truncated) {
    field("response_truncated");
    line += "true";
  }
  if (include_bodies) {
    // What went upstream (after pre plugins), and what came back.
    field("request");
    line += out.request.body ? pw::json::dump(*out.request.body) : "null";
    if (out.response_body) {
      field("response");
      auto doc = pw::json::parse(*out.response_body, pw::json::upstream_limits);
      if (doc)
        line += pw::json::dump(*doc);
      else
        append_json_string(line, *out.response_body);
    } else if (out.streamed) {
      field("response");
      append_json_string(line, out.stream_text);
    }
  }
  line += '}';
  return line;
}

} // namespace pw::plugins
