// The listener worker's event-driven core: one libevent loop relays every
// device socket to and from its session's shared-memory rings.
//
//   device socket --read--> FrameAssembler --whole messages--> up ring --> uplink
//   device socket <--send-- down ring <-- uplink
//
// Wake-ups follow docs/architecture.md: after writing into an up ring or
// freeing space in a down ring the listener sets the slot's bit in
// up_pending and, once per loop iteration for all sessions together,
// signals the uplink's eventfd. The uplink does the same the other way
// (down_pending + fd 6).
#pragma once

#include <event2/event.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/ipc.h"
#include "common/layout.h"
#include "common/ring.h"
#include "common/shm.h"
#include "common/worker.h"
#include "listener/down_framing.h"
#include "listener/frame_assembler.h"

namespace kbgp::listener {

struct EventDeleter {
  void operator()(event* ev) const { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

class Listener {
 public:
  // `up_ready_fd` is signalled towards the uplink, `down_ready_fd` signalled
  // by it (ipc.h fds 5 and 6).
  Listener(event_base* base, WorkerContext& ctx, int up_ready_fd, int down_ready_fd);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Registers the channel, wake-up, heartbeat and signal events. False (and
  // a log line) when libevent cannot.
  bool start();
  // Runs the loop until Shutdown, channel EOF or SIGTERM.
  void run();

 private:
  struct Session;
  enum class CloseHow { Orderly, Abortive };

  static void channel_cb(evutil_socket_t, short, void* arg);
  static void down_ready_cb(evutil_socket_t, short, void* arg);
  static void heartbeat_cb(evutil_socket_t, short, void* arg);
  static void signal_cb(evutil_socket_t, short, void* arg);
  static void device_read_cb(evutil_socket_t, short, void* arg);
  static void device_write_cb(evutil_socket_t, short, void* arg);

  void on_channel();
  void on_down_ready();
  void add_session(const ipc::AddSession& msg, std::vector<UniqueFd>& fds);
  // A session handed over again after a listener restart: settles what the
  // predecessor did but did not record, from the kernel's byte counts.
  // False when that ended the session.
  bool reconcile(Session& s);
  void reject_session(const ipc::AddSession& msg, const char* why);
  void on_device_readable(Session& s);
  void pump_up(Session& s);
  void pump_down(Session& s);
  void framing_error(Session& s, const char* error, bad_input::Framing reason);
  void end_session(Session& s, ipc::SessionEnd reason, CloseHow how);
  void start_reading(Session& s);
  void stop_reading(Session& s);
  void publish_stats(Session& s);
  void wake_uplink(uint32_t slot);
  bool send_session_done(uint32_t slot, uint32_t generation, ipc::SessionEnd reason);
  void stop();
  // Once a second: the up rings the uplink drained and the device left
  // quiet for a tick give their pages back (RingProducer::
  // release_free_pages), so an idle session holds a page or two, not every
  // page its byte positions ever passed through.
  void release_idle_up_rings();
  // Once a second: ends sessions whose device started a BGP message and
  // left it unfinished for longer than incomplete_message_limit_ns()
  // (a slowloris holds a socket, a slot and two ring pages forever
  // otherwise; its BGP peer cannot even see its keepalives, which queue
  // behind the unfinished message). Time spent waiting for up-ring space
  // does not count: then it is we who do not read.
  void end_stalled_messages();
  // Once per loop iteration: one eventfd write for every marked session, and
  // sessions that ended in the iteration are freed.
  void after_iteration();

  event_base* base_;
  WorkerContext& ctx_;
  shm::ControlRegion* control_;
  int up_ready_fd_;
  int down_ready_fd_;
  bool stopping_ = false;
  bool uplink_signal_due_ = false;
  size_t sessions_waiting_space_ = 0;

  EventPtr channel_ev_;
  EventPtr down_ready_ev_;
  EventPtr heartbeat_ev_;
  EventPtr sigterm_ev_;
  EventPtr sigint_ev_;

  std::array<std::unique_ptr<Session>, shm::kMaxSessions> sessions_;  // by slot
  std::vector<std::unique_ptr<Session>> ended_;  // freed after the iteration
};

}  // namespace kbgp::listener
