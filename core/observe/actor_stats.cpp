#include "core/observe/actor_stats.hpp"

#include "core/observe/log.hpp"

#include <bit>

namespace pw::actor_stats {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

/// The SESSION counters of one thread.
struct alignas(64) session_cell {
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> cancelled{0};
  std::atomic<uint64_t> deadline{0};
};

std::array<session_cell, cells> sessions{};

/// The percentile `p` (0..1) of a histogram holding `total` values.
int64_t percentile(const std::array<uint64_t, latency_buckets>& counts,
                   uint64_t total, double p) {
  if (total == 0)
    return 0;
  auto rank = static_cast<uint64_t>(p * static_cast<double>(total));
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < latency_buckets; ++i) {
    seen += counts[i];
    if (seen >= rank)
      return bucket_ceiling(i);
  }
  return bucket_ceiling(latency_buckets - 1);
}

} // namespace

size_t my_cell() {
  static std::atomic<size_t> next{0};
  thread_local const size_t mine = next.fetch_add(1, relaxed) % cells;
  return mine;
}

size_t bucket_of(int64_t us) {
  if (us < 16)
    return us < 0 ? 0 : static_cast<size_t>(us);
  auto u = static_cast<uint64_t>(us);
  auto msb = static_cast<size_t>(std::bit_width(u)) - 1;
  if (msb > 31)
    return latency_buckets - 1;
  auto sub = static_cast<size_t>(u >> (msb - 2)) & 3;
  return 16 + (msb - 4) * 4 + sub;
}

int64_t bucket_ceiling(size_t i) {
  if (i < 16)
    return static_cast<int64_t>(i);
  auto msb = (i - 16) / 4 + 4;
  auto sub = (i - 16) % 4;
  auto step = int64_t{1} << (msb - 2);
  return static_cast<int64_t>(4 + sub) * step + step - 1;
}

void plugin_counters::record(plugin_result result,
                             std::chrono::microseconds took,
                             std::string_view error) {
  auto& c = cells_[my_cell()];
  c.calls.fetch_add(1, relaxed);
  c.latency[bucket_of(took.count())].fetch_add(1, relaxed);
  switch (result) {
  case plugin_result::passed:
    return;
  case plugin_result::blocked:
    c.blocks.fetch_add(1, relaxed);
    return;
  case plugin_result::timed_out:
    c.timeouts.fetch_add(1, relaxed);
    break;
  case plugin_result::failed:
    c.failures.fetch_add(1, relaxed);
    break;
  }
  last_.store(std::make_shared<const failure_note>(
                failure_note{std::string{error}, log::timestamp()}),
              std::memory_order_release);
}

plugin_snapshot plugin_counters::read() const {
  plugin_snapshot out;
  std::array<uint64_t, latency_buckets> counts{};
  uint64_t total = 0;
  for (const auto& c : cells_) {
    out.calls += c.calls.load(relaxed);
    out.blocks += c.blocks.load(relaxed);
    out.timeouts += c.timeouts.load(relaxed);
    out.failures += c.failures.load(relaxed);
    for (size_t i = 0; i < latency_buckets; ++i) {
      auto n = c.latency[i].load(relaxed);
      counts[i] += n;
      total += n;
    }
  }
  out.p50_us = percentile(counts, total, 0.50);
  out.p99_us = percentile(counts, total, 0.99);
  if (auto last = last_.load(std::memory_order_acquire)) {
    out.last_error = last->text;
    out.last_error_at = last->at;
  }
  return out;
}

void session_started() {
  sessions[my_cell()].started.fetch_add(1, relaxed);
}

void session_ended(session_end how) {
  // Release: a reader that sees this end sees the start before it.
  auto& c = sessions[my_cell()];
  constexpr auto release = std::memory_order_release;
  switch (how) {
  case session_end::answered:
    c.answered.fetch_add(1, release);
    return;
  case session_end::cancelled:
    c.cancelled.fetch_add(1, release);
    return;
  case session_end::deadline:
    c.deadline.fetch_add(1, release);
    return;
  }
}

session_counts read_sessions() {
  session_counts out;
  // Ends are read before starts: a SESSION that starts and ends between
  // the two reads then shows as alive for one answer, never as a count
  // below zero.
  constexpr auto acquire = std::memory_order_acquire;
  for (const auto& c : sessions) {
    out.answered += c.answered.load(acquire);
    out.cancelled += c.cancelled.load(acquire);
    out.deadline += c.deadline.load(acquire);
  }
  for (const auto& c : sessions)
    out.started += c.started.load(relaxed);
  return out;
}

} // namespace pw::actor_stats
