#pragma once

// Starts the real pw-router binary on 127.0.0.1:0 with a config written to a
// temporary file, reads the bound port from its "listening" log line, keeps
// collecting its output, and stops the process it started, by PID.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace pw::test {

/// Output and exit code of a pw-router run that ends by itself.
struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Writes `text` to a new temporary file and returns its path.
std::string write_temp_file(const std::string& text,
                            const std::string& suffix = ".yaml");

/// Runs pw-router with `args` to completion (bounded by `timeout`).
run_result run_pw_router(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {},
                         std::chrono::milliseconds timeout
                         = std::chrono::seconds{20});

class gateway_process {
public:
  /// Starts pw-router on `config_yaml` and waits for its listening line.
  /// Throws std::runtime_error (with the process output) if it does not
  /// come up within 20 s.
  explicit gateway_process(const std::string& config_yaml,
                           std::map<std::string, std::string> env = {});

  ~gateway_process();

  gateway_process(const gateway_process&) = delete;
  gateway_process& operator=(const gateway_process&) = delete;

  [[nodiscard]] uint16_t port() const { return port_; }

  [[nodiscard]] pid_t pid() const { return pid_; }

  /// Stops (true) or resumes (false) reading the process's stdout: while
  /// paused, the pipe fills and the gateway's writes to it block.
  void pause_output(bool paused);

  /// Everything the process wrote to stdout so far.
  [[nodiscard]] std::string output() const;

  /// Everything the process wrote to stderr so far.
  [[nodiscard]] std::string errors() const;

  /// Blocks until stdout contains `text` or `timeout` passed.
  bool wait_for_output(const std::string& text,
                       std::chrono::milliseconds timeout
                       = std::chrono::seconds{10}) const;

  /// True while the process runs.
  [[nodiscard]] bool running() const;

  /// Replaces the config file's contents (for a reload).
  void rewrite_config(const std::string& config_yaml);

  /// Sends `sig` to the process.
  void signal(int sig) const;

  /// Sends SIGTERM, waits up to `timeout`, then SIGKILL. Returns the exit
  /// code (128 + signal if killed by one). The destructor stops the process
  /// too, and aborts the test binary if it did not exit 0 or a sanitizer
  /// reported an error.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds{20});

private:
  void reader(int fd, std::string& sink);

  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string config_path_;
  mutable int exit_code_ = -1;
  bool exited_ = false;
  bool stdout_paused_ = false;
  mutable std::mutex mtx_;
  mutable std::condition_variable cv_;
  std::string out_;
  std::string err_;
  std::thread out_reader_;
  std::thread err_reader_;
};

} // namespace pw::test
