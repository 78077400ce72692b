#pragma once

// The tamper-evident audit log: its file format, the writer that appends to
// it and the verifier behind `pw-router verify-audit`. Pure code, no actors.
//
// File format (version 1):
//
// - A file is JSON lines: each line is one compact JSON object
//   (`nlohmann::ordered_json::dump()`, no raw newline inside) ending with
//   '\n'. The hash of a line is the lowercase hex SHA-256 of its bytes
//   without the '\n' (`line_hash`).
// - Line 1 of every file is a header:
//   `{"pw_audit":1,"genesis":"<64 hex>","created":"<RFC3339 UTC>",
//   "previous_file":<string or null>}`.
//   A brand-new log has 32 random bytes (hex) as genesis and a null
//   previous_file. A file started by rotation has genesis = hash of the last
//   line of the previous file, and previous_file = that file's base name.
// - Every later line is a record: a JSON object whose FIRST field is
//   `"prev"`, the hash of the line before it (the header, for the first
//   record). The writer inserts "prev"; the other fields are the caller's,
//   in the caller's order.
// - Rotation renames `path` to `path.NNNNNN` (6 digits, one more than the
//   highest present) and starts a new file at `path`, so the files in
//   rotation order (oldest first) are the numbered ones ascending, then
//   `path`. Each file holds at least one record before it rotates, so a
//   record larger than max_bytes still gets written, into a file of its own.
//
// What the chain proves: any edited, deleted, inserted or reordered line,
// a truncated last line, and a file missing between two given files all
// break a check. What it cannot prove on its own: that nothing was cut off
// before the first file given (its genesis is taken on trust) or after the
// last line of the last file (a dropped or edited final line leaves a valid
// chain), nor against anyone who rewrites a tail and recomputes its chain.
//
// Signed checkpoints (checkpoint.hpp, with `writer_options::checkpoints`)
// close that: the writer adds a checkpoint record, signed with Ed25519, at
// least every `every_lines` records and `every_seconds` seconds (the caller
// owns that timer and calls checkpoint()), before a rotation, and before
// the first record after opening a log whose last line is not one. Sent to
// a witness off the host, the checkpoints pin the chain: `verify_log` with
// the witness's copy fails on a rewritten tail even with a recomputed chain.

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pw::plugins::audit {

/// When the writer calls fsync(2).
enum class fsync_policy : uint8_t {
  /// After every appended record.
  every,
  /// Only when the caller calls `sync()` (the caller owns the timer).
  interval,
};

class ed25519_key;

/// Signed checkpoints: on when `key` is set.
struct checkpoint_options {
  /// The private key that signs them.
  std::shared_ptr<const ed25519_key> key;
  /// At most this many records between two checkpoints.
  uint64_t every_lines = 1000;
  /// The caller's timer: a checkpoint at most this long after the first
  /// record it covers (written into each checkpoint for the verifier).
  uint64_t every_seconds = 60;
};

/// Where and how an `audit_writer` writes.
struct writer_options {
  /// Calls fsync(2); tests replace it to make a sync fail.
  using fsync_fn = int (*)(int);
  /// The current log file; rotated files sit next to it.
  std::string path;
  /// Rotate before a record would grow the file beyond this; 0 = never.
  uint64_t max_bytes = 0;
  /// When to fsync.
  fsync_policy sync = fsync_policy::every;
  /// The fsync the writer uses for the log file.
  fsync_fn fsync_file = nullptr;
  /// Signed checkpoints; off by default.
  checkpoint_options checkpoints = {};
};

/// Returns the lowercase hex SHA-256 of `line` (given without its '\n').
std::string line_hash(std::string_view line);

/// The file name of `path` without its directories: how a log's header
/// names the file before it.
std::string base_name(const std::string& path);

/// Parses one line of a log under the upstream limits (a file on disk may
/// have been made by anyone); a discarded value when it is refused.
nlohmann::ordered_json parse_line(std::string_view line);

/// Whether `doc` is a record (an object whose first field is "prev").
bool is_record(const nlohmann::ordered_json& doc);

/// Appends records to one audit log, keeping the hash chain across appends,
/// reopens and rotations. Owns the file descriptor; movable, not copyable.
/// Assumes it is the only writer of the file.
class audit_writer {
public:
  /// Opens (creates with mode 0600, or appends to) `options.path`. An
  /// existing file continues its chain: the writer reads its last line and
  /// chains to it. A last line left incomplete by a crash in the middle of
  /// a write (no trailing '\n') is recovered: its bytes are moved aside to
  /// `path.torn-<UTC time>` (mode 0600, synced), the file is cut back to its
  /// last complete line, and the first record appended is
  /// `{"prev":...,"event":"audit_recovered","time":...,"torn_bytes":N,
  /// "torn_sha256":"<hex>","torn_file":"<name>"}`, so the chain says what
  /// happened and still verifies. A file whose last complete line is not a
  /// JSON header or record is not appended to: returns errc::internal
  /// naming the path, for the operator to look at. When `options.path` does
  /// not exist (or held only a torn header) but rotated files do (a crash
  /// between rotation's rename and the new file), the new file chains to
  /// the highest numbered one.
  static caf::expected<audit_writer> open(writer_options options);

  audit_writer(audit_writer&& other) noexcept;

  audit_writer& operator=(audit_writer&& other) noexcept;

  audit_writer(const audit_writer&) = delete;

  audit_writer& operator=(const audit_writer&) = delete;

  /// Closes the file, after a best-effort fsync of unsynced records.
  ~audit_writer();

  /// Appends `record` (a JSON object without a "prev" field) with "prev"
  /// set as its first field, in one write(2) of the whole line; fsyncs under
  /// fsync_policy::every; rotates first when the line would take the file
  /// beyond max_bytes. Returns the line's hash. On a failed or short write,
  /// or a failed fsync, cuts the file back to its previous size and returns
  /// an error; the chain has not moved, so a later call may retry.
  caf::expected<std::string> append(nlohmann::ordered_json record);

  /// append() for a record already written as compact JSON text: an
  /// object whose first field is not "prev" (the caller vouches for it;
  /// audit_record() writes such text).
  caf::expected<std::string> append_text(std::string record);

  /// Calls fsync(2) now (for fsync_policy::interval). When it fails and
  /// `roll_back` is set, the lines written since the last successful sync
  /// are cut off and the chain moves back to the last synced line (for a
  /// group commit whose requests are then failed, so no line stands for a
  /// request that was refused).
  caf::expected<void> sync(bool roll_back = false);

  /// Writes a checkpoint now if records follow the last one (the caller's
  /// timer, and shutdown); returns whether it wrote one. Not synced: call
  /// sync(). Does nothing without checkpoints.
  caf::expected<bool> checkpoint();

  /// The checkpoint lines (without '\n') synced since the last call, for a
  /// witness; after open(), the log's last line when it is a checkpoint (a
  /// shutdown's, which may not have reached the witness).
  std::vector<std::string> take_checkpoints();

  /// Records written since the last checkpoint.
  uint64_t uncovered() const;

  /// The configuration SHA-256 the next checkpoints name.
  void set_config_sha256(std::string sha256);

  /// Returns the hash of the last line written (header or record).
  const std::string& last_hash() const;

  /// Returns the number of bytes in the current file.
  uint64_t size() const;

  /// The `audit_recovered` record open() appended, if it found a torn last
  /// line (for the caller's log).
  const std::optional<nlohmann::ordered_json>& recovery() const;

private:
  explicit audit_writer(writer_options options);

  // Creates options_.path with a header chained to last_hash_ (or a random
  // genesis when last_hash_ is empty).
  caf::expected<void> start_file();

  // Renames the current file to the next numbered name and starts a new one.
  caf::expected<void> rotate();

  // Writes `line` at the end of the file; on failure cuts the file back.
  caf::expected<void> write_line(const std::string& line, bool do_sync);

  // Cuts the file back to size_ after a failed write.
  caf::expected<void> truncate_back();

  // Calls options_.fsync_file (or fsync) on the log file.
  int do_fsync();

  // Remembers the current state as the last synced one.
  void mark_synced();

  // Moves a torn last line (no '\n') of the open file aside and cuts the
  // file back to its last complete line; updates size_.
  caf::expected<void> recover_torn_tail(uint64_t& size);

  // Appends and syncs the record of a recovery, if open() made one.
  caf::expected<void> note_recovery();

  // Cuts back a failed write and starts the file again if a rotation or
  // the first header did not finish.
  caf::expected<void> prepare();

  // Whether checkpoints are on.
  bool checkpointing() const;

  // Reads the open file (of `size` bytes) for the checkpoint state: its
  // genesis, line count and the records after its last checkpoint.
  caf::expected<void> scan(uint64_t size);

  // Appends a signed checkpoint of the current head.
  caf::expected<void> write_checkpoint();

  void close_file() noexcept;

  /// Where and how to write.
  writer_options options_;
  /// The open log file, or -1 between a rotation's rename and the new file.
  int fd_ = -1;
  /// Hash of the last complete line; empty before the first file exists.
  std::string last_hash_;
  /// Base name for the next header's previous_file.
  std::optional<std::string> previous_file_;
  /// Bytes in the current file, all of them complete lines.
  uint64_t size_ = 0;
  /// The file's size, last hash and record flag at its last fsync.
  uint64_t synced_size_ = 0;
  std::string synced_hash_;
  bool synced_has_records_ = false;
  /// A torn last line found by open(): recorded by the next append.
  std::optional<nlohmann::ordered_json> recovery_;
  /// Whether the current file holds a record after its header.
  bool has_records_ = false;
  /// Whether lines were written since the last fsync.
  bool unsynced_ = false;
  /// Whether a failed write left bytes beyond size_ that are not yet cut.
  bool dirty_ = false;
  /// With checkpoints: the current file's genesis and line count, records
  /// since the last checkpoint, and whether the next append must first
  /// write one; their values at the last fsync.
  std::string genesis_;
  uint64_t lines_ = 0;
  uint64_t uncovered_ = 0;
  bool checkpoint_due_ = false;
  uint64_t synced_lines_ = 0;
  uint64_t synced_uncovered_ = 0;
  std::string config_sha256_;
  /// Checkpoint lines written but not yet synced, and synced ones not yet
  /// taken by the caller.
  std::vector<std::string> unsynced_checkpoints_;
  std::vector<std::string> ready_checkpoints_;
};

} // namespace pw::plugins::audit
