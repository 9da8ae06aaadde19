#include "ingest/collector_connection.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace kbgp::ingest {

CollectorConnection::CollectorConnection(event_base* base, Listener& listener)
    : base_(base), listener_(listener) {}

CollectorConnection::~CollectorConnection() = default;

bool CollectorConnection::connect(const Endpoint& source, const Endpoint& dest,
                                  std::string* error) {
  UniqueFd fd(::socket(dest.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  int one = 1;
  // Many sessions from one source address: let connect() pick the port, so
  // bind() does not reserve one per (address, any destination).
  ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  // BGP messages are small and latency matters more than packet count.
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Endpoint local = source;
  local.port = 0;
  sockaddr_storage ss;
  socklen_t len = local.to_sockaddr(&ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    *error = "bind to source " + local.address_string() + ": " + std::strerror(errno);
    return false;
  }
  bev_.reset(bufferevent_socket_new(base_, fd.get(), BEV_OPT_CLOSE_ON_FREE));
  if (!bev_) {
    *error = "bufferevent_socket_new failed";
    return false;
  }
  fd.release();  // the bufferevent owns it now
  bufferevent_setcb(bev_.get(), &on_read, &on_write, &on_event, this);
  bufferevent_setwatermark(bev_.get(), EV_WRITE, kOutputLowMark, 0);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  len = dest.to_sockaddr(&ss);
  if (bufferevent_socket_connect(bev_.get(), reinterpret_cast<sockaddr*>(&ss),
                                 static_cast<int>(len)) != 0) {
    *error = "connect to " + dest.to_string() + ": " + std::strerror(errno);
    bev_.reset();
    return false;
  }
  return true;
}

void CollectorConnection::write(std::string_view bytes) {
  if (!bev_ || closed_ || shutdown_wanted_ || bytes.empty()) return;
  bufferevent_write(bev_.get(), bytes.data(), bytes.size());
}

size_t CollectorConnection::pending_output() const {
  return bev_ ? evbuffer_get_length(bufferevent_get_output(bev_.get())) : 0;
}

size_t CollectorConnection::pending_input() const {
  return bev_ ? evbuffer_get_length(bufferevent_get_input(bev_.get())) : 0;
}

std::string CollectorConnection::read(size_t max) {
  std::string out;
  if (!bev_) return out;
  evbuffer* in = bufferevent_get_input(bev_.get());
  size_t n = evbuffer_get_length(in);
  if (n > max) n = max;
  out.resize(n);
  if (n > 0) {
    int got = evbuffer_remove(in, out.data(), n);
    out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  }
  return out;
}

void CollectorConnection::unread(std::string_view bytes) {
  if (!bev_ || bytes.empty()) return;
  evbuffer_prepend(bufferevent_get_input(bev_.get()), bytes.data(), bytes.size());
}

void CollectorConnection::set_input_limit(size_t bytes) {
  if (bev_) bufferevent_setwatermark(bev_.get(), EV_READ, 0, bytes);
}

void CollectorConnection::shutdown_write() {
  shutdown_wanted_ = true;
  maybe_shutdown_write();
}

void CollectorConnection::maybe_shutdown_write() {
  if (!shutdown_wanted_ || shutdown_done_ || !connected_ || closed_ || !bev_) return;
  if (pending_output() != 0) return;  // on_write will call again when empty
  shutdown_done_ = true;
  ::shutdown(bufferevent_getfd(bev_.get()), SHUT_WR);
}

void CollectorConnection::close(bool reset) {
  if (!bev_) return;
  if (reset) {
    linger lg{1, 0};
    ::setsockopt(bufferevent_getfd(bev_.get()), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  closed_ = true;
  bev_.reset();
}

void CollectorConnection::on_read(bufferevent*, void* self) {
  static_cast<CollectorConnection*>(self)->listener_.on_collector_readable();
}

void CollectorConnection::on_write(bufferevent*, void* self) {
  auto* c = static_cast<CollectorConnection*>(self);
  c->maybe_shutdown_write();
  c->listener_.on_collector_drained();
}

void CollectorConnection::on_event(bufferevent* bev, short what, void* self) {
  auto* c = static_cast<CollectorConnection*>(self);
  int err = EVUTIL_SOCKET_ERROR();
  if (what & BEV_EVENT_CONNECTED) {
    c->connected_ = true;
    c->maybe_shutdown_write();
    c->listener_.on_collector_connected();
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    if (c->closed_) return;
    c->closed_ = true;
    // Keep the input buffer for the owner to drain; stop all socket I/O.
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    bool error = (what & BEV_EVENT_ERROR) != 0;
    std::string reason;
    if (!error) {
      reason = "collector closed the connection";
    } else if (!c->connected_) {
      reason = std::string("connect failed: ") + evutil_socket_error_to_string(err);
    } else {
      reason = std::string("connection error: ") + evutil_socket_error_to_string(err);
    }
    c->listener_.on_collector_closed(error, reason);
  }
}

}  // namespace kbgp::ingest
