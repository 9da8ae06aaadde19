#include "supervisor/listeners.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace kbgp {

UniqueFd bind_tcp_listener(const Endpoint& where, int backlog, std::string* error) {
  UniqueFd fd(::socket(where.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  auto fail = [&](const char* what) {
    *error = std::string(what) + " " + where.to_string() + ": " + std::strerror(errno);
    return UniqueFd();
  };
  if (!fd) return fail("socket for");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (where.family == AF_INET6)
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  sockaddr_storage ss;
  socklen_t len = where.to_sockaddr(&ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail("cannot bind");
  if (::listen(fd.get(), backlog) != 0) return fail("cannot listen on");
  return fd;
}

}  // namespace kbgp
