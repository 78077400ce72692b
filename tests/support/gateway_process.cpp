#include "tests/support/gateway_process.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pw::test {

namespace {

std::string temp_dir() {
  if (const char* t = std::getenv("TMPDIR"); t && *t)
    return t;
  return "/tmp";
}

/// fork + exec `argv` with stdout/stderr on pipes and extra `env`.
pid_t spawn(const std::vector<std::string>& argv,
            const std::map<std::string, std::string>& env, int& out_fd,
            int& err_fd) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child's environment is made here: after fork() in a process with
  // threads, the child may only call async-signal-safe functions, and
  // setenv() allocates (a child forked while another thread held the
  // allocator's lock hung there, before exec, and ignored SIGTERM).
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var{*e};
    auto name = var.substr(0, var.find('='));
    if (!env.contains(std::string{name}))
      vars.emplace_back(var);
  }
  for (const auto& [k, v] : env)
    vars.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& v : vars)
    envp.push_back(v.data());
  envp.push_back(nullptr);
  auto pid = fork();
  if (pid < 0)
    throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  out_fd = out_pipe[0];
  err_fd = err_pipe[0];
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

/// Waits for `pid` up to `timeout` (an event: its pidfd becomes readable
/// when it exits); true if it exited, with its exit code in `code`.
bool wait_exit(pid_t pid, std::chrono::milliseconds timeout, int& code) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r = 0;
    do {
      r = poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    close(pidfd);
    if (r == 0)
      return false;
  }
  int status = 0;
  if (waitpid(pid, &status, 0) == pid)
    code = decode_status(status);
  return true;
}

} // namespace

std::string write_temp_file(const std::string& text,
                            const std::string& suffix) {
  auto pattern = temp_dir() + "/pw-router-test-XXXXXX" + suffix;
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  int fd = mkstemps(buf.data(), static_cast<int>(suffix.size()));
  if (fd < 0)
    throw std::runtime_error("mkstemps failed");
  auto written = ::write(fd, text.data(), text.size());
  close(fd);
  if (written != static_cast<ssize_t>(text.size()))
    throw std::runtime_error("short write");
  return buf.data();
}

run_result run_pw_router(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{PW_ROUTER_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  int out_fd = -1;
  int err_fd = -1;
  auto pid = spawn(argv, env, out_fd, err_fd);
  run_result result;
  auto drain = [](int fd, std::string& sink) {
    char buf[4096];
    for (;;) {
      auto n = read(fd, buf, sizeof(buf));
      if (n > 0) {
        sink.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      break;
    }
    close(fd);
  };
  std::thread t_out{drain, out_fd, std::ref(result.out)};
  std::thread t_err{drain, err_fd, std::ref(result.err)};
  if (!wait_exit(pid, timeout, result.exit_code)) {
    kill(pid, SIGKILL);
    int ignored = 0;
    wait_exit(pid, std::chrono::seconds{5}, ignored);
    result.exit_code = -1;
  }
  t_out.join();
  t_err.join();
  return result;
}

gateway_process::gateway_process(const std::string& config_yaml,
                                 std::map<std::string, std::string> env) {
  config_path_ = write_temp_file(config_yaml);
  std::vector<std::string> argv{
    PW_ROUTER_BIN, "--config", config_path_, "--host",
    "127.0.0.1",   "--port",   "0"};
  int out_fd = -1;
  int err_fd = -1;
  pid_ = spawn(argv, env, out_fd, err_fd);
  out_reader_ = std::thread{[this, out_fd] { reader(out_fd, out_); }};
  err_reader_ = std::thread{[this, err_fd] { reader(err_fd, err_); }};
  // Wait for the readiness line and take the port from it.
  std::unique_lock<std::mutex> guard{mtx_};
  auto ready = cv_.wait_for(guard, std::chrono::seconds{20}, [this] {
    return exited_ || out_.find("\"event\":\"listening\"") != std::string::npos;
  });
  if (ready && !exited_) {
    std::istringstream lines{out_};
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"event\":\"listening\"") == std::string::npos)
        continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("port"))
        port_ = j["port"].get<uint16_t>();
    }
  }
  if (port_ == 0) {
    auto out = out_;
    auto err = err_;
    guard.unlock();
    stop(std::chrono::seconds{5});
    throw std::runtime_error("pw-router did not start\nstdout:\n" + out
                             + "\nstderr:\n" + err);
  }
}

gateway_process::~gateway_process() {
  auto code = stop();
  std::remove(config_path_.c_str());
  // A gateway that did not exit cleanly on SIGTERM, or that a sanitizer
  // flagged, fails the test that ran it, even if every check passed.
  auto err = errors();
  if (code != 0 || err.find("Sanitizer") != std::string::npos
      || err.find("runtime error:") != std::string::npos) {
    std::fprintf(stderr, "pw-router (pid %d) exited with %d:\n%s\n",
                 static_cast<int>(pid_), code, err.c_str());
    std::abort();
  }
}

void gateway_process::reader(int fd, std::string& sink) {
  char buf[4096];
  for (;;) {
    if (&sink == &out_) {
      // A paused stdout is a pipe nobody reads: the gateway's writes to it
      // fill the pipe and then block.
      std::unique_lock<std::mutex> guard{mtx_};
      cv_.wait(guard, [this] { return !stdout_paused_; });
    }
    auto n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      sink.append(buf, static_cast<size_t>(n));
    }
    cv_.notify_all();
  }
  close(fd);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (&sink == &out_)
      exited_ = true; // stdout closes when the process ends
  }
  cv_.notify_all();
}

void gateway_process::pause_output(bool paused) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stdout_paused_ = paused;
  }
  cv_.notify_all();
}

std::string gateway_process::output() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return out_;
}

std::string gateway_process::errors() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return err_;
}

bool gateway_process::wait_for_output(const std::string& text,
                                      std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> guard{mtx_};
  return cv_.wait_for(guard, timeout,
                      [&] { return out_.find(text) != std::string::npos; });
}

void gateway_process::rewrite_config(const std::string& config_yaml) {
  std::ofstream out{config_path_, std::ios::trunc | std::ios::binary};
  out << config_yaml;
}

void gateway_process::signal(int sig) const {
  if (pid_ > 0)
    kill(pid_, sig);
}

bool gateway_process::running() const {
  if (pid_ <= 0 || exit_code_ >= 0)
    return false;
  int status = 0;
  auto r = waitpid(pid_, &status, WNOHANG);
  if (r == 0)
    return true;
  if (r == pid_)
    exit_code_ = decode_status(status);
  return false;
}

int gateway_process::stop(std::chrono::milliseconds timeout) {
  // A gateway whose stdout is paused cannot write its last lines.
  pause_output(false);
  if (pid_ > 0 && exit_code_ < 0) {
    kill(pid_, SIGTERM);
    int code = -1;
    if (!wait_exit(pid_, timeout, code)) {
      kill(pid_, SIGKILL);
      wait_exit(pid_, std::chrono::seconds{5}, code);
    }
    exit_code_ = code;
  }
  if (out_reader_.joinable())
    out_reader_.join();
  if (err_reader_.joinable())
    err_reader_.join();
  return exit_code_;
}

} // namespace pw::test
