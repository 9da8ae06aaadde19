// The admin worker's libevent loop: evhttp on the listening socket the
// supervisor bound (fd 7), a one-second timer that runs the health checks
// and sends the Heartbeat message (the admin's view of the control region
// is read-only, so the supervisor records its heartbeat), and the channel.
//
// A slow or hostile client cannot hold the loop: requests are answered from
// memory in one callback, header size and body size are capped, idle or
// slow connections time out, and running out of descriptors pauses
// accepting for a second instead of spinning.
#pragma once

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include <memory>

#include "admin/health.h"
#include "common/worker.h"

namespace kbgp::admin {

constexpr size_t kMaxHeadersSize = 8 * 1024;  // request line included
constexpr size_t kMaxBodySize = 1024;         // GETs carry none; more is refused
constexpr int kConnectionTimeoutSeconds = 10;

class AdminServer {
 public:
  AdminServer(event_base* base, WorkerContext& ctx, int listen_fd);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Sets up HTTP, timer, channel and signals; false (and a log line) on error.
  bool start();
  // Runs until Shutdown, channel EOF or SIGTERM.
  void run();

 private:
  struct EventDeleter {
    void operator()(event* ev) const { event_free(ev); }
  };
  struct HttpDeleter {
    void operator()(evhttp* http) const { evhttp_free(http); }
  };
  using EventPtr = std::unique_ptr<event, EventDeleter>;

  static void request_cb(evhttp_request* req, void* arg);
  static void tick_cb(evutil_socket_t, short, void* arg);
  static void channel_cb(evutil_socket_t, short, void* arg);
  static void signal_cb(evutil_socket_t, short, void* arg);
  static void accept_error_cb(evconnlistener* listener, void* arg);
  static void resume_accept_cb(evutil_socket_t, short, void* arg);

  void on_request(evhttp_request* req);
  void on_tick();
  void on_channel();
  void stop();

  event_base* base_;
  WorkerContext& ctx_;
  int listen_fd_;
  HealthMonitor health_;
  std::unique_ptr<evhttp, HttpDeleter> http_;
  EventPtr tick_ev_;
  EventPtr channel_ev_;
  EventPtr sigterm_ev_;
  EventPtr sigint_ev_;
};

}  // namespace kbgp::admin
