#pragma once

// Counters of the audit log's signed checkpoints and of their delivery to
// a witness, for `/metrics`. The audit_log plugin's actors add to them; a
// scrape reads them. Relaxed atomics: counted off the request path (once
// per checkpoint, not per request), never behind a lock.

#include <cstdint>

namespace pw::audit_stats {

/// What a scrape shows.
struct counters {
  /// Checkpoints written to the log.
  uint64_t checkpoints = 0;
  /// Checkpoints the witness accepted (a 2xx answer).
  uint64_t witness_sent = 0;
  /// Attempts that failed (each retry counts).
  uint64_t witness_failures = 0;
  /// Checkpoints given up: the queue was full, or the witness refused them.
  uint64_t witness_dropped = 0;
  /// Checkpoints waiting for the witness now.
  uint64_t witness_queued = 0;
};

void checkpoint_written();
void witness_sent();
void witness_failed();
void witness_dropped();
/// The witness queue grew (+1) or shrank (-1).
void witness_queue(int64_t change);

/// The counters now.
counters read();

} // namespace pw::audit_stats
