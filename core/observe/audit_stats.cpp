#include "core/observe/audit_stats.hpp"

#include <atomic>

namespace pw::audit_stats {

namespace {

std::atomic<uint64_t> checkpoints{0};
std::atomic<uint64_t> sent{0};
std::atomic<uint64_t> failures{0};
std::atomic<uint64_t> dropped{0};
std::atomic<int64_t> queued{0};

} // namespace

void checkpoint_written() {
  checkpoints.fetch_add(1, std::memory_order_relaxed);
}

void witness_sent() {
  sent.fetch_add(1, std::memory_order_relaxed);
}

void witness_failed() {
  failures.fetch_add(1, std::memory_order_relaxed);
}

void witness_dropped() {
  dropped.fetch_add(1, std::memory_order_relaxed);
}

void witness_queue(int64_t change) {
  queued.fetch_add(change, std::memory_order_relaxed);
}

counters read() {
  counters out;
  out.checkpoints = checkpoints.load(std::memory_order_relaxed);
  out.witness_sent = sent.load(std::memory_order_relaxed);
  out.witness_failures = failures.load(std::memory_order_relaxed);
  out.witness_dropped = dropped.load(std::memory_order_relaxed);
  auto q = queued.load(std::memory_order_relaxed);
  out.witness_queued = q > 0 ? static_cast<uint64_t>(q) : 0;
  return out;
}

} // namespace pw::audit_stats
