#include "tests/support/service_process.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace pw::test {

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

/// One connection attempt, bounded by `wait` (non-blocking connect, then
/// poll for the outcome).
bool try_connect(uint16_t port, std::chrono::milliseconds wait) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  auto a = loopback(port);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(wait.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      ok = err == 0;
    }
  }
  close(fd);
  return ok;
}

} // namespace

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = loopback(0);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("no free port");
  close(fd);
  return ntohs(a.sin_port);
}

bool port_open(uint16_t port, std::chrono::milliseconds timeout) {
  // A starting server's listen() is not an event another process can
  // wait on: the attempts are bounded, each by the time left.
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (try_connect(port, std::chrono::milliseconds{200}))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return false;
}

service_process::service_process(std::vector<std::string> argv, uint16_t port)
    : argv_(std::move(argv)), port_(port) {
  char name[] = "/tmp/pw-router-service-XXXXXX";
  int fd = mkstemp(name);
  if (fd < 0)
    throw std::runtime_error("mkstemp failed");
  close(fd);
  log_path_ = name;
  start();
}

service_process::~service_process() {
  stop();
  std::remove(log_path_.c_str());
}

void service_process::start() {
  std::vector<char*> args;
  for (auto& a : argv_)
    args.push_back(a.data());
  args.push_back(nullptr);
  int log = open(log_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log < 0)
    throw std::runtime_error("cannot open " + log_path_);
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log);
  if (!port_open(port_, std::chrono::seconds{10})) {
    auto out = output();
    kill();
    throw std::runtime_error(argv_[0] + " did not listen on port "
                             + std::to_string(port_) + ":\n" + out);
  }
}

void service_process::kill() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void service_process::stop() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGTERM);
  // Its exit is an event: a pidfd becomes readable.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  bool gone = false;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    gone = poll(&p, 1, 10'000) == 1;
    close(pidfd);
  }
  if (!gone)
    ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void service_process::restart() {
  kill();
  start();
}

std::string service_process::output() const {
  std::ifstream in{log_path_};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

service_process start_redis() {
  auto port = free_port();
  return service_process{{"/usr/bin/redis-server", "--port",
                          std::to_string(port), "--bind", "127.0.0.1", "--save",
                          "", "--appendonly", "no", "--protected-mode", "no"},
                         port};
}

service_process start_nginx(const std::vector<uint16_t>& backends,
                            const std::string& dir) {
  auto port = free_port();
  std::ostringstream conf;
  conf << "worker_processes 1;\n"
       << "pid " << dir << "/nginx.pid;\n"
       << "error_log " << dir << "/error.log warn;\n"
       << "daemon off;\n"
       << "events { worker_connections 1024; }\n"
       << "http {\n  access_log off;\n";
  for (const auto* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
    conf << "  " << t << "_temp_path " << dir << "/" << t << ";\n";
  conf << "  upstream gateways {\n";
  for (auto b : backends)
    conf << "    server 127.0.0.1:" << b << ";\n";
  conf << "    keepalive 16;\n  }\n"
       << "  server {\n    listen 127.0.0.1:" << port << ";\n"
       << "    location / {\n      proxy_pass http://gateways;\n"
       << "      proxy_http_version 1.1;\n"
       << "      proxy_set_header Connection \"\";\n"
       << "      proxy_buffering off;\n    }\n  }\n}\n";
  auto path = dir + "/nginx.conf";
  std::ofstream{path} << conf.str();
  return service_process{
    {"/usr/sbin/nginx", "-p", dir, "-e", dir + "/error.log", "-c", path}, port};
}

} // namespace pw::test
