#pragma once

// The actors run on the io threads. This replaces CAF's scheduler (a pool of
// threads sharing one queue behind one mutex and condition variable) with
// one where each io thread is a worker: an actor woken on an io thread runs
// on that thread, through its io_context's queue, so a request that starts
// on an io thread (its SESSION, the ROUTER's and MODELs' answers to it, the
// replies) is served there without a lock shared with another core. A job
// that crosses threads is posted to the other io_context.
//
// Threads that are not io threads (main, the clock, CAF's printer) hand
// their jobs to the io threads in turn, or to the scheduler's own thread
// before the io threads start and after they stop.

#include <caf/actor_system_config.hpp>

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace pw::http {

class io_unit;

/// Makes `cfg`'s actor system use the io-thread scheduler and its lock-free
/// actor clock. Call before constructing the actor system.
void use_io_scheduler(caf::actor_system_config& cfg);

/// Whether `sys` runs on the io-thread scheduler.
bool runs_on_io_threads(caf::actor_system& sys);

/// While alive, the calling thread is one of `sys`'s workers: actors woken
/// on it run as handlers of `ioc`, which this thread must be running. A
/// no-op when `sys` uses another scheduler. Jobs still queued in `ioc` when
/// it is destroyed move to another worker.
class io_thread_scope {
public:
  io_thread_scope(caf::actor_system& sys, boost::asio::io_context& ioc);
  ~io_thread_scope();

  io_thread_scope(const io_thread_scope&) = delete;
  io_thread_scope& operator=(const io_thread_scope&) = delete;

private:
  io_unit* unit_ = nullptr;
};

} // namespace pw::http
