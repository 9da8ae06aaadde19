#include "uplink/proxy_dial.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "common/timeutil.h"
#include "uplink/proxy_http.h"

namespace kbgp::uplink {

namespace {

int remaining_ms(int64_t deadline_mono_ns) {
  int64_t left = deadline_mono_ns - monotonic_ns();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<int64_t>((left + 999'999) / 1'000'000, 60'000));
}

// Waits for `events` on fd until the deadline (or `cancel`); false on
// timeout, cancellation or error.
bool wait_for(int fd, short events, int64_t deadline_mono_ns,
              const std::atomic<bool>* cancel = nullptr) {
  for (;;) {
    if (cancel && cancel->load()) return false;
    int ms = remaining_ms(deadline_mono_ns);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, cancel ? std::min(ms, 100) : ms);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && cancel) continue;
    return n == 1;
  }
}

bool set_blocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  flags = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
  return ::fcntl(fd, F_SETFL, flags) == 0;
}

// Connects to one of the addresses of host:port before the deadline.
UniqueFd connect_any(const std::string& host, uint16_t port, int64_t deadline, std::string* error,
                     const std::atomic<bool>* cancel) {
  auto addrs = resolve_host(host, port, error);
  std::string last;
  for (const auto& a : addrs) {
    UniqueFd fd = start_connect(a, &last);
    if (!fd) continue;
    if (!wait_for(fd.get(), POLLOUT, deadline, cancel)) {
      last = "connect to " + address_text(a) + ": timed out";
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last = "connect to " + address_text(a) + ": " + std::strerror(err);
      continue;
    }
    return fd;
  }
  if (!addrs.empty()) *error = last;
  return UniqueFd();
}

}  // namespace

std::vector<sockaddr_storage> resolve_host(const std::string& host, uint16_t port,
                                           std::string* error) {
  std::vector<sockaddr_storage> out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // Addresses are taken as they are, without asking any resolver. No
  // AI_ADDRCONFIG: it would open a netlink socket, which the uplink's
  // seccomp policy does not allow.
  hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
  std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc == EAI_NONAME) {
    hints.ai_flags = AI_NUMERICSERV;
    rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  }
  if (rc != 0) {
    *error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return out;
  }
  for (addrinfo* p = res; p && out.size() < 8; p = p->ai_next) {
    if (p->ai_family != AF_INET && p->ai_family != AF_INET6) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, p->ai_addr, std::min<size_t>(p->ai_addrlen, sizeof ss));
    out.push_back(ss);
  }
  ::freeaddrinfo(res);
  if (out.empty()) *error = "no IPv4 or IPv6 address for " + host;
  return out;
}

UniqueFd start_connect(const sockaddr_storage& addr, std::string* error) {
  UniqueFd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    *error = std::string("socket: ") + std::strerror(errno);
    return fd;
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  socklen_t len = addr.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 &&
      errno != EINPROGRESS) {
    *error = "connect to " + address_text(addr) + ": " + std::strerror(errno);
    return UniqueFd();
  }
  return fd;
}

std::string address_text(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
  ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
}

DialResult dial(const ProxyUrl* proxy, const std::string& host, uint16_t port,
                std::string_view user_agent, int64_t deadline, const std::atomic<bool>* cancel) {
  DialResult r;
  if (!proxy) {
    r.fd = connect_any(host, port, deadline, &r.error, cancel);
    if (r.fd) set_blocking(r.fd.get(), true);
    return r;
  }
  UniqueFd fd = connect_any(proxy->host, proxy->port, deadline, &r.error, cancel);
  if (!fd) {
    r.error = "cannot reach the web proxy " + proxy->display() + ": " + r.error;
    return r;
  }
  std::string target = join_host_port(host, port);
  std::string request = connect_request(target, *proxy, user_agent);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd.get(), POLLOUT, deadline, cancel)) {
        r.error = "web proxy " + proxy->display() + ": timed out sending CONNECT";
        return r;
      }
    } else {
      r.error = "web proxy " + proxy->display() + ": " + std::strerror(errno);
      return r;
    }
  }
  // Read byte by byte up to the end of the head: nothing of the tunnel's
  // own data may be swallowed (it belongs to the TLS layer above).
  std::string head;
  while (head_length(head) == 0) {
    if (head.size() >= kMaxHeadBytes) {
      r.error = "web proxy " + proxy->display() + ": response head too long";
      return r;
    }
    char c;
    ssize_t n = ::recv(fd.get(), &c, 1, 0);
    if (n == 1) {
      head += c;
    } else if (n == 0) {
      r.error = "web proxy " + proxy->display() + " closed the connection before answering CONNECT";
      return r;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd.get(), POLLIN, deadline, cancel)) {
        r.error = "web proxy " + proxy->display() + ": no answer to CONNECT in time";
        return r;
      }
    } else {
      r.error = "web proxy " + proxy->display() + ": " + std::strerror(errno);
      return r;
    }
  }
  auto resp = parse_response_head(head);
  if (!resp) {
    r.error = "web proxy " + proxy->display() + " did not answer CONNECT with HTTP";
    return r;
  }
  if (resp->status < 200 || resp->status > 299) {
    r.proxy_status = resp->status;
    r.error = "web proxy " + proxy->display() + " refused CONNECT " + target + ": " +
              std::to_string(resp->status) + " " + resp->reason + " (" +
              proxy_status_hint(resp->status) + ")";
    return r;
  }
  set_blocking(fd.get(), true);
  r.fd = std::move(fd);
  return r;
}

}  // namespace kbgp::uplink
