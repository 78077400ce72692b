#pragma once

// CAF's actor clock (request timeouts, delayed_send, receive timeouts)
// without a lock. CAF's own clock hands every operation to its thread
// through a ringbuffer behind one process-wide mutex and wakes that thread
// through a condition variable: every actor's end (`cancel_timeouts`) and
// every request with a timeout took that lock and, mostly, a futex wake.
//
// This one keeps CAF's schedule (simple_actor_clock, run by one thread as
// before) but receives the operations through a lock-free stack, and wakes
// its thread (an eventfd, not a futex) only when it must: for an event due
// before the thread's planned wake-up, for cancel_all and stop, and once per
// `batch` queued operations so that cancellations do not pile up.

#include <caf/detail/simple_actor_clock.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace pw::http {

class io_clock final : public caf::detail::simple_actor_clock {
public:
  using super = caf::detail::simple_actor_clock;

  /// Operations queued before the thread is woken to apply them.
  static constexpr size_t batch = 256;

  io_clock();
  ~io_clock() override;

  io_clock(const io_clock&) = delete;
  io_clock& operator=(const io_clock&) = delete;

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self,
                            caf::atom_value type, uint64_t id) override;
  void set_request_timeout(time_point t, caf::abstract_actor* self,
                           caf::message_id id) override;
  void set_multi_timeout(time_point t, caf::abstract_actor* self,
                         caf::atom_value type, uint64_t id) override;
  void cancel_ordinary_timeout(caf::abstract_actor* self,
                               caf::atom_value type) override;
  void cancel_request_timeout(caf::abstract_actor* self,
                              caf::message_id id) override;
  void cancel_timeouts(caf::abstract_actor* self) override;
  void schedule_message(time_point t, caf::strong_actor_ptr receiver,
                        caf::mailbox_element_ptr content) override;
  void schedule_message(time_point t, caf::group target,
                        caf::strong_actor_ptr sender,
                        caf::message content) override;
  void cancel_all() override;

  /// Starts the clock's thread.
  void start();

  /// Stops and joins the thread. Events not yet due are dropped (as CAF's
  /// clock drops them at shutdown).
  void stop();

  /// Times the thread was woken other than by its own deadline (tests).
  [[nodiscard]] uint64_t wakes() const {
    return wakes_.load(std::memory_order_relaxed);
  }

private:
  struct node {
    node* next = nullptr;
    unique_event_ptr event;
  };

  /// Queues `ev`; `due` is when it fires (max for one that never does).
  void push(event* ev, time_point due);
  void wake();
  void run();
  /// Applies one queued operation; false on shutdown.
  bool apply(unique_event_ptr ev);
  /// Takes everything queued, oldest first; false on shutdown.
  bool drain();

  std::atomic<node*> head_{nullptr};
  std::atomic<size_t> queued_{0};
  /// When the thread plans to wake (steady clock, ns), or 0 while awake.
  std::atomic<int64_t> sleeping_until_{0};
  /// Set by a producer that saw the thread awake: look again before sleeping.
  std::atomic<bool> recheck_{false};
  std::atomic<uint64_t> wakes_{0};
  int wake_fd_ = -1;
  std::thread thread_;
};

} // namespace pw::http
