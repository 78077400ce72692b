#pragma once

// Counters of the actors that run on every core, for GET /health: how each
// PLUGIN entry's calls went (as its SESSIONs saw them) and how many
// SESSIONs started and ended. Many threads add to them at once, so they
// are never one shared counter: each thread adds to its own cell
// (cache-line sized, picked once per thread), with relaxed atomic adds on
// a line no other thread writes in the usual case; /health sums the cells.
// The counts take no lock: a reader never waits for a writer, nor a writer
// for anyone. The last failure's text is a std::atomic<std::shared_ptr>,
// which libstdc++ guards with a spin bit: written only when a call fails.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pw::actor_stats {

/// Per-thread cells of a counter set; threads beyond this share cells
/// (still correct: the adds are atomic).
constexpr size_t cells = 16;

/// This thread's cell index (fixed at its first call).
size_t my_cell();

/// How one call of a PLUGIN entry went.
enum class plugin_result : uint8_t {
  /// It answered: the request goes on.
  passed,
  /// It answered: the request is blocked.
  blocked,
  /// It did not answer within the entry's `timeout_ms`.
  timed_out,
  /// It answered with an error, it was down, or it ended while called.
  failed,
};

/// The latency buckets: exact below 16 us, then 4 per power of two (each
/// bucket's upper edge is at most 25% above its lower one), up to ~1 h.
constexpr size_t latency_buckets = 16 + 28 * 4;

/// The bucket of `us` microseconds.
size_t bucket_of(int64_t us);

/// The largest value in bucket `i`, in microseconds.
int64_t bucket_ceiling(size_t i);

/// What a PLUGIN entry's counters say now.
struct plugin_snapshot {
  uint64_t calls = 0;
  uint64_t blocks = 0;
  uint64_t timeouts = 0;
  uint64_t failures = 0;
  /// Percentiles of the time from the SESSION's call to the answer
  /// (bucket ceilings); 0 without calls.
  int64_t p50_us = 0;
  int64_t p99_us = 0;
  /// The last timeout or failure: what, and when (RFC 3339); "" if none.
  std::string last_error;
  std::string last_error_at;
};

/// One PLUGIN entry's counters. The SUPERVISOR makes one per entry; it
/// outlives restarts of the entry's PLUGIN and reloads that keep the entry.
class plugin_counters {
public:
  /// Counts one call that took `took`; `error` describes a timeout or a
  /// failure (ignored otherwise).
  void record(plugin_result result, std::chrono::microseconds took,
              std::string_view error = {});

  [[nodiscard]] plugin_snapshot read() const;

private:
  struct alignas(64) cell {
    std::atomic<uint64_t> calls{0};
    std::atomic<uint64_t> blocks{0};
    std::atomic<uint64_t> timeouts{0};
    std::atomic<uint64_t> failures{0};
    std::array<std::atomic<uint64_t>, latency_buckets> latency{};
  };
  struct failure_note {
    std::string text;
    std::string at;
  };

  std::array<cell, cells> cells_{};
  /// Written on the failure path only.
  std::atomic<std::shared_ptr<const failure_note>> last_{};
};

using plugin_counters_ptr = std::shared_ptr<plugin_counters>;

/// How a SESSION ended.
enum class session_end : uint8_t {
  /// The client got the SESSION's answer (a success or an error).
  answered,
  /// The client left before the answer.
  cancelled,
  /// The request's deadline passed (the client got 504).
  deadline,
};

/// A SESSION started (called as it is spawned).
void session_started();

/// A SESSION ended (called from its state's destructor).
void session_ended(session_end how);

/// SESSIONs since the process started.
struct session_counts {
  uint64_t started = 0;
  uint64_t answered = 0;
  uint64_t cancelled = 0;
  uint64_t deadline = 0;

  [[nodiscard]] uint64_t finished() const {
    return answered + cancelled + deadline;
  }
  /// Alive now (started and not yet ended).
  [[nodiscard]] uint64_t alive() const {
    return started > finished() ? started - finished() : 0;
  }
};

[[nodiscard]] session_counts read_sessions();

} // namespace pw::actor_stats
