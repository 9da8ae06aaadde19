#include "admin/http_server.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "admin/router.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/test_trigger.h"
#include "common/timeutil.h"

namespace kbgp::admin {

namespace {

Now now() { return {realtime_ns(), monotonic_ns()}; }

const char* method_name(evhttp_cmd_type cmd) {
  switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
  }
  return "UNKNOWN";
}

bool set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

}  // namespace

AdminServer::AdminServer(event_base* base, WorkerContext& ctx, int listen_fd)
    : base_(base), ctx_(ctx), listen_fd_(listen_fd), health_(monotonic_ns()) {}

AdminServer::~AdminServer() = default;

bool AdminServer::start() {
  ::signal(SIGPIPE, SIG_IGN);
  int listening = 0;
  socklen_t len = sizeof listening;
  if (::getsockopt(listen_fd_, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
    log::error("admin descriptor is not a listening socket", {{"fd", listen_fd_}});
    return false;
  }
  // Our end of the channel only: a supervisor that does not read must not
  // stall the admin; a heartbeat that does not fit is dropped.
  if (!set_nonblocking(listen_fd_) || !set_nonblocking(ctx_.channel.get())) {
    log::error("cannot make the admin's descriptors non-blocking", {{"error", std::strerror(errno)}});
    return false;
  }

  http_.reset(evhttp_new(base_));
  if (!http_) {
    log::error("cannot create the HTTP server");
    return false;
  }
  evhttp_set_max_headers_size(http_.get(), kMaxHeadersSize);
  evhttp_set_max_body_size(http_.get(), kMaxBodySize);
  evhttp_set_timeout(http_.get(), kConnectionTimeoutSeconds);
  // Let every method reach request_cb, which answers 405 in JSON.
  evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_.get(), request_cb, this);
  evhttp_bound_socket* bound = evhttp_accept_socket_with_handle(http_.get(), listen_fd_);
  if (!bound) {
    log::error("cannot serve HTTP on the admin socket");
    return false;
  }
  evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), accept_error_cb);

  tick_ev_.reset(event_new(base_, -1, EV_PERSIST, tick_cb, this));
  channel_ev_.reset(event_new(base_, ctx_.channel.get(), EV_READ | EV_PERSIST, channel_cb, this));
  sigterm_ev_.reset(evsignal_new(base_, SIGTERM, signal_cb, this));
  sigint_ev_.reset(evsignal_new(base_, SIGINT, signal_cb, this));
  timeval second{1, 0};
  if (!tick_ev_ || !channel_ev_ || !sigterm_ev_ || !sigint_ev_ ||
      event_add(tick_ev_.get(), &second) != 0 || event_add(channel_ev_.get(), nullptr) != 0 ||
      event_add(sigterm_ev_.get(), nullptr) != 0 || event_add(sigint_ev_.get(), nullptr) != 0) {
    log::error("cannot register the admin's events");
    return false;
  }
  health_.evaluate(*ctx_.control, now());
  return true;
}

void AdminServer::run() { event_base_dispatch(base_); }

void AdminServer::stop() { event_base_loopbreak(base_); }

void AdminServer::request_cb(evhttp_request* req, void* arg) {
  static_cast<AdminServer*>(arg)->on_request(req);
}
void AdminServer::tick_cb(evutil_socket_t, short, void* arg) {
  static_cast<AdminServer*>(arg)->on_tick();
}
void AdminServer::channel_cb(evutil_socket_t, short, void* arg) {
  static_cast<AdminServer*>(arg)->on_channel();
}
void AdminServer::signal_cb(evutil_socket_t sig, short, void* arg) {
  log::info("signal received, stopping", {{"signal", static_cast<int>(sig)}});
  static_cast<AdminServer*>(arg)->stop();
}

void AdminServer::accept_error_cb(evconnlistener* listener, void*) {
  // Typically EMFILE: the pending connection stays in the backlog and the
  // listener would fire again at once. Pause accepting for a second. (The
  // callback argument belongs to evhttp, so nothing of ours is reached
  // through it; the listener itself is all the timer needs.)
  int err = EVUTIL_SOCKET_ERROR();
  log::warn("admin cannot accept connections, pausing", {{"error", std::strerror(err)}});
  evconnlistener_disable(listener);
  timeval second{1, 0};
  if (event_base_once(evconnlistener_get_base(listener), -1, EV_TIMEOUT, resume_accept_cb,
                      listener, &second) != 0)
    evconnlistener_enable(listener);
}

void AdminServer::resume_accept_cb(evutil_socket_t, short, void* arg) {
  evconnlistener_enable(static_cast<evconnlistener*>(arg));
}

void AdminServer::on_tick() {
  health_.evaluate(*ctx_.control, now());
  auto beat = ipc::make<ipc::Heartbeat>(ipc::MsgType::Heartbeat);
  if (!ipc::send_msg(ctx_.channel.get(), &beat, sizeof beat) && errno != EAGAIN &&
      errno != EWOULDBLOCK) {
    log::error("cannot send a heartbeat to the supervisor, stopping",
               {{"error", std::strerror(errno)}});
    stop();
  }
}

void AdminServer::on_channel() {
  for (;;) {
    auto msg = ipc::recv_msg(ctx_.channel.get(), nullptr, shm::WorkerKind::Admin);
    switch (msg.status) {
      case ipc::Received::Status::Again:
        return;
      case ipc::Received::Status::Closed:
        log::info("supervisor channel closed, stopping", {{"error", msg.error}});
        return stop();
      case ipc::Received::Status::Invalid:
        log::warn("invalid message from the supervisor dropped", {{"error", msg.error}});
        continue;
      case ipc::Received::Status::Ok:
        break;
    }
    if (msg.type() == ipc::MsgType::Shutdown) {
      log::info("shutdown requested");
      return stop();
    }
    if (handle_common_message(msg)) continue;  // common/worker.h
    log::warn("unexpected message type from the supervisor",
              {{"type", static_cast<int>(msg.type())}});
  }
}

void AdminServer::on_request(evhttp_request* req) {
  HttpRequest request;
  request.method = method_name(evhttp_request_get_command(req));
  const char* uri = evhttp_request_get_uri(req);
  request.target = uri ? uri : "";
  request.has_body = evbuffer_get_length(evhttp_request_get_input_buffer(req)) > 0;

#ifdef KBGP_TEST_TRIGGERS
  if (request.target == "/test/forbidden-syscall") {
    test_trigger::forbidden_syscall(shm::WorkerKind::Admin);
    log::error("test trigger: the forbidden system call was not stopped");
    evhttp_send_error(req, 500, "forbidden system call not stopped");
    return;
  }
#endif
  HttpResponse response = route(request, *ctx_.control, health_, now());

  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", response.content_type.c_str());
  evhttp_add_header(headers, "Cache-Control", "no-store");
  for (const auto& [name, value] : response.headers)
    evhttp_add_header(headers, name.c_str(), value.c_str());
  evbuffer* body = evbuffer_new();
  if (!body) {
    evhttp_send_error(req, 500, "Internal Server Error");
    return;
  }
  evbuffer_add(body, response.body.data(), response.body.size());
  evhttp_send_reply(req, response.code, response.reason.c_str(), body);
  evbuffer_free(body);
  if (log::level() <= log::Level::Debug) {
    char* host = nullptr;
    uint16_t port = 0;
    if (auto* conn = evhttp_request_get_connection(req)) evhttp_connection_get_peer(conn, &host, &port);
    log::debug("admin request", {{"method", request.method},
                                 {"target", request.target},
                                 {"status", response.code},
                                 {"client", host ? host : ""}});
  }
}

}  // namespace kbgp::admin
