#include "http/redis_link.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <deque>
#include <hiredis/hiredis.h>

namespace pw::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

/// Bytes of one reply (or of replies not yet whole) beyond which Redis is
/// not trusted any more.
constexpr size_t most_buffered = size_t{8} << 20;

/// Most elements an array in a reply may announce. The gateway's largest
/// answer, a batch of 512 reservations, has a few thousand; hiredis 0.14
/// allocates the element array when it reads the header, so an unbounded
/// count from a hostile Redis would be one huge allocation.
constexpr int most_elements = 1 << 16;

/// hiredis's own reply functions, with arrays bounded by most_elements.
const redisReplyObjectFunctions& default_functions() {
  static const redisReplyObjectFunctions fns = [] {
    auto* probe = redisReaderCreate();
    auto copy = *probe->fn;
    redisReaderFree(probe);
    return copy;
  }();
  return fns;
}

void* bounded_array(const redisReadTask* task, int elements) {
  if (elements < 0 || elements > most_elements)
    return nullptr; // the parser reports it as an error
  return default_functions().createArray(task, elements);
}

redisReplyObjectFunctions* bounded_functions() {
  static redisReplyObjectFunctions fns = [] {
    auto copy = default_functions();
    copy.createArray = bounded_array;
    return copy;
  }();
  return &fns;
}

/// Appends `argv` as a RESP command (an array of bulk strings).
void append_command(std::string& out, const std::vector<std::string>& argv) {
  out += '*';
  out += std::to_string(argv.size());
  out += "\r\n";
  for (const auto& a : argv) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
}

class asio_redis_link final
    : public actors::redis_link,
      public std::enable_shared_from_this<asio_redis_link> {
public:
  asio_redis_link(net::io_context& ioc, const redis_config& cfg,
                  std::vector<std::vector<std::string>> greeting)
      : ioc_(ioc), cfg_(cfg), greeting_(std::move(greeting)), resolver_(ioc),
        socket_(ioc), timer_(ioc) {
    // nop
  }

  ~asio_redis_link() override {
    if (reader_ != nullptr)
      redisReaderFree(reader_);
  }

  void call(const std::vector<std::string>& argv, done_fn done) override {
    std::string bytes;
    append_command(bytes, argv);
    net::post(ioc_, [self = shared_from_this(), bytes = std::move(bytes),
                     done = std::move(done)]() mutable {
      self->enqueue(std::move(bytes), std::move(done));
    });
  }

  void close() override {
    net::post(ioc_, [self = shared_from_this()] {
      self->closed_ = true;
      self->timer_.cancel();
      self->fail("the Redis link was closed", failure::closed);
    });
  }

private:
  struct command {
    std::string bytes;
    done_fn done;
    clock_type::time_point deadline;
    bool sent = false;
    bool retried = false;
  };

  void enqueue(std::string bytes, done_fn done) {
    auto now = clock_type::now();
    if (closed_) {
      done(nullptr, "the Redis link was closed");
      return;
    }
    if (phase_ == phase::closed) {
      if (!reachable_ && now - last_failure_ < std::chrono::seconds{1}) {
        done(nullptr,
             "Redis was unreachable less than a second ago: " + last_why_);
        return;
      }
      connect();
    }
    queue_.push_back({std::move(bytes), std::move(done), now + cfg_.timeout});
    write();
    arm_timer();
  }

  std::string where() const {
    return cfg_.host + ":" + std::to_string(cfg_.port);
  }

  void connect() {
    phase_ = phase::connecting;
    auto e = ++epoch_;
    auto connected = [self = shared_from_this(),
                      e](const boost::system::error_code& ec, const auto&) {
      if (e != self->epoch_)
        return;
      if (ec) {
        self->fail("cannot connect to Redis at " + self->where() + ": "
                     + ec.message(),
                   failure::unreachable);
        return;
      }
      self->opened();
    };
    boost::system::error_code ec;
    auto ip = net::ip::make_address(cfg_.host, ec);
    if (!ec) {
      std::array<tcp::endpoint, 1> to{tcp::endpoint{ip, cfg_.port}};
      net::async_connect(socket_, to, std::move(connected));
      return;
    }
    resolver_.async_resolve(
      cfg_.host, std::to_string(cfg_.port),
      [self = shared_from_this(), e, connected = std::move(connected)](
        const boost::system::error_code& ec,
        const tcp::resolver::results_type& found) mutable {
        if (e != self->epoch_)
          return;
        if (ec) {
          self->fail("cannot resolve the Redis host " + self->cfg_.host + ": "
                       + ec.message(),
                     failure::unreachable);
          return;
        }
        net::async_connect(self->socket_, found, std::move(connected));
      });
  }

  void opened() {
    phase_ = phase::open;
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay{true}, ignored);
    reader_ = redisReaderCreate();
    reader_->fn = bounded_functions();
    // The handshake goes first; its replies are read before any command's.
    // Never the password in a message: only Redis's own words.
    handshake_.clear();
    if (!cfg_.password.empty()) {
      append_command(handshake_, {"AUTH", std::string{cfg_.password.reveal()}});
      steps_.push_back("AUTH");
    }
    if (cfg_.db != 0) {
      append_command(handshake_, {"SELECT", std::to_string(cfg_.db)});
      steps_.push_back("SELECT");
    }
    for (const auto& g : greeting_) {
      append_command(handshake_, g);
      steps_.push_back(g.size() > 1 ? g[0] + " " + g[1] : g[0]);
    }
    read();
    write();
  }

  /// Writes what is not written yet, one write at a time.
  void write() {
    if (phase_ != phase::open || writing_)
      return;
    out_.clear();
    out_.swap(handshake_);
    for (auto& c : queue_)
      if (!c.sent) {
        out_ += c.bytes;
        c.sent = true;
      }
    if (out_.empty())
      return;
    writing_ = true;
    net::async_write(socket_, net::buffer(out_),
                     [self = shared_from_this(),
                      e = epoch_](const boost::system::error_code& ec, size_t) {
                       if (e != self->epoch_)
                         return;
                       self->writing_ = false;
                       if (ec) {
                         self->fail("cannot write to Redis: " + ec.message(),
                                    failure::lost);
                         return;
                       }
                       self->write();
                     });
  }

  void read() {
    socket_.async_read_some(
      net::buffer(in_), [self = shared_from_this(), e = epoch_](
                          const boost::system::error_code& ec, size_t n) {
        if (e != self->epoch_)
          return;
        if (ec) {
          self->fail(ec == net::error::eof
                       ? std::string{"Redis closed the connection"}
                       : "cannot read from Redis: " + ec.message(),
                     failure::lost);
          return;
        }
        self->received(n, e);
      });
  }

  void received(size_t n, uint64_t e) {
    if (redisReaderFeed(reader_, in_.data(), n) != REDIS_OK) {
      fail("cannot read Redis's answer", failure::protocol);
      return;
    }
    for (;;) {
      void* r = nullptr;
      if (redisReaderGetReply(reader_, &r) != REDIS_OK) {
        // An array over most_elements fails as "Out of memory".
        fail(reader_->err == REDIS_ERR_OOM
               ? std::string{"Redis sent an answer too large to read (an "
                             "array of more than 65536 elements)"}
               : std::string{"Redis sent something that is not RESP: "}
                   + reader_->errstr,
             failure::protocol);
        return;
      }
      if (r == nullptr)
        break;
      replied(reply_ptr{static_cast<redisReply*>(r)});
      if (e != epoch_)
        return; // the reply failed the connection
    }
    if (reader_->len - reader_->pos > most_buffered) {
      fail("Redis sent an answer larger than 8 MiB", failure::protocol);
      return;
    }
    read();
  }

  void replied(reply_ptr r) {
    if (!steps_.empty()) {
      auto step = steps_.front();
      steps_.pop_front();
      if (r->type == REDIS_REPLY_ERROR)
        fail("Redis " + step + " failed: " + r->str, failure::unreachable);
      return;
    }
    if (queue_.empty() || !queue_.front().sent) {
      fail("Redis answered a command it was not sent", failure::protocol);
      return;
    }
    auto c = std::move(queue_.front());
    queue_.pop_front();
    reachable_ = true;
    c.done(std::move(r), {});
  }

  /// Why a connection ends: what is sent again, and whether the next
  /// second's commands fail at once.
  enum class failure {
    /// Closed or reset: each command goes once more on a new connection.
    lost,
    /// No reply in time: Redis may still run what it got.
    timed_out,
    /// Not reached (or the handshake refused).
    unreachable,
    /// An answer that is not Redis's protocol, or too large.
    protocol,
    /// close(): nothing goes again.
    closed,
  };

  void fail(const std::string& why, failure how) {
    auto was_open = phase_ == phase::open;
    boost::system::error_code ignored;
    socket_.close(ignored);
    resolver_.cancel();
    ++epoch_;
    phase_ = phase::closed;
    writing_ = false;
    handshake_.clear();
    steps_.clear();
    if (reader_ != nullptr)
      redisReaderFree(reader_);
    reader_ = nullptr;
    if (how != failure::lost && how != failure::closed) {
      reachable_ = false;
      last_failure_ = clock_type::now();
      last_why_ = why;
    }
    std::deque<command> again;
    std::deque<command> failed;
    for (auto& c : queue_) {
      if (how == failure::lost && was_open && !c.retried) {
        c.retried = true;
        c.sent = false;
        again.push_back(std::move(c));
      } else {
        failed.push_back(std::move(c));
      }
    }
    queue_ = std::move(again);
    if (!queue_.empty())
      connect();
    for (auto& c : failed)
      c.done(nullptr, why);
  }

  /// One timer for the oldest command: when it fires past that command's
  /// deadline the connection fails; otherwise it waits for the next one.
  void arm_timer() {
    if (timer_armed_ || queue_.empty())
      return;
    timer_armed_ = true;
    timer_.expires_at(queue_.front().deadline);
    timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) {
        self->timer_armed_ = false;
        if (ec)
          return;
        if (!self->queue_.empty()
            && self->queue_.front().deadline <= clock_type::now())
          self->fail("Redis did not answer within "
                       + std::to_string(self->cfg_.timeout.count()) + " ms",
                     failure::timed_out);
        self->arm_timer();
      });
  }

  enum class phase { closed, connecting, open };

  net::io_context& ioc_;
  redis_config cfg_;
  std::vector<std::vector<std::string>> greeting_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  net::steady_timer timer_;
  bool timer_armed_ = false;
  phase phase_ = phase::closed;
  /// Bumped at each new connection and each failure: handlers of an older
  /// one do nothing.
  uint64_t epoch_ = 0;
  /// Commands not yet answered, in the order they are sent.
  std::deque<command> queue_;
  /// The handshake to write first, and the steps whose replies are due.
  std::string handshake_;
  std::deque<std::string> steps_;
  bool writing_ = false;
  std::string out_;
  std::array<char, 16384> in_{};
  redisReader* reader_ = nullptr;
  bool reachable_ = true;
  /// close() was called.
  bool closed_ = false;
  clock_type::time_point last_failure_{};
  std::string last_why_;
};

} // namespace

actors::redis_link_ptr
make_redis_link(net::io_context& ioc, const redis_config& cfg,
                std::vector<std::vector<std::string>> greeting) {
  return std::make_shared<asio_redis_link>(ioc, cfg, std::move(greeting));
}

} // namespace pw::http
