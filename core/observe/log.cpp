#include "core/observe/log.hpp"

#include "core/json/reader.hpp"
#include "core/json/text.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <thread>
#include <unistd.h>

namespace pw::log {

namespace {

std::atomic<log_level> current_level{log_level::info};

std::string_view level_name(log_level level) {
  switch (level) {
  case log_level::debug:
    return "debug";
  case log_level::info:
    return "info";
  case log_level::warning:
    return "warning";
  case log_level::error:
    return "error";
  }
  return "info";
}

void write_all(std::string_view line) {
  while (!line.empty()) {
    auto n = ::write(STDOUT_FILENO, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return; // stdout is gone; losing a log line must not stop serving
    }
    line.remove_prefix(static_cast<size_t>(n));
  }
}

/// One thread's queue of finished lines: a ring with one producer (the
/// thread) and one consumer (the writer).
struct line_queue {
  static constexpr size_t capacity = 1024; // lines; a power of two
  std::array<std::string, capacity> slots;
  /// Next slot the producer fills / the consumer takes; both only grow.
  std::atomic<size_t> head{0};
  std::atomic<size_t> tail{0};
  /// The next queue of the writer's list (set once, before publishing).
  line_queue* next = nullptr;

  bool push(std::string& line) {
    auto h = head.load(std::memory_order_relaxed);
    if (h - tail.load(std::memory_order_acquire) >= capacity)
      return false;
    slots[h % capacity] = std::move(line);
    head.store(h + 1, std::memory_order_release);
    return true;
  }

  /// Appends every queued line to `out`; returns how many.
  size_t drain(std::string& out) {
    auto t = tail.load(std::memory_order_relaxed);
    auto h = head.load(std::memory_order_acquire);
    for (auto i = t; i != h; ++i) {
      auto& slot = slots[i % capacity];
      out += slot;
      std::string{}.swap(slot);
    }
    tail.store(h, std::memory_order_release);
    return h - t;
  }
};

/// The writer: every thread's queue, and its thread.
struct log_writer {
  /// Every queue ever made (threads live as long as the process).
  std::atomic<line_queue*> queues{nullptr};
  std::atomic<bool> running{false};
  /// The writer sleeps on `wake` while `idle`; a producer that finds it
  /// idle bumps `wake` and notifies.
  std::atomic<bool> idle{false};
  std::atomic<uint32_t> wake{0};
  std::atomic<uint64_t> dropped{0};
  uint64_t reported_dropped = 0;
  std::thread thread;

  line_queue& queue_of_this_thread() {
    thread_local line_queue* mine = nullptr;
    if (mine == nullptr) {
      mine = new line_queue; // lives as long as the process; on the list
      auto* first = queues.load(std::memory_order_acquire);
      do {
        mine->next = first;
      } while (
        !queues.compare_exchange_weak(first, mine, std::memory_order_acq_rel));
    }
    return *mine;
  }

  size_t drain_all(std::string& out) {
    size_t n = 0;
    for (auto* q = queues.load(std::memory_order_acquire); q != nullptr;
         q = q->next)
      n += q->drain(out);
    return n;
  }

  /// Writes a line about drops once there were new ones.
  void report_drops(std::string& out);

  /// How long lines gather between two writes while traffic flows: under
  /// load one write(2) per interval instead of one per line, and one
  /// wake-up of the writer, which may share a serving thread's CPU (at
  /// 1 ms the io thread was switched out 7,232 times in 8 s of load, at
  /// 10 ms about 1,400: docs/performance.md, "The access log").
  static constexpr std::chrono::milliseconds gather{10};
  /// Empty looks, `gather` apart, before the writer sleeps on `wake`
  /// (100 ms after the last line).
  static constexpr int linger = 10;

  void run() {
    std::string batch;
    int quiet = 0;
    while (running.load()) {
      batch.clear();
      if (drain_all(batch) > 0) {
        report_drops(batch);
        write_all(batch);
        quiet = 0;
        // Let the next lines gather.
        std::this_thread::sleep_for(gather);
        continue;
      }
      // Still looking for 100 ms after the last line: a writer asleep on
      // `wake` costs each line's producer a futex wake, which is what a
      // serving thread must not pay while traffic flows.
      if (++quiet < linger) {
        std::this_thread::sleep_for(gather);
        continue;
      }
      quiet = 0;
      auto seen = wake.load();
      idle.store(true);
      std::atomic_thread_fence(std::memory_order_seq_cst); // see emit()
      // A line queued before `idle` was visible is found here; one queued
      // after it finds the writer idle and wakes it.
      if (drain_all(batch) == 0 && running.load())
        wake.wait(seen);
      idle.store(false);
      report_drops(batch);
      write_all(batch);
    }
  }

  void notify() {
    wake.fetch_add(1);
    wake.notify_one();
  }

  ~log_writer() {
    // A process that ends without stop_writer(): the thread must not
    // outlive this object.
    if (running.exchange(false))
      notify();
    if (thread.joinable())
      thread.join();
  }
};

log_writer& writer() {
  static log_writer w;
  return w;
}

/// Hands a finished line (ending in '\n') to the writer, or writes it at
/// once when there is no writer.
void emit(std::string& line) {
  auto& w = writer();
  if (!w.running.load(std::memory_order_acquire)) {
    write_all(line);
    return;
  }
  if (!w.queue_of_this_thread().push(line)) {
    w.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // The line must be visible before `idle` is read (and the writer's
  // `idle` before it reads the queues): the push is a release store, which
  // a later load may pass, so without both fences each side could read the
  // other's old value and the writer sleep with this line queued.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (w.idle.load())
    w.notify();
}

void log_writer::report_drops(std::string& out) {
  auto now = dropped.load(std::memory_order_relaxed);
  if (now == reported_dropped)
    return;
  line report{log_level::warning, "log_lines_dropped"};
  report.num("dropped_total", now);
  // Built here, written with the batch: never queued behind itself.
  out += report.finish();
  reported_dropped = now;
}

} // namespace

void start_writer() {
  auto& w = writer();
  if (w.running.exchange(true))
    return;
  w.thread = std::thread{[&w] { w.run(); }};
}

void stop_writer() {
  auto& w = writer();
  if (!w.running.exchange(false))
    return;
  w.notify();
  if (w.thread.joinable())
    w.thread.join();
  std::string rest;
  w.drain_all(rest);
  w.report_drops(rest);
  write_all(rest);
}

uint64_t dropped() {
  return writer().dropped.load(std::memory_order_relaxed);
}

void set_level(log_level level) {
  current_level.store(level, std::memory_order_relaxed);
}

bool enabled(log_level level) {
  return level >= current_level.load(std::memory_order_relaxed);
}

namespace {

/// Appends `n` (0 to 999) as three digits.
void append_3_digits(std::string& out, long long n) {
  out += static_cast<char>('0' + n / 100);
  out += static_cast<char>('0' + n / 10 % 10);
  out += static_cast<char>('0' + n % 10);
}

/// Appends `now` (UTC) as RFC 3339 with milliseconds.
void append_timestamp(std::string& out,
                      std::chrono::system_clock::time_point now
                      = std::chrono::system_clock::now()) {
  using namespace std::chrono;
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  // The date part changes once a second: format it once per second and
  // thread.
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[24];
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
    cached_secs = secs;
  }
  out += cached;
  out += '.';
  append_3_digits(out, ms);
  out += 'Z';
}

} // namespace

std::string timestamp() {
  std::string out;
  append_timestamp(out);
  return out;
}

std::string timestamp(std::chrono::system_clock::time_point at) {
  std::string out;
  append_timestamp(out, at);
  return out;
}

line::line(log_level level, std::string_view event) {
  buf_.reserve(384);
  buf_ += "{\"ts\":\"";
  append_timestamp(buf_);
  buf_ += "\",\"level\":\"";
  buf_ += level_name(level);
  buf_ += "\",\"event\":";
  append_json_string(buf_, event);
}

void line::key(std::string_view k) {
  buf_.push_back(',');
  append_json_string(buf_, k);
  buf_.push_back(':');
}

line& line::str(std::string_view k, std::string_view value) {
  key(k);
  append_json_string(buf_, value);
  return *this;
}

line& line::num(std::string_view k, uint64_t value) {
  key(k);
  append_integer(buf_, value);
  return *this;
}

line& line::millis(std::string_view k, std::chrono::microseconds value) {
  key(k);
  auto us = static_cast<long long>(value.count() < 0 ? 0 : value.count());
  append_integer(buf_, us / 1000);
  buf_ += '.';
  append_3_digits(buf_, us % 1000);
  return *this;
}

line& line::null(std::string_view k) {
  key(k);
  buf_ += "null";
  return *this;
}

std::string line::finish() {
  buf_ += "}\n";
  return std::move(buf_);
}

void line::write() {
  auto text = finish();
  emit(text);
}

void write(log_level level, std::string_view event,
           nlohmann::ordered_json fields) {
  if (!enabled(level))
    return;
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  doc["ts"] = timestamp();
  doc["level"] = level_name(level);
  doc["event"] = event;
  if (fields.is_object())
    for (auto& [k, v] : fields.items())
      doc[k] = std::move(v);
  // Replace invalid UTF-8 instead of throwing: a log line never kills a
  // request.
  auto text = json::dump(doc);
  text.push_back('\n');
  emit(text);
}

} // namespace pw::log
