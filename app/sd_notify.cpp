#include "app/sd_notify.hpp"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace pw::app {

bool sd_notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0')
    return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  auto len = std::strlen(path);
  // A path, or '@' for an abstract socket; nothing else is valid.
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path))
    return false;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@')
    addr.sun_path[0] = '\0';
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  auto sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr), addr_len);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

bool sd_notify_reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  auto usec
    = static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1'000;
  return sd_notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

} // namespace pw::app
