#include "http/io_clock.hpp"

#include <caf/abstract_actor.hpp>
#include <caf/group.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <poll.h>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <sys/eventfd.h>
#include <unistd.h>

namespace pw::http {

namespace {

constexpr auto never = std::numeric_limits<int64_t>::max();

int64_t to_ns(caf::actor_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           t.time_since_epoch())
    .count();
}

} // namespace

io_clock::io_clock() {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
    throw std::runtime_error{std::string{"eventfd: "} + std::strerror(errno)};
}

io_clock::~io_clock() {
  stop();
  // Whatever was queued after the thread stopped goes with the clock.
  for (auto* n = head_.exchange(nullptr); n != nullptr;) {
    auto* next = n->next;
    delete n;
    n = next;
  }
  ::close(wake_fd_);
}

void io_clock::set_ordinary_timeout(time_point t, caf::abstract_actor* self,
                                    caf::atom_value type, uint64_t id) {
  push(new ordinary_timeout(t, self->ctrl(), type, id), t);
}

void io_clock::set_request_timeout(time_point t, caf::abstract_actor* self,
                                   caf::message_id id) {
  push(new request_timeout(t, self->ctrl(), id), t);
}

void io_clock::set_multi_timeout(time_point t, caf::abstract_actor* self,
                                 caf::atom_value type, uint64_t id) {
  push(new multi_timeout(t, self->ctrl(), type, id), t);
}

void io_clock::cancel_ordinary_timeout(caf::abstract_actor* self,
                                       caf::atom_value type) {
  push(new ordinary_timeout_cancellation(self->id(), type), time_point::max());
}

void io_clock::cancel_request_timeout(caf::abstract_actor* self,
                                      caf::message_id id) {
  push(new request_timeout_cancellation(self->id(), id), time_point::max());
}

void io_clock::cancel_timeouts(caf::abstract_actor* self) {
  // Every actor's end comes here: the reason this clock exists. Applied
  // when the thread next wakes; cancellations are by actor id, so a later
  // actor at the same address is not affected.
  push(new timeouts_cancellation(self->id()), time_point::max());
}

void io_clock::schedule_message(time_point t, caf::strong_actor_ptr receiver,
                                caf::mailbox_element_ptr content) {
  push(new actor_msg(t, std::move(receiver), std::move(content)), t);
}

void io_clock::schedule_message(time_point t, caf::group target,
                                caf::strong_actor_ptr sender,
                                caf::message content) {
  push(
    new group_msg(t, std::move(target), std::move(sender), std::move(content)),
    t);
}

void io_clock::cancel_all() {
  push(new drop_all, time_point::max());
  wake();
}

void io_clock::start() {
  thread_ = std::thread{[this] {
    pthread_setname_np(pthread_self(), "pw.clock");
    run();
  }};
}

void io_clock::stop() {
  if (!thread_.joinable())
    return;
  push(new shutdown, time_point::max());
  wake();
  thread_.join();
}

void io_clock::push(event* ev, time_point due) {
  auto* n = new node{nullptr, unique_event_ptr{ev}};
  n->next = head_.load(std::memory_order_relaxed);
  while (!head_.compare_exchange_weak(n->next, n)) {
    // n->next now holds the current head
  }
  if (queued_.fetch_add(1) + 1 == batch) {
    wake();
    return;
  }
  if (due == time_point::max())
    return;
  // The thread needs waking only if it sleeps past `due`. A thread seen
  // awake looks at the stack again before it sleeps (recheck_); if it went
  // to sleep meanwhile, its planned wake-up is read again.
  auto until = sleeping_until_.load();
  if (until == 0) {
    recheck_.store(true);
    until = sleeping_until_.load();
    if (until == 0)
      return;
  }
  if (to_ns(due) < until)
    wake();
}

void io_clock::wake() {
  wakes_.fetch_add(1, std::memory_order_relaxed);
  uint64_t one = 1;
  // EAGAIN: the counter is full, so the thread is already due to wake.
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

bool io_clock::drain() {
  auto* n = head_.exchange(nullptr);
  // The stack holds the newest first: reverse it, so the operations apply
  // in the order they were made.
  node* oldest = nullptr;
  size_t count = 0;
  while (n != nullptr) {
    auto* next = n->next;
    n->next = oldest;
    oldest = n;
    n = next;
    ++count;
  }
  queued_.fetch_sub(count);
  bool running = true;
  for (n = oldest; n != nullptr;) {
    auto* next = n->next;
    if (running)
      running = apply(std::move(n->event));
    delete n;
    n = next;
  }
  return running;
}

bool io_clock::apply(unique_event_ptr ev) {
  switch (ev->subtype) {
  case ordinary_timeout_cancellation_type:
    handle(static_cast<ordinary_timeout_cancellation&>(*ev));
    return true;
  case multi_timeout_cancellation_type:
    handle(static_cast<multi_timeout_cancellation&>(*ev));
    return true;
  case request_timeout_cancellation_type:
    handle(static_cast<request_timeout_cancellation&>(*ev));
    return true;
  case timeouts_cancellation_type:
    handle(static_cast<timeouts_cancellation&>(*ev));
    return true;
  case drop_all_type:
    schedule_.clear();
    actor_lookup_.clear();
    return true;
  case shutdown_type:
    schedule_.clear();
    actor_lookup_.clear();
    return false;
  case ordinary_timeout_type:
    add_schedule_entry(std::unique_ptr<ordinary_timeout>{
      static_cast<ordinary_timeout*>(ev.release())});
    return true;
  case multi_timeout_type:
    add_schedule_entry(std::unique_ptr<multi_timeout>{
      static_cast<multi_timeout*>(ev.release())});
    return true;
  case request_timeout_type:
    add_schedule_entry(std::unique_ptr<request_timeout>{
      static_cast<request_timeout*>(ev.release())});
    return true;
  case actor_msg_type:
    add_schedule_entry(
      std::unique_ptr<actor_msg>{static_cast<actor_msg*>(ev.release())});
    return true;
  case group_msg_type:
    add_schedule_entry(
      std::unique_ptr<group_msg>{static_cast<group_msg*>(ev.release())});
    return true;
  }
  return true;
}

void io_clock::run() {
  for (;;) {
    sleeping_until_.store(0);
    if (!drain())
      return;
    trigger_expired_timeouts();
    auto until = schedule_.empty() ? never : to_ns(schedule_.begin()->first);
    // Queued cancellations hold on to ended actors' shells until applied:
    // while any wait, sleep a second at most.
    if (queued_.load() > 0)
      until
        = std::min(until, to_ns(clock_type::now() + std::chrono::seconds{1}));
    sleeping_until_.store(until);
    // A producer that saw this thread awake may have queued an earlier
    // event after the drain: look again instead of sleeping past it.
    if (recheck_.exchange(false))
      continue;
    pollfd fd{wake_fd_, POLLIN, 0};
    if (until == never) {
      ::ppoll(&fd, 1, nullptr, nullptr);
    } else {
      auto left = until - to_ns(clock_type::now());
      if (left <= 0)
        continue;
      timespec ts{static_cast<time_t>(left / 1'000'000'000),
                  static_cast<long>(left % 1'000'000'000)};
      ::ppoll(&fd, 1, &ts, nullptr);
    }
    if (fd.revents & POLLIN) {
      uint64_t count = 0;
      [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
    }
  }
}

} // namespace pw::http
