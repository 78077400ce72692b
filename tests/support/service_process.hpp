#pragma once

// Debian-packaged services a test needs (redis-server, nginx), started on
// a free loopback port by the test itself and stopped by PID. Their output
// goes to a file in the test's temporary directory.

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace pw::test {

/// A port nobody listens on right now (bound to 0, then released).
uint16_t free_port();

/// Blocks until 127.0.0.1:port accepts a connection, or `timeout` passed.
bool port_open(uint16_t port, std::chrono::milliseconds timeout);

class service_process {
public:
  /// Starts `argv` (argv[0] an absolute path) and waits until it accepts
  /// connections on `port`. Throws std::runtime_error (with its output)
  /// if it does not within 10 s.
  service_process(std::vector<std::string> argv, uint16_t port);
  ~service_process();

  service_process(const service_process&) = delete;
  service_process& operator=(const service_process&) = delete;

  [[nodiscard]] uint16_t port() const { return port_; }

  /// Ends it with SIGKILL (a crash) and reaps it. A process with children
  /// (nginx's workers) is ended with stop() instead.
  void kill();

  /// Ends it with SIGTERM (nginx's master then ends its workers), waits
  /// up to 10 s, then SIGKILL; reaps it.
  void stop();

  /// Starts it again with the same arguments on the same port.
  void restart();

  /// What it wrote so far.
  [[nodiscard]] std::string output() const;

private:
  void start();

  std::vector<std::string> argv_;
  uint16_t port_;
  std::string log_path_;
  pid_t pid_ = -1;
};

/// A redis-server (Debian `redis-server` 7) on a free loopback port, with
/// nothing saved to disk.
service_process start_redis();

/// nginx (Debian `nginx-light`) on a free loopback port, round-robin over
/// 127.0.0.1:`backends`, its files in `dir` (which must exist).
service_process start_nginx(const std::vector<uint16_t>& backends,
                            const std::string& dir);

} // namespace pw::test
