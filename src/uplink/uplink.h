// The uplink's event thread: the supervisor channel (AddSession, Shutdown),
// the up_ready eventfd (listener wake-ups, drained through the up_pending
// bitmap), an internal eventfd for hand-offs from gRPC threads, and timers
// (heartbeat every second, Control reconnects, keepalives and deadlines)
// folded into the epoll timeout. No busy loops: it sleeps in epoll_wait.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "common/ipc.h"
#include "common/worker.h"
#include "uplink/channel_pool.h"
#include "uplink/control_client.h"
#include "uplink/grpc_channels.h"
#include "uplink/md5_relay.h"
#include "uplink/session.h"
#include "uplink/uplink_config.h"

namespace kbgp::uplink {

class Uplink {
 public:
  Uplink(WorkerContext& ctx, UplinkConfig config, ChannelFactory factory);
  ~Uplink();
  Uplink(const Uplink&) = delete;
  Uplink& operator=(const Uplink&) = delete;

  // Sends Ready and serves until Shutdown or until the supervisor is gone.
  // Returns the process exit code. Check g_live_streams afterwards: if a
  // stream did not end in time, the Uplink must not be destroyed.
  int run();

 private:
  bool setup_epoll();
  void on_channel();
  void on_add_session(ipc::Received& msg);
  void on_up_ready();
  void post(std::function<void()> task);  // thread-safe
  void run_posted();
  void on_session_ended(uint32_t slot, uint32_t generation, ipc::SessionEnd reason);
  void on_denied(const DenyNotice& notice);
  // An answer the backend pushed unasked: a block denies the device and ends
  // its sessions; an accept lifts a deny we asked for.
  void on_pushed(const ControlAnswer& answer);
  void send_allow(const Endpoint& device);
  void send_session_done(uint32_t slot, uint32_t generation, ipc::SessionEnd reason);
  void begin_stop(const char* why);
  bool stopped_cleanly() const;
  // Session ticks asked for a given time (SessionEnv::wake_at): resuming a
  // failed stream after its backoff, cancelling one that ignored a KILL.
  void wake_at(uint32_t slot, uint32_t generation, int64_t at_ns);
  // Runs the due ones; returns when the next one is due (INT64_MAX: none).
  int64_t run_timers(int64_t now_ns);

  WorkerContext& ctx_;
  const UplinkConfig config_;
  const ChannelFactory factory_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: gRPC threads -> event thread
  bool channel_open_ = true;

  // Destroyed in reverse order: sessions first, then what they use.
  ChannelPool pool_;
  StreamQueue stream_queue_;  // after pool_: its thread ends before channels go
  std::shared_ptr<ControlClient> control_;
  std::shared_ptr<Md5Relay> md5_;
  SessionEnv env_;
  std::unordered_map<uint32_t, std::shared_ptr<Session>> sessions_;  // by slot

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;

  struct Wake {
    int64_t at_ns;
    uint32_t slot;
    uint32_t generation;
    bool operator>(const Wake& o) const { return at_ns > o.at_ns; }
  };
  std::priority_queue<Wake, std::vector<Wake>, std::greater<Wake>> wakes_;  // earliest first

  std::map<std::string, int64_t> deny_logged_until_;  // device ip -> monotonic ns
  bool stopping_ = false;
  int64_t stop_deadline_ns_ = 0;
};

}  // namespace kbgp::uplink
