#include "http/io_scheduler.hpp"

#include "http/io_clock.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <pthread.h>
#include <thread>

namespace pw::http {

namespace net = boost::asio;

class io_coordinator;

namespace {

/// The worker the calling thread is, if it is one.
thread_local io_unit* current_unit = nullptr;

} // namespace

/// One worker: an io_context and the thread running it. Jobs run as
/// handlers of the io_context, so they interleave with the socket work: a
/// job from another thread is posted as a handler of its own; jobs woken
/// on the thread itself wait in a local queue that one posted handler runs
/// in turns. A post from the thread itself takes no lock (each io_context
/// is made with a concurrency hint of 1, which gives Asio's thread-private
/// queue).
class io_unit final : public caf::execution_unit {
public:
  io_unit(io_coordinator& owner, net::io_context& ioc);

  /// From the thread itself: queue locally. From another thread (a
  /// response promise kept by an actor that last ran here): post across,
  /// or hand the job back to the coordinator if this unit has closed.
  void exec_later(caf::resumable* job) override;

  /// Posts from another thread; false once the unit has closed.
  bool try_post(caf::resumable* job);

  /// Refuses new posts from other threads, returns once none is under way,
  /// and lets the io_context run out of work.
  void close();

  /// Runs one job on this thread.
  void run(caf::resumable* job);

  /// Runs the jobs woken on this thread, those they wake included, up to
  /// `turn_jobs`; the rest in a later turn, after the socket work.
  void drain();

  /// The jobs woken here that will not run here (the io_context went with
  /// their turn): to another worker.
  void hand_off_local();

  [[nodiscard]] bool owned_by(const io_coordinator* c) const {
    return owner_ == c;
  }

  [[nodiscard]] io_coordinator& owner() const { return *owner_; }

  /// Jobs one turn runs before the socket work waiting meanwhile gets its
  /// own.
  static constexpr size_t turn_jobs = 64;

private:
  void post(caf::resumable* job);

  io_coordinator* owner_;
  net::io_context* ioc_;
  /// While the unit is open, its io_context does not return from run()
  /// for want of work: a job posted to an io_context that has returned
  /// would wait for its destruction (and shutdown waits for every actor).
  std::optional<net::executor_work_guard<net::io_context::executor_type>> busy_;
  std::atomic<bool> open_{true};
  std::atomic<int> posting_{0};
  /// Jobs woken on this thread, run in turns by one posted handler: a
  /// request's hops from actor to actor (SESSION, ROUTER, MODEL and back)
  /// run one after the other, where a handler each had Asio poll the
  /// reactor (an epoll_wait) between two hops. Only this thread uses them.
  std::deque<caf::resumable*> local_;
  bool turn_posted_ = false;
};

/// A turn of an io_unit's local jobs. Destroyed without running (its
/// io_context was destroyed first), it hands them to another worker.
struct turn_handler {
  io_unit* unit;

  explicit turn_handler(io_unit* u) : unit(u) {
    // nop
  }
  turn_handler(turn_handler&& other) noexcept
      : unit(std::exchange(other.unit, nullptr)) {
    // nop
  }
  turn_handler(const turn_handler&) = delete;
  turn_handler& operator=(const turn_handler&) = delete;
  turn_handler& operator=(turn_handler&&) = delete;

  ~turn_handler() {
    if (unit != nullptr)
      unit->hand_off_local();
  }

  void operator()() { std::exchange(unit, nullptr)->drain(); }
};

/// A queued job. Destroyed without running (its io_context was stopped and
/// went with the job), it goes to another worker; once there is none (the
/// scheduler has stopped), it ends its actor as CAF's own scheduler does
/// with jobs left at shutdown.
struct job_handler {
  io_unit* unit;
  caf::resumable* job;

  job_handler(io_unit* u, caf::resumable* j) : unit(u), job(j) {
    // nop
  }
  job_handler(job_handler&& other) noexcept
      : unit(other.unit), job(std::exchange(other.job, nullptr)) {
    // nop
  }
  job_handler(const job_handler&) = delete;
  job_handler& operator=(const job_handler&) = delete;
  job_handler& operator=(job_handler&&) = delete;

  ~job_handler();

  void operator()() { unit->run(std::exchange(job, nullptr)); }
};

class io_coordinator final : public caf::scheduler::abstract_coordinator {
public:
  using super = caf::scheduler::abstract_coordinator;

  /// Most io threads that can be workers at once; more run no actors of
  /// their own (theirs go to the others), with a warning in the config
  /// check above 256.
  static constexpr size_t max_units = 512;

  /// Messages an actor handles before the io thread's socket work gets a
  /// turn, unless `scheduler.max-throughput` says otherwise.
  static constexpr size_t default_throughput = 64;

  explicit io_coordinator(caf::actor_system& sys) : super(sys) {
    // nop
  }

  void enqueue(caf::resumable* job) override {
    if (current_unit != nullptr && current_unit->owned_by(this)) {
      current_unit->exec_later(job);
      return;
    }
    enqueue_elsewhere(job);
  }

  /// From a thread that is not a worker of this scheduler: the attached io
  /// threads in turn, else the scheduler's own thread, else (after stop)
  /// the job ends as at shutdown.
  void enqueue_elsewhere(caf::resumable* job) {
    auto n = attached_.load();
    for (size_t tries = 0; tries < n; ++tries) {
      auto i = next_worker_.fetch_add(1, std::memory_order_relaxed) % n;
      if (auto* u = units_[i].load(); u != nullptr && u->try_post(job))
        return;
    }
    if (auto* u = fallback_.load(); u != nullptr && u->try_post(job))
      return;
    cleanup_and_release(job);
  }

  caf::actor_clock& clock() noexcept override { return clock_; }

  ~io_coordinator() override;

  void init(caf::actor_system_config& cfg) override {
    super::init(cfg);
    if (max_throughput_ == std::numeric_limits<size_t>::max())
      max_throughput_ = default_throughput;
    num_workers_ = 1;
  }

  void start() override {
    clock_.start();
    fallback_ioc_.emplace(1);
    auto* unit = new io_unit(*this, *fallback_ioc_);
    own_fallback_.reset(unit);
    fallback_thread_ = std::thread{[this, unit] {
      pthread_setname_np(pthread_self(), "pw.actors");
      current_unit = unit;
      fallback_ioc_->run();
      current_unit = nullptr;
    }};
    fallback_.store(unit);
    super::start();
  }

  void stop() override {
    // CAF's printer and internal actors end here; they need a worker.
    stop_actors();
    clock_.stop();
    if (auto* u = fallback_.exchange(nullptr); u != nullptr)
      u->close();
    // What is queued now still runs; then the thread ends, even if an
    // actor keeps posting itself (what it posts after goes with the
    // io_context, ended by job_handler).
    net::post(*fallback_ioc_, [ioc = &*fallback_ioc_] { ioc->stop(); });
    if (fallback_thread_.joinable())
      fallback_thread_.join();
    // Jobs still queued end as at shutdown (job_handler's destructor).
    fallback_ioc_.reset();
  }

  /// Makes the calling thread, running `ioc`, a worker.
  io_unit* attach(net::io_context& ioc) {
    auto* unit = new io_unit(*this, ioc);
    for (size_t i = 0; i < max_units; ++i) {
      io_unit* expected = nullptr;
      if (units_[i].compare_exchange_strong(expected, unit)) {
        // Slots fill in order; a detached unit keeps its slot (closed).
        auto n = attached_.load();
        while (n < i + 1 && !attached_.compare_exchange_weak(n, i + 1)) {
          // n reloaded
        }
        current_unit = unit;
        return unit;
      }
    }
    delete unit;
    return nullptr;
  }

private:
  io_clock clock_;
  std::array<std::atomic<io_unit*>, max_units> units_{};
  std::atomic<size_t> attached_{0};
  std::optional<net::io_context> fallback_ioc_;
  std::unique_ptr<io_unit> own_fallback_;
  std::atomic<io_unit*> fallback_{nullptr};
  std::thread fallback_thread_;
};

io_coordinator::~io_coordinator() {
  // Only if the actor system started the scheduler and never stopped it.
  if (fallback_thread_.joinable()) {
    fallback_ioc_->stop();
    fallback_thread_.join();
  }
  // The io_context goes before the units its handlers name (a no-op after
  // stop()).
  if (own_fallback_)
    own_fallback_->close();
  fallback_ioc_.reset();
  for (auto& slot : units_)
    delete slot.load();
}

job_handler::~job_handler() {
  if (job != nullptr)
    unit->owner().enqueue_elsewhere(job);
}

io_unit::io_unit(io_coordinator& owner, net::io_context& ioc)
    : caf::execution_unit(&owner.system()), owner_(&owner), ioc_(&ioc),
      busy_(ioc.get_executor()) {
  // nop
}

void io_unit::exec_later(caf::resumable* job) {
  if (current_unit == this) {
    local_.push_back(job);
    if (!turn_posted_) {
      turn_posted_ = true;
      net::post(*ioc_, turn_handler{this});
    }
    return;
  }
  if (!try_post(job))
    owner_->enqueue(job);
}

bool io_unit::try_post(caf::resumable* job) {
  // A unit that closes waits for posts under way; one that has closed
  // takes none (its io_context may be gone).
  posting_.fetch_add(1);
  if (!open_.load()) {
    posting_.fetch_sub(1);
    return false;
  }
  post(job);
  posting_.fetch_sub(1);
  return true;
}

void io_unit::close() {
  open_.store(false);
  while (posting_.load() != 0)
    std::this_thread::yield();
  busy_.reset();
}

void io_unit::post(caf::resumable* job) {
  net::post(*ioc_, job_handler{this, job});
}

void io_unit::drain() {
  for (size_t ran = 0; !local_.empty(); ++ran) {
    if (ran == turn_jobs) {
      net::post(*ioc_, turn_handler{this}); // turn_posted_ stays set
      return;
    }
    auto* job = local_.front();
    local_.pop_front();
    run(job);
  }
  turn_posted_ = false;
}

void io_unit::hand_off_local() {
  turn_posted_ = false;
  while (!local_.empty()) {
    auto* job = local_.front();
    local_.pop_front();
    owner_->enqueue_elsewhere(job);
  }
}

void io_unit::run(caf::resumable* job) {
  switch (job->resume(this, owner_->max_throughput())) {
  case caf::resumable::resume_later:
    // Its mailbox is not empty yet: back of the queue, after the socket
    // work that waited meanwhile.
    post(job);
    break;
  case caf::resumable::awaiting_message:
  case caf::resumable::done:
    intrusive_ptr_release(job);
    break;
  case caf::resumable::shutdown_execution_unit:
    break;
  }
}

void use_io_scheduler(caf::actor_system_config& cfg) {
  cfg.module_factories.push_back(
    [](caf::actor_system& sys) -> caf::actor_system::module* {
      return new io_coordinator(sys);
    });
}

bool runs_on_io_threads(caf::actor_system& sys) {
  return dynamic_cast<io_coordinator*>(&sys.scheduler()) != nullptr;
}

io_thread_scope::io_thread_scope(caf::actor_system& sys,
                                 boost::asio::io_context& ioc) {
  if (auto* c = dynamic_cast<io_coordinator*>(&sys.scheduler()))
    unit_ = c->attach(ioc);
}

io_thread_scope::~io_thread_scope() {
  if (unit_ == nullptr)
    return;
  unit_->close();
  current_unit = nullptr;
}

} // namespace pw::http
