#pragma once

// `pw-router verify-audit`: re-computes an audit log's hash chain
// (audit_chain.hpp), checks its signed checkpoints (checkpoint.hpp) against
// a public key, and holds the log to a witness's copy of its checkpoints.
// Pure code, no actors.
//
// With a public key, besides the chain:
// - every checkpoint is well formed, its head is the hash of the line
//   before it, its file_genesis and line are where it stands, its key id
//   is the given key's and its signature verifies;
// - the log has at least one checkpoint, and after the first one no more
//   than `every_lines` records follow a checkpoint without a new one, and
//   no record is written more than `every_seconds` + `time_grace_seconds`
//   after the first record the next checkpoint covers (the interval each
//   checkpoint states). Records after the last checkpoint are reported,
//   not failed: a running gateway's newest lines are not covered yet.
//
// With a witness's copy (a file whose lines each hold one checkpoint as
// JSON, alone or after a syslog header), every checkpoint in it must be
// signed by the key and stand, unchanged, at its place in the log: a tail
// rewritten and re-signed by whoever holds the key, lines cut off after a
// witnessed checkpoint, a file replaced or a later file missing each fail.
// Witnessed checkpoints of files older than the first file given are
// skipped when that file says it has a previous file.

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace pw::plugins::audit {

class ed25519_key;

/// Seconds a record may come after the interval its checkpoint states: the
/// writer's timer waits behind requests already queued.
inline constexpr uint64_t time_grace_seconds = 5;

/// What `verify_log` checks.
struct verify_options {
  /// The log's files, oldest first.
  std::vector<std::string> paths;
  /// The public key the checkpoints must verify with; null: the chain only.
  std::shared_ptr<const ed25519_key> key;
  /// A witness's copy of the checkpoints; empty: none. Needs `key`.
  std::string witness;
};

/// The outcome of `verify_log`.
struct verify_result {
  /// Whether every check passed.
  bool ok = false;
  /// Lines (headers and records) that passed, before any failure.
  uint64_t lines = 0;
  /// The file of the first broken line (a log file or the witness's).
  std::string file;
  /// The first broken line, 1-based; 0 when the file cannot be read at all.
  uint64_t line = 0;
  /// What is wrong with it.
  std::string why;
  /// Checkpoints found (and, with a key, verified).
  uint64_t checkpoints = 0;
  /// Records after the last checkpoint, and where that checkpoint is.
  uint64_t uncovered = 0;
  std::string last_checkpoint;
  /// Witnessed checkpoints matched, and those of older files not given.
  uint64_t witnessed = 0;
  uint64_t witness_skipped = 0;
};

/// Verifies a log (see the top of this file). Without a key: every line is
/// complete JSON, every file starts with a header, each record's prev
/// equals the previous line's hash, and each file after the first has
/// genesis = hash of the previous file's last line and previous_file = its
/// base name.
verify_result verify_log(const verify_options& options);

/// verify_log with the chain checks only.
verify_result verify_files(const std::vector<std::string>& paths);

/// Runs `pw-router verify-audit [--pubkey FILE [--witness FILE]] FILE...`:
/// prints "ok N lines ..." to `out` and returns 0, or prints
/// "<file>:<line>: <why>" to `err` and returns 1; a usage error returns 2.
int verify_audit_command(const std::vector<std::string>& args,
                         std::ostream& out, std::ostream& err);

} // namespace pw::plugins::audit
